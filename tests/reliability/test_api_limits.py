"""Request size limits over a real Hypercorn socket: oversized bodies are 413 and oversized
headers 431, with the XRPC envelope where the app sees the request (api/limits.py), and no
refusal — nor any early answer — leaves a kept-alive connection stuck."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from api.app import MAX_BODY_BYTES
from api.limits import MAX_HEADER_BYTES

from .conftest import Scenario
from .live import forum, live_api
from tests.api.live import LiveServer

DISCOVER = "/xrpc/social.coves.feed.getDiscover"
# Every kind of route: a query, a query called with POST, an unknown method, a path outside
# /xrpc, and the health check.
ROUTES = [("GET", DISCOVER), ("POST", DISCOVER), ("GET", "/xrpc/com.example.nothing"),
          ("GET", "/nothing/here"), ("GET", "/xrpc/_health")]
TIMEOUT = httpx.Timeout(10.0)  # a stuck connection fails the test instead of hanging it


@pytest.fixture(scope="module")
def live(pg_admin_url: str, template_url: str) -> Iterator[LiveServer]:
    frames, _keys = forum()
    with live_api(pg_admin_url, "limits", frames, RATE_LIMIT_PER_MINUTE="1000000") as server:
        yield server


def _envelope(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == error and response.json()["message"]


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


@pytest.mark.scenario("api-body-limit")
@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_a_body_over_the_limit_is_413_and_the_connection_recovers(
        live: LiveServer, method: str, path: str, scenario: Scenario) -> None:
    with httpx.Client(base_url=live.url, timeout=TIMEOUT) as http:  # one pooled connection
        announced = http.request(method, path, content=b"x" * (2 * MAX_BODY_BYTES))
        _envelope(announced, 413, "PayloadTooLarge")
        assert announced.headers["connection"] == "close"
        chunked = http.request(method, path, content=_chunks(2 * MAX_BODY_BYTES))
        _envelope(chunked, 413, "PayloadTooLarge")
        assert http.get(DISCOVER).status_code == 200
    scenario.note(f"{method} {path}: {2 * MAX_BODY_BYTES:,} B announced → 413, chunked → 413, "
                  "next call 200")


@pytest.mark.scenario("api-body-limit")
def test_a_body_within_the_limit_never_stalls_the_next_request(live: LiveServer) -> None:
    # Answering before a body had fully arrived left its rest unread in front of the next request
    # on the kept-alive connection, which then hung until the keep-alive timeout (75 s).
    with httpx.Client(base_url=live.url, timeout=TIMEOUT) as http:
        statuses = [http.request(method, path, content=b"x" * (MAX_BODY_BYTES - 1)).status_code
                    for method, path in ROUTES]
        assert statuses == [200, 405, 404, 404, 200]
        assert http.get(DISCOVER).status_code == 200


@pytest.mark.scenario("api-header-limit")
def test_headers_over_the_limit_are_431_with_the_envelope(live: LiveServer,
                                                          scenario: Scenario) -> None:
    with httpx.Client(base_url=live.url, timeout=TIMEOUT) as http:
        assert http.get(DISCOVER, headers={"X-Fill": "a" * (MAX_HEADER_BYTES // 2)}).status_code == 200
        one_big = http.get(DISCOVER, headers={"X-Fill": "a" * (MAX_HEADER_BYTES + 1)})
        _envelope(one_big, 431, "RequestHeaderFieldsTooLarge")
        many = http.get(DISCOVER, headers={f"X-Fill-{n}": "b" * 60 for n in range(300)})
        _envelope(many, 431, "RequestHeaderFieldsTooLarge")
        assert http.get(DISCOVER).status_code == 200
    # Beyond Hypercorn's own parser limit (64 KiB) the app never sees the request: a bare 431.
    huge = httpx.get(live.url + DISCOVER, headers={"X-Fill": "c" * 256 * 1024}, timeout=TIMEOUT)
    assert huge.status_code == 431
    assert httpx.get(live.url + DISCOVER, timeout=TIMEOUT).status_code == 200
    scenario.note(f"one {MAX_HEADER_BYTES + 1:,} B header → 431 envelope; 300 headers (~20 KiB) "
                  "→ 431 envelope; 256 KiB header → 431 from Hypercorn (no body); server serves on")
