"""The API's connections use generic plans (engine/service.py API_SERVER_SETTINGS): a statement
is planned once per connection, not at every call. A generic plan does not know the parameters'
values, so each statement must be good without them; these tests pin the one that was not."""

from __future__ import annotations

import orjson

from api.views import community as views
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


async def test_community_lookup_reads_a_few_pages_under_a_generic_plan(db: Database) -> None:
    # Many communities, the one looked up late in DID order: a plan that walks the primary key in
    # order (what the generic plan of the earlier TARGET did, 3.6 ms at 10k) reads them all.
    await db.execute(
        "INSERT INTO communities (did, uri, rkey, rev, name, hosted_by, visibility, host_ok) "
        "SELECT 'did:plc:c' || lpad(n::text, 6, '0'), 'at://x/' || n, 'self', '3k7a3dmb5bk2c', "
        "'c' || n, 'did:web:coves.social', 'public', true FROM generate_series(1, $1) AS n",
        COMMUNITIES)
    wanted = f"did:plc:c{COMMUNITIES - 5:06d}"
    args = {"viewer": None, "pds": "https://pds.example", "cdn": None, "skip_host_check": False,
            **views.community_ref_args(wanted)}
    values = views.GET.args(args)

    def literal(value: object) -> str:
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            return str(value).lower()
        return "'" + str(value).replace("'", "''") + "'"

    async def explain(connection: object) -> dict:  # type: ignore[type-arg]
        await connection.execute("SET plan_cache_mode = force_generic_plan")  # type: ignore[attr-defined]
        await connection.execute(f"PREPARE community_get AS {views.GET.text}")  # type: ignore[attr-defined]
        execute = f"EXECUTE community_get({', '.join(literal(v) for v in values)})"
        view = await connection.fetchval(execute)  # type: ignore[attr-defined]
        assert orjson.loads(view)["did"] == wanted
        plan = await connection.fetchval(  # type: ignore[attr-defined]
            f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {execute}")
        parsed = orjson.loads(plan) if isinstance(plan, (str, bytes)) else plan  # json codec
        return parsed[0]["Plan"]  # type: ignore[no-any-return]

    plan = await db.run(explain)
    pages = plan["Shared Hit Blocks"] + plan["Shared Read Blocks"]
    assert pages < 60, f"community.get read {pages} pages for one community"
