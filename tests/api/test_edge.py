"""The API's edge (api/edge.py): every response — answers, errors, preflights, refusals —
carries CORS, its request id and rate-limit headers once, and is counted under its route."""

from __future__ import annotations

from typing import Any

import orjson
from prometheus_client import REGISTRY

from api.edge import CORS_HEADERS, Edge, state_of
from api.limits import MAX_HEADER_BYTES
from api.ratelimit import Decision

from .conftest import Client, MakeClient

DISCOVER = "/xrpc/social.coves.feed.getDiscover"


def _count(route: str, method: str, status: str) -> float:
    return REGISTRY.get_sample_value("coves_api_requests_total",
                                     {"route": route, "method": method, "status": status}) or 0.0


def _has_cors(headers: Any) -> bool:
    return all(headers.get(name) == value for name, value in CORS_HEADERS.items())


async def test_answers_errors_and_preflights_carry_cors_and_a_request_id(client: Client) -> None:
    answered = await client.get(DISCOVER)
    unknown = await client.get("/xrpc/made.up.method")
    bad = await client.get(DISCOVER + "?limit=0")
    preflight = await client.options(DISCOVER, headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "Authorization"})
    assert [r.status_code for r in (answered, unknown, bad)] == [200, 404, 400]
    assert preflight.status_code < 300
    for response in (answered, unknown, bad, preflight):
        assert _has_cors(response.headers), response.status_code
        assert len(response.headers.getlist("X-Request-Id")) == 1


async def test_rate_limit_headers_appear_once_and_a_refusal_reports_its_own_budget(
        make_client: MakeClient) -> None:
    async with make_client(RATE_LIMIT_PER_MINUTE="2") as client:
        first = await client.get(DISCOVER)
        await client.get(DISCOVER)
        refused = await client.get(DISCOVER)
    assert first.headers.getlist("RateLimit-Remaining") == ["1"]
    assert refused.status_code == 429
    assert refused.headers.getlist("RateLimit-Limit") == ["2"]
    assert refused.headers.getlist("RateLimit-Remaining") == ["0"]
    assert refused.headers.getlist("Retry-After") == ["60"]


async def test_headers_over_the_limit_are_refused_at_the_edge(client: Client) -> None:
    before = _count("/xrpc/<nsid>", "GET", "431")
    response = await client.get(DISCOVER, headers={"X-Fill": "a" * (MAX_HEADER_BYTES + 1)})
    assert response.status_code == 431
    body = orjson.loads(await response.get_data())
    assert body["error"] == "RequestHeaderFieldsTooLarge" and str(MAX_HEADER_BYTES) in body["message"]
    assert response.headers["Connection"] == "close" and _has_cors(response.headers)
    assert _count("/xrpc/<nsid>", "GET", "431") == before + 1  # not dispatched: the template


async def test_routes_without_a_dispatcher_are_counted_by_rule_and_odd_methods_as_other(
        client: Client) -> None:
    before = (_count("/openapi.json", "GET", "200"), _count("/xrpc/<nsid>", "OPTIONS", "200"),
              _count("unmatched", "OTHER", "404"))
    await client.get("/openapi.json")
    await client.options(DISCOVER)
    for n in range(3):
        await client.open("/nowhere", method=f"BREW{n}")
    after = (_count("/openapi.json", "GET", "200"), _count("/xrpc/<nsid>", "OPTIONS", "200"),
             _count("unmatched", "OTHER", "404"))
    assert [a - b for a, b in zip(after, before)] == [1, 1, 3]


async def test_a_budget_the_app_reports_itself_is_not_overwritten() -> None:
    # An aggregator's hourly budget (api/post_write.py) refuses with its own RateLimit-*: the
    # per-minute budget the request also counted against must not replace them.
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        state_of(scope).count_against(Decision(True, 3000, 2999, 60))
        await send({"type": "http.response.start", "status": 429,
                    "headers": [(b"ratelimit-limit", b"10"), (b"retry-after", b"3600")]})
        await send({"type": "http.response.body", "body": b"{}", "more_body": False})

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/xrpc/social.coves.community.post.create",
             "headers": [(b"x-request-id", b"req-1")]}
    await Edge(app)(scope, _no_body, send)
    headers = sent[0]["headers"]
    assert [v for n, v in headers if n == b"ratelimit-limit"] == [b"10"]
    assert (b"x-request-id", b"req-1") in headers


async def _no_body() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}
