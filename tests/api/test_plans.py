"""The API's connections use generic plans (engine/service.py API_SERVER_SETTINGS): a statement
is planned once per connection, not at every call. A generic plan does not know the parameters'
values, so each statement must be good without them; these tests pin the ones that were not."""

from __future__ import annotations

import time
from typing import Any

import asyncpg
import orjson

from api.views import community as views
from api.views.feed import FEEDS
from engine.db import Database, open_database
from engine.service import API_SERVER_SETTINGS

COMMUNITIES = 3000


async def test_api_connections_plan_generically(database_url: str, bridge: None) -> None:
    async with open_database(database_url, max_size=1, server_settings=API_SERVER_SETTINGS) as db:
        assert await db.fetchval("SHOW plan_cache_mode") == "force_generic_plan"


async def test_a_custom_plan_is_made_for_one_statement_only(database_url: str,
                                                            bridge: None) -> None:
    # post.search is planned for its words (api/post.py): how common they are decides the plan.
    async with open_database(database_url, max_size=1, server_settings=API_SERVER_SETTINGS) as db:
        row = await db.fetchrow_custom_plan("SELECT current_setting('plan_cache_mode') AS mode")
        assert row is not None and row["mode"] == "force_custom_plan"
        assert await db.fetchval("SHOW plan_cache_mode") == "force_generic_plan"


def _literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


async def _generic_plan(db: Database, sql: str, values: list[Any]) -> tuple[Any, dict[str, Any]]:
    """Run `sql` once as the API's pool does (a generic plan); return its first column and the
    root of its EXPLAIN (ANALYZE, BUFFERS) plan."""
    async def explain(connection: asyncpg.Connection) -> tuple[Any, dict[str, Any]]:
        await connection.execute("SET plan_cache_mode = force_generic_plan")
        await connection.execute(f"PREPARE probe AS {sql}")
        execute = f"EXECUTE probe({', '.join(_literal(v) for v in values)})"
        answer = await connection.fetchval(execute)
        plan = await connection.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {execute}")
        parsed = orjson.loads(plan) if isinstance(plan, (str, bytes)) else plan  # json codec
        return answer, parsed[0]["Plan"]

    return await db.run(explain)


async def _add_communities(db: Database, count: int) -> None:
    await db.execute(
        "INSERT INTO communities (did, uri, rkey, rev, name, hosted_by, visibility, host_ok) "
        "SELECT 'did:plc:c' || lpad(n::text, 6, '0'), 'at://x/' || n, 'self', '3k7a3dmb5bk2c', "
        "'c' || n, 'did:web:coves.social', 'public', true FROM generate_series(1, $1) AS n",
        count)


async def test_community_lookup_reads_a_few_pages_under_a_generic_plan(db: Database) -> None:
    # Many communities, the one looked up late in DID order: a plan that walks the primary key in
    # order (what the generic plan of the earlier TARGET did, 3.6 ms at 10k) reads them all.
    await _add_communities(db, COMMUNITIES)
    wanted = f"did:plc:c{COMMUNITIES - 5:06d}"
    args = {"viewer": None, "pds": "https://pds.example", "cdn": None, "skip_host_check": False,
            **views.community_ref_args(wanted)}
    view, plan = await _generic_plan(db, views.GET.text, views.GET.args(args))
    assert orjson.loads(view)["did"] == wanted
    pages = plan["Shared Hit Blocks"] + plan["Shared Read Blocks"]
    assert pages < 60, f"community.get read {pages} pages for one community"


async def test_subscribers_page_of_a_popular_community_reads_only_that_page(db: Database) -> None:
    # A generic plan expects a community's average subscribers (here ~2). The popular one has
    # 3,000: joined to its target, or with the one-per-subscriber check as a join, Postgres read
    # all of them (and then sorted), 55 ms for 13.8k subscribers on the benchmark dataset.
    popular, subscribers = "did:plc:c000001", 3000
    await _add_communities(db, COMMUNITIES)
    await db.execute(
        "INSERT INTO subscriptions (uri, did, rkey, rev, subject, created_at, indexed_at) "
        "SELECT 'at://did:plc:u' || n || '/social.coves.community.subscription/s', "
        "'did:plc:u' || n, 's', '3k7a3dmb5bk2c', "
        "CASE WHEN n <= $1::int THEN $2 ELSE 'did:plc:c' || lpad((n - $1::int)::text, 6, '0') END, "
        "now() - n * interval '1 s', now() FROM generate_series(1, $1::int + $3::int) AS n",
        subscribers, popular, COMMUNITIES - 1)
    # The engine registers every DID it sees (hidden accounts are checked against them).
    await db.execute("INSERT INTO identities (did) SELECT DISTINCT did FROM subscriptions")
    await db.execute("ANALYZE subscriptions, identities")
    args = {"viewer": None, "pds": "https://pds.example", "cdn": None, "skip_host_check": False,
            "limit": 15, "after_k": None, "after_tie": None, **views.community_ref_args(popular)}
    query = views.SUBSCRIBERS.first
    found, plan = await _generic_plan(db, query.text, query.args(args))
    assert found is True
    pages = plan["Shared Hit Blocks"] + plan["Shared Read Blocks"]
    assert pages < 200, f"getSubscribers read {pages} pages for one page of subscribers"


async def test_a_later_feed_page_starts_at_its_cursor(db: Database) -> None:
    # A later page continues after the cursor's (key, uri). With the views' uri taken from the
    # record table and the key from the stats table, that was no index condition: the page
    # walked post_stats_hot from the top and filtered up to the cursor (sql/0014).
    posts, deep = 3000, 2500
    await _add_communities(db, 1)
    community = "did:plc:c000001"
    await db.execute(
        "INSERT INTO post_records (uri, community_did, rkey, rev, author_did, created_at) "
        "SELECT 'at://' || $1 || '/social.coves.community.post/p' || n, $1, 'p' || n, "
        "'3k7a3dmb5bk2c', 'did:plc:author', now() FROM generate_series(1, $2::int) AS n",
        community, posts)
    await db.execute(
        "INSERT INTO post_stats (uri, community_did, rev, created_at, score, hot_key) "
        "SELECT uri, community_did, rev, created_at, n, n FROM post_records "
        "CROSS JOIN LATERAL (SELECT substr(rkey, 2)::int AS n) AS k")
    await db.execute("INSERT INTO identities (did) VALUES ('did:plc:author'), ($1)", community)
    await db.execute("ANALYZE post_records, post_stats, communities, identities")
    after = await db.fetchrow("SELECT hot_key, uri FROM post_stats ORDER BY hot_key DESC, uri DESC "
                              "OFFSET $1 LIMIT 1", deep)
    assert after is not None
    args = {"viewer": None, "pds": "https://pds.example", "cdn": None, "skip_host_check": True,
            "limit": 15, "since": None, "after_k": after["hot_key"], "after_tie": after["uri"],
            "snapshot": await db.fetchval("SELECT pg_current_snapshot()::text"),
            "snapshot_at": time.time()}
    query = FEEDS[("discover", "hot")].next
    _, plan = await _generic_plan(db, query.text, query.args(args))
    pages = plan["Shared Hit Blocks"] + plan["Shared Read Blocks"]
    assert pages < 300, f"a page {deep} posts deep read {pages} pages"
