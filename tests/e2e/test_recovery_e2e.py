"""Suite 6, failures and recovery: the PDS goes away while posts are being created (clear 503s,
nothing half-written, the "pds" breaker opens and closes again, reads and indexing go on);
Postgres restarts mid-stream; the firehose connection is cut (the engine resumes from its cursor
and loses nothing); malformed records land in the rejects."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import trio
from prometheus_client import REGISTRY

from api.pds_client import BREAKER_COOLDOWN_S
from engine.db import Database, open_bridge, open_database
from engine.errors import DatabaseError
from engine.migrate import apply_migrations
from engine.reconcile import reconcile
from tests.api.conftest import FakeClock
from tests.conftest import EmbeddedPostgres, with_database
from tests.pds.harness import PdsNetwork

from .appview import AppView, open_appview
from .forum import COMMENT, NOW, POST, SUBSCRIPTION, Forum, observed, write_activity
from .proxy import TcpProxy


@asynccontextmanager
async def proxy_to(url: str) -> AsyncIterator[TcpProxy]:
    parts = urlsplit(url)
    proxy = TcpProxy(parts.hostname or "localhost", parts.port or 80)
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy.run)
        yield proxy
        nursery.cancel_scope.cancel()


def breaker_state() -> float | None:
    return REGISTRY.get_sample_value("coves_breaker_state", {"breaker": "pds"})


async def index_matches(app: AppView, db: Database, forum: Forum, timeout_s: float = 60) -> None:
    expected = forum.expected()

    async def same() -> bool:
        try:
            return await observed(db, forum) == expected
        except DatabaseError:  # the database is still coming back
            return False

    await app.eventually(same, timeout_s=timeout_s)


async def test_pds_outage_during_post_creation(pds_network_factory: Callable[..., PdsNetwork],
                                               db: Database, database_url: str) -> None:
    network = pds_network_factory(1)
    clock = FakeClock()
    async with proxy_to(network.pds_urls[0]) as proxy, \
            open_appview(network, database_url, db=db, pds_url=proxy.url(), clock=clock) as app:
        alice, bob = await app.user("alice"), await app.user("bob")
        status, community = await app.call(alice, "social.coves.community.create",
                                           {"name": "outage", "description": "d"})
        assert status == 200
        c = community["did"]
        proxy.cut()  # the PDS is gone for the AppView (the engine still reads its firehose)
        answers = [await app.call(alice, "social.coves.community.post.create",
                                  {"community": c, "title": f"try {n}"}) for n in range(7)]
        assert {(status, body["error"]) for status, body in answers} == {(503, "PdsUnavailable")}
        assert breaker_state() == 2
        metrics = (await app.http.get("/metrics")).text
        assert 'coves_pds_calls_total{method="com.atproto.repo.createRecord",outcome="unreachable"}' in metrics
        assert 'outcome="breaker_open"' in metrics
        assert await db.fetchval("SELECT count(*) FROM post_records WHERE community_did = $1", c) == 0
        # reads and indexing go on
        status, feed = await app.get("social.coves.feed.getCommunity", community=c)
        assert status == 200 and feed["feed"] == []
        await bob.create(SUBSCRIPTION, {"subject": c, "createdAt": NOW})

        async def subscribed() -> bool:
            return await db.fetchval("SELECT subscriber_count FROM communities WHERE did = $1", c) == 1

        await app.eventually(subscribed)
        # the PDS is back: after the cool-down one trial call closes the breaker
        await proxy.restore()
        clock.advance(BREAKER_COOLDOWN_S)
        status, post = await app.call(alice, "social.coves.community.post.create",
                                      {"community": c, "title": "back"})
        assert status == 200, post
        assert breaker_state() == 0
        _, feed = await app.get("social.coves.feed.getCommunity", community=c)
        assert [item["post"]["title"] for item in feed["feed"]] == ["back"]



async def test_postgres_restart_mid_stream(pds_network_factory: Callable[..., PdsNetwork],
                                           private_postgres: EmbeddedPostgres) -> None:
    network = pds_network_factory(1)
    url = with_database(private_postgres.url, "postgres")
    async with open_bridge():
        async with open_database(url, max_size=1) as admin:
            await apply_migrations(admin)
        async with open_database(url) as db, open_appview(network, url, db=db) as app:
            forum = Forum(app.pds[0])
            await forum.add_users(4)
            await forum.add_community("before")
            for user in forum.users:
                await forum.subscribe(user, next(iter(forum.communities)))
            await write_activity(forum, random.Random(1), posts=4, comments=10, votes=15)
            await index_matches(app, db, forum)
            await trio.to_thread.run_sync(private_postgres.stop)
            try:
                with trio.fail_after(15):
                    status, body = await app.get("social.coves.community.list")
                assert (status, body["error"]) == (503, "ServiceUnavailable")
                await forum.add_community("during")  # the PDS and its firehose go on
                await write_activity(forum, random.Random(2), posts=4, comments=10, votes=15,
                                     churn=6)
            finally:
                await trio.to_thread.run_sync(private_postgres.start)
            await index_matches(app, db, forum)
            assert await reconcile(db) == []
            assert await db.fetch("SELECT reason FROM ingest_rejects WHERE did = ANY($1)",
                                  forum.dids) == []


async def test_firehose_cut_resumes_from_the_cursor(pds_network_factory: Callable[..., PdsNetwork],
                                                    db: Database, database_url: str) -> None:
    network = pds_network_factory(1)
    async with proxy_to(network.pds_urls[0]) as proxy, \
            open_appview(network, database_url, db=db, firehoses=[proxy.url("ws")]) as app:
        forum = Forum(app.pds[0])
        await forum.add_users(4)
        await forum.add_community("cut")
        await write_activity(forum, random.Random(3), posts=4, comments=8, votes=10)
        await index_matches(app, db, forum)
        connections = proxy.connections
        proxy.cut()
        await write_activity(forum, random.Random(4), posts=4, comments=8, votes=10, churn=6)
        await proxy.restore()
        await index_matches(app, db, forum)
        assert proxy.connections > connections  # it reconnected
    assert await reconcile(db) == []


async def test_malformed_records_go_to_the_rejects(pds_network_factory: Callable[..., PdsNetwork],
                                                   db: Database, database_url: str) -> None:
    network = pds_network_factory(1)
    async with open_appview(network, database_url, db=db) as app:
        mallory = await app.user("mallory")
        ref = {"uri": f"at://{mallory.did}/{POST}/3kaaaaaaaaaa2", "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"}
        no_content, _ = await mallory.create(COMMENT, {"reply": {"root": ref, "parent": ref},
                                                       "createdAt": NOW})
        elsewhere, _ = await mallory.create(POST, {"community": "did:plc:someoneelseentirely",
                                                   "author": mallory.did, "title": "spoof",
                                                   "createdAt": NOW})

        async def rejected() -> bool:
            return await db.fetchval("SELECT count(*) FROM ingest_rejects WHERE did = $1",
                                     mallory.did) == 2

        await app.eventually(rejected)
        rows = {(r["rkey"], r["reason"]) for r in await db.fetch(
            "SELECT rkey, reason FROM ingest_rejects WHERE did = $1", mallory.did)}
        assert rows == {(no_content.rsplit("/", 1)[1], "invalid_record"),
                        (elsewhere.rsplit("/", 1)[1], "wrong_repo")}
        assert await db.fetchval("SELECT count(*) FROM comments WHERE did = $1", mallory.did) == 0
        # the engine went on: a good record after them is indexed
        await mallory.create(SUBSCRIPTION, {"subject": "did:plc:someoneelseentirely",
                                            "createdAt": NOW})

        async def indexed() -> bool:
            return await db.fetchval("SELECT count(*) FROM subscriptions WHERE did = $1",
                                     mallory.did) == 1

        await app.eventually(indexed)
