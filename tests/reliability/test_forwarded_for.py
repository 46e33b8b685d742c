"""Rate-limit keys over real sockets: a client behind no proxy cannot choose its key with any
forwarding header; a trusted proxy's X-Forwarded-For names the client, and hops a client
prepends itself are ignored. Connections come from distinct 127.0.0.x source addresses."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import trio

from api.ratelimit import RateLimiter
from api.server import serve_api
from engine.db import Database
from tests.api.conftest import FakeClock, api_config
from tests.api.keys import KeyResolver

from .conftest import Scenario

LIST = "/xrpc/social.coves.community.list"
LIMIT = 3  # requests a minute: small, so each spoof attempt is one request past the budget
PROXY = "127.0.0.3"
# Every way a client might try to pass for someone else.
SPOOFS: list[list[tuple[str, str]]] = [
    [("X-Forwarded-For", "198.51.100.1")],
    [("X-Forwarded-For", "198.51.100.2, 127.0.0.3")],
    [("X-Forwarded-For", "198.51.100.3"), ("X-Forwarded-For", "198.51.100.4")],
    [("X-Forwarded-For", "2001:db8::1")],
    [("X-Forwarded-For", "unknown")],
    [("X-Real-IP", "198.51.100.5")],
    [("Forwarded", "for=198.51.100.6;proto=https")],
    [("X-Client-IP", "198.51.100.7"), ("True-Client-IP", "198.51.100.8"),
     ("CF-Connecting-IP", "198.51.100.9")],
]


@asynccontextmanager
async def open_api(db: Database) -> AsyncIterator[str]:
    """The API on a real Hypercorn, trusting PROXY only, on a clock that never moves (one
    window for the whole test)."""
    config = api_config(API_PORT="0", RATE_LIMIT_PER_MINUTE=str(LIMIT),
                        TRUSTED_PROXIES=f"{PROXY}/32")
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(functools.partial(
            serve_api, config, db, KeyResolver(), limiter=RateLimiter(clock=FakeClock())))
        yield urls[0]
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def client_at(url: str, address: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(base_url=url, transport=transport, timeout=30) as http:
        yield http


async def spend(http: httpx.AsyncClient, count: int,
                headers: list[tuple[str, str]] | None = None) -> list[int]:
    return [(await http.get(LIST, headers=headers)).status_code for _ in range(count)]


@pytest.mark.scenario("ratelimit-forwarded-for")
async def test_forwarding_headers_from_an_untrusted_peer_do_not_change_the_key(
        db: Database, scenario: Scenario) -> None:
    async with open_api(db) as url, client_at(url, "127.0.0.10") as client:
        assert await spend(client, LIMIT) == [200] * LIMIT
        for headers in SPOOFS:
            assert await spend(client, 1, headers) == [429], headers
        async with client_at(url, "127.0.0.11") as neighbour:  # a real other client is its own key
            assert await spend(neighbour, 1) == [200]
    scenario.note(f"untrusted peer: {len(SPOOFS)} spoofed forwarding headers after its budget → "
                  "429 each (key unchanged)")


@pytest.mark.scenario("ratelimit-forwarded-for")
async def test_a_trusted_proxy_names_the_client(db: Database, scenario: Scenario) -> None:
    async with open_api(db) as url, client_at(url, PROXY) as proxy:
        client = [("X-Forwarded-For", "203.0.113.7")]
        assert await spend(proxy, LIMIT + 1, client) == [200] * LIMIT + [429]
        assert await spend(proxy, 1, [("X-Forwarded-For", "203.0.113.8")]) == [200]
        # The client wrote its own X-Forwarded-For; the proxy appended the real address.
        spoofed = [("X-Forwarded-For", "198.51.100.1, 203.0.113.7")]
        assert await spend(proxy, 1, spoofed) == [429]
        # The proxy's own requests (no header) count under the proxy's address.
        assert await spend(proxy, LIMIT + 1) == [200] * LIMIT + [429]
    scenario.note("trusted proxy: X-Forwarded-For keys each client; a client-prepended hop is "
                  "ignored; no header → the proxy's own key")
