"""Log lines never carry secrets: passwords, tokens, Authorization headers, JWTs, e-mails."""

from __future__ import annotations

import io
import logging

import orjson
import pytest

from engine.logs import REDACTED, configure_logging

JWT = ("eyJhbGciOiJFUzI1NksiLCJ0eXAiOiJKV1QifQ.eyJpc3MiOiJkaWQ6cGxjOmFsaWNlIiwiYXVkIjoiZGlkOndlYjpj"
       "b3Zlcy5zb2NpYWwifQ.c2lnbmF0dXJlLWJ5dGVz")


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    configure_logging("debug", "json")
    yield stream
    configure_logging("info", "console")


def lines(stream: io.StringIO) -> list[dict]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_secret_fields_and_values_are_redacted(captured: io.StringIO) -> None:
    log = logging.getLogger("coves.test")
    log.info("login for bob@example.com with token %s", JWT, extra={
        "password": "hunter2", "authorization": f"Bearer {JWT}", "access_jwt": JWT,
        "email": "alice@example.com", "url": "postgresql://coves:hunter2@db:5432/coves",
        "headers": {"Authorization": "Bearer abc", "X-Request-Id": "r-1"}, "did": "did:plc:abc"})
    line = lines(captured)[0]
    text = captured.getvalue()
    for secret in ("hunter2", JWT, "alice@example.com", "bob@example.com", "Bearer abc"):
        assert secret not in text
    assert line["password"] == line["authorization"] == line["access_jwt"] == line["email"] == REDACTED
    assert line["url"] == f"postgresql://coves:{REDACTED}@db:5432/coves"
    assert line["headers"] == {"Authorization": REDACTED, "X-Request-Id": "r-1"}
    assert line["did"] == "did:plc:abc"  # ordinary fields stay


def test_exception_text_is_redacted_too(captured: io.StringIO) -> None:
    try:
        raise ValueError(f"could not log in alice@example.com using {JWT}")
    except ValueError:
        logging.getLogger("coves.test").exception("failed")
    text = captured.getvalue()
    assert JWT not in text and "alice@example.com" not in text and "ValueError" in text
