"""Suite 5, rate limits over a real socket, on a virtual clock: 100 requests a minute per
client, 20 getComments a minute, 10 posts an hour per community for an aggregator; clients are
told apart by their address (127.0.0.x loopback sources), a trusted proxy's X-Forwarded-For
names the client and an untrusted one's is ignored; a new window lets a client in again."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx

from api.ratelimit import RateLimiter
from engine.db import Database
from tests.api.conftest import FakeClock
from tests.pds.harness import PdsNetwork

from .appview import AppView, open_appview
from .forum import NOW

LIST = "social.coves.community.list"
PROXY = "127.0.0.3"


@asynccontextmanager
async def client_at(app: AppView, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client whose connections come from `address` (any 127.0.0.0/8 source works)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(base_url=app.url, transport=transport, timeout=30) as http:
        yield http


async def spend(http: httpx.AsyncClient, count: int, path: str = f"/xrpc/{LIST}",
                **headers: str) -> list[int]:
    return [(await http.get(path, headers=headers)).status_code for _ in range(count)]


async def test_rate_limits(pds_network_factory: Callable[..., PdsNetwork], db: Database,
                           database_url: str) -> None:
    network = pds_network_factory(1)
    clock = FakeClock()
    async with open_appview(network, database_url, db=db, limiter=RateLimiter(clock=clock),
                            clock=clock, TRUSTED_PROXIES=f"{PROXY}/32") as app:
        # ---- 100 a minute per client, each client its own budget ----
        async with client_at(app, "127.0.0.10") as first, client_at(app, "127.0.0.11") as second:
            assert await spend(first, 100) == [200] * 100
            refused = await first.get(f"/xrpc/{LIST}")
            assert refused.status_code == 429 and refused.json()["error"] == "RateLimitExceeded"
            assert refused.headers["RateLimit-Remaining"] == "0"
            assert 0 < int(refused.headers["Retry-After"]) <= 60
            assert await spend(second, 1) == [200]
            # an untrusted peer cannot pick its key with a header
            assert await spend(first, 1, **{"X-Forwarded-For": "198.51.100.1"}) == [429]
            # ---- a trusted proxy: the forwarded address is the client ----
            async with client_at(app, PROXY) as proxy:
                assert await spend(proxy, 100, **{"X-Forwarded-For": "203.0.113.7"}) == [200] * 100
                assert await spend(proxy, 1, **{"X-Forwarded-For": "203.0.113.7"}) == [429]
                assert await spend(proxy, 1, **{"X-Forwarded-For": "203.0.113.8"}) == [200]
                assert await spend(proxy, 1, **{"X-Forwarded-For": "203.0.113.7, 127.0.0.3"}) == [429]
            # ---- the window ends: the client is let in again ----
            clock.advance(60)
            assert await spend(first, 1) == [200]

        # ---- getComments: 20 a minute, on top of the overall budget ----
        async with client_at(app, "127.0.0.12") as reader:
            thread = "/xrpc/social.coves.community.comment.getComments?post=at://did:plc:x/social.coves.community.post/3k"
            statuses = await spend(reader, 21, thread)
            assert statuses[:20] == [404] * 20 and statuses[20] == 429  # counted, then refused
            assert await spend(reader, 1) == [200]  # other methods still within budget

        # ---- aggregators: 10 posts an hour per community ----
        async with client_at(app, "127.0.0.20") as http:
            creator, bot = await app.user("creator"), await app.user("newsbot")
            communities = []
            for name in ("news", "sport"):
                status, out = await app.call(creator, "social.coves.community.create",
                                             {"name": name, "description": name}, http=http)
                assert status == 200, out
                communities.append(out["did"])
            await bot.pds.create_record(bot.account, "social.coves.aggregator.service",
                                        {"did": bot.did, "displayName": "News bot",
                                         "createdAt": NOW}, rkey="self")
            for c in communities:
                holder = await app.writes.store.find(did=c)
                token = await app.writes.tokens.access_token(holder)
                await app.writes.pds.create_record(holder.pds_url, token, c,
                                                   "social.coves.aggregator.authorization", {
                    "$type": "social.coves.aggregator.authorization", "aggregatorDid": bot.did,
                    "communityDid": c, "enabled": True, "createdBy": creator.did,
                    "createdAt": NOW})

            async def authorized() -> bool:
                return await db.fetchval(
                    "SELECT count(*) FROM aggregator_authorizations WHERE aggregator_did = $1",
                    bot.did) == 2 and await db.fetchval(
                    "SELECT count(*) FROM aggregators WHERE did = $1", bot.did) == 1

            await app.eventually(authorized)

            async def post(c: str) -> int:
                status, _ = await app.call(bot, "social.coves.community.post.create",
                                           {"community": c, "title": "headline"}, http=http)
                return status

            news, sport = communities
            assert [await post(news) for _ in range(10)] == [200] * 10
            assert await post(news) == 429
            assert await post(sport) == 200  # per community
            clock.advance(3600)
            assert await post(news) == 200
