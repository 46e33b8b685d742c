"""Every response carries X-Request-Id (the client's when sane, else a fresh one), and log lines
written while serving a request carry the same id."""

from __future__ import annotations

import io
import re

import orjson
import pytest

from api.app import create_app
from api.ratelimit import RateLimiter
from engine.config import Config
from engine.db import Database
from engine.logs import configure_logging
from tests.api.conftest import FakeClock, KeyResolver

HEALTHY_PATH = "/xrpc/social.coves.community.list"


async def test_client_id_is_echoed_and_missing_or_odd_ones_replaced(client) -> None:  # noqa: ANN001
    response = await client.get(HEALTHY_PATH, headers={"X-Request-Id": "trace-42.a:b"})
    assert response.headers["X-Request-Id"] == "trace-42.a:b"
    fresh = (await client.get(HEALTHY_PATH)).headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{16}", fresh)
    odd = (await client.get(HEALTHY_PATH, headers={"X-Request-Id": "has spaces\tand tabs"})).headers
    assert re.fullmatch(r"[0-9a-f]{16}", odd["X-Request-Id"])
    assert (await client.get("/xrpc/no.such.method")).headers["X-Request-Id"]  # errors too


async def test_log_lines_of_a_request_carry_its_id(db: Database, config: Config, resolver: KeyResolver,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    configure_logging("info", "json")
    try:
        app = create_app(config, db, resolver, limiter=RateLimiter(clock=FakeClock()))

        @app.route("/boom")
        async def boom() -> str:
            raise RuntimeError("a bug")

        async with app.test_app() as test_app:
            response = await test_app.test_client().get("/boom", headers={"X-Request-Id": "req-7"})
        assert response.status_code == 500 and response.headers["X-Request-Id"] == "req-7"
    finally:
        configure_logging("info", "console")
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    errors = [line for line in lines if line["event"] == "unhandled error"]
    assert errors and errors[0]["request_id"] == "req-7"
