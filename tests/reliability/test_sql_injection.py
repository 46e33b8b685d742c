"""SQL-injection strings in every text parameter of every query, driven by the OpenAPI document
(a new method or parameter is covered without touching this file), over a real Hypercorn.

Each payload must be inert: no 5xx, the same answer as a harmless unknown value in the same
place (same status and error; for a 200 the same body), and no change anywhere in the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import trio

from api.app import build_router
from api.openapi import build_openapi
from engine.db import open_bridge, open_database
from engine.lexicon import load_default
from tests.api.conftest import api_config
from tests.api.live import LiveServer

from .conftest import Scenario
from .live import forum, live_api

DOCUMENT = build_openapi(build_router(api_config()), load_default())
UNKNOWN = "zzunknownzz"  # a value no row holds and no format accepts
PAYLOADS = [
    "' OR '1'='1",
    "' OR 1=1 --",
    "\" OR \"\"=\"",
    "'; DROP TABLE posts; --",
    "1; DELETE FROM communities",
    "') UNION SELECT NULL, version() --",
    "' || (SELECT string_agg(password_enc::text, ',') FROM community_credentials) || '",
    "'; SELECT pg_sleep(5); --",
    "%' AND '%'='",
    "\\'; UPDATE posts SET score = 9999; --",
    "$1::text",
    "did:plc:x' OR '1'='1",
    "at://did:plc:x/social.coves.community.post/3k' OR '1'='1",
    "*) (|(uid=*))",
]
# Postgres text cannot hold NUL: the parameter parser refuses it before any query (400).
NUL_PAYLOAD = "x\u0000' OR 1=1"


def text_parameters() -> Iterator[tuple[str, dict[str, Any], str]]:
    """(path, operation, parameter name) for every string or string-array query parameter."""
    for path, operations in sorted(DOCUMENT["paths"].items()):
        operation = operations.get("get")
        if operation is None:
            continue
        for parameter in operation.get("parameters", []):
            schema = parameter["schema"]
            items = schema.get("items", {})
            if parameter["in"] == "query" and "string" in (schema.get("type"), items.get("type")):
                yield path, operation, parameter["name"]


def valid_value(schema: dict[str, Any], keys: dict[str, str]) -> Any:
    """A value the seeded forum answers for a required parameter of this schema."""
    if schema.get("type") == "array":
        return [valid_value(schema["items"], keys)]
    if "enum" in schema:
        return schema["enum"][0]
    return {"at-uri": keys["post"], "at-identifier": keys["actor"], "did": keys["community"],
            "community-ref": keys["community"]}.get(schema.get("format", ""), "fuzz")


@pytest.fixture(scope="module")
def seeded(pg_admin_url: str, template_url: str) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    frames, keys = forum()
    with live_api(pg_admin_url, "injection", frames, RATE_LIMIT_PER_MINUTE="1000000",
                  RATE_LIMIT_COMMENTS_PER_MINUTE="1000000") as server:
        yield server, keys


def database_fingerprint(url: str) -> dict[str, str]:
    """Every table of the public schema → md5 of its rows in a fixed order."""

    async def read() -> dict[str, str]:
        async with open_bridge(), open_database(url) as db:
            tables = [row["tablename"] for row in await db.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
            return {table: await db.fetchval(
                f'SELECT count(*) || \':\' || coalesce(md5(string_agg(t::text, \'|\' '
                f'ORDER BY t::text)), \'\') FROM "{table}" t') for table in tables}

    return trio.run(read)


def answer(response: httpx.Response) -> Any:
    """What must match: the body of a 200, else the status and error name."""
    if response.status_code == 200:
        return response.json()
    return response.status_code, response.json()["error"]


@pytest.mark.scenario("sql-injection")
def test_injection_strings_in_every_text_parameter_are_inert(
        seeded: tuple[LiveServer, dict[str, str]], scenario: Scenario) -> None:
    live, keys = seeded
    before = database_fingerprint(live.database_url)
    tried = 0
    wrong: list[tuple[str, str, str, int, str]] = []
    targets = list(text_parameters())
    with httpx.Client(base_url=live.url, timeout=10) as http:
        for path, operation, name in targets:
            nsid = path.removeprefix("/xrpc/")
            base = {parameter["name"]: valid_value(parameter["schema"], keys)
                    for parameter in operation.get("parameters", [])
                    if parameter.get("required") and parameter["in"] == "query"}
            # A token of the viewer for every call: required-auth methods then answer for real.
            headers = live.resolver.bearer(keys["actor"], nsid)

            def call(value: str) -> httpx.Response:
                return http.get(path, params={**base, name: value}, headers=headers)

            expected = call(UNKNOWN)
            assert expected.status_code < 500, (path, name, expected.text)
            for payload in PAYLOADS:
                got = call(payload)
                tried += 1
                if answer(got) != answer(expected):
                    wrong.append((path, name, payload, got.status_code, got.text[:200]))
            nul = call(NUL_PAYLOAD)
            tried += 1
            if answer(nul) != (400, "InvalidRequest"):
                wrong.append((path, name, NUL_PAYLOAD, nul.status_code, nul.text[:200]))
    assert wrong == []
    assert database_fingerprint(live.database_url) == before
    scenario.note(f"{len(PAYLOADS) + 1} payloads × {len(targets)} text parameters of "
                  f"{len({path for path, _, _ in targets})} queries = {tried} requests: each "
                  "answered as an unknown value (a NUL: 400 before any query), no 5xx, every "
                  "table unchanged")
