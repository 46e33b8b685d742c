"""DIDs and AT-URIs compare byte-wise (COLLATE "C", sql/0012) in the tables, the views and the
writer's staging tables, and the migration that made them so keeps every row."""

from __future__ import annotations

import shutil
from pathlib import Path

import asyncpg

from engine.db import Database, open_bridge, open_database
from engine.migrate import SQL_DIR
from engine.pipeline import open_writer_database
from engine.records import DEFAULT_REGISTRY
from engine.records.fields import IDENTIFIER
from tests import factories as f
from tests.engine.test_migrate import migrate
from tests.helpers import ingest, table

# Columns holding a DID or an AT-URI, by name: the schema's naming rule.
_DID_OR_URI_NAMES = {"did", "uri", "subject", "created_by", "hosted_by", "disabled_by", "maintainer"}
_COLUMN_COLLATIONS = """
    SELECT c.relname AS relation, a.attname AS name, co.collname AS collation
      FROM pg_attribute AS a
      JOIN pg_class AS c ON c.oid = a.attrelid
      LEFT JOIN pg_collation AS co ON co.oid = a.attcollation
     WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind::text = ANY($1::text[])
       AND a.attnum > 0 AND NOT a.attisdropped AND a.atttypid = 'text'::regtype
     ORDER BY 1, 2"""


def holds_did_or_uri(name: str) -> bool:
    return name in _DID_OR_URI_NAMES or name.endswith(("_did", "_uri"))


async def test_every_did_and_uri_column_compares_bytewise(db: Database) -> None:
    columns = await table(db, _COLUMN_COLLATIONS, ["r", "v"])
    identifiers = [c for c in columns if holds_did_or_uri(c["name"])]
    assert len(identifiers) >= 40  # the rule found the schema's columns, tables and views
    assert [c for c in identifiers if c["collation"] != "C"] == []
    # … and only those: text people read keeps the database's collation.
    assert {c["collation"] for c in columns if c["name"] in ("title", "content", "name")} == {"default"}


def test_staged_did_and_uri_columns_compare_bytewise() -> None:
    staged = [(t.name, c.name, c.type) for t in DEFAULT_REGISTRY.tables for c in t.columns
              if holds_did_or_uri(c.name)]
    assert len(staged) >= 30
    assert [s for s in staged if s[2] != IDENTIFIER] == []


async def test_the_writers_staging_tables_compare_bytewise(writer_db: Database) -> None:
    async def staging(connection: asyncpg.Connection) -> list[dict[str, str]]:
        rows = await connection.fetch(_COLUMN_COLLATIONS.replace(
            "current_schema()::regnamespace", "pg_my_temp_schema()"), ["r"])
        return [dict(row) for row in rows]

    columns = await writer_db.run(staging)  # made when the writer's connection opened
    # The tallies' pair and delta tables hold a voter's (owner) and a subject's identifiers.
    identifiers = [c for c in columns if holds_did_or_uri(c["name"]) or c["name"] == "owner"]
    assert len(identifiers) >= 30
    assert [c for c in identifiers if c["collation"] != "C"] == []


async def test_upgrade_keeps_rows_views_and_counts(empty_url: str, tmp_path: Path) -> None:
    before_0012 = tmp_path / "sql"
    (before_0012 / "functions").mkdir(parents=True)
    for path in SQL_DIR.glob("*.sql"):
        if int(path.name[:4]) < 12:
            shutil.copy(path, before_0012)
    for path in (SQL_DIR / "functions").glob("*.sql"):
        shutil.copy(path, before_0012 / "functions")
    await migrate(empty_url, before_0012)

    community, user = f.did("community"), f.did("user")
    p1, c1, s1, v1, v2 = (f.tid(n) for n in range(1, 6))
    post = f.uri(community, "social.coves.community.post", p1)
    comment = f.uri(user, "social.coves.community.comment", c1)
    frames = [f.profile(community), f.subscription(user, s1, community),
              f.post(community, p1, author=user), f.comment(user, c1, root=post),
              f.vote(user, v1, post), f.vote(f.did("other"), v2, comment, "down")]
    views = ("SELECT * FROM posts ORDER BY uri", "SELECT * FROM comments ORDER BY uri",
             "SELECT did, subscriber_count, post_count FROM communities ORDER BY did")
    async with open_bridge():
        async with open_writer_database(empty_url) as db:
            await ingest(db, frames)
            old = [await table(db, sql) for sql in views]
        shutil.copy(SQL_DIR / "0012_identifier_collation.sql", before_0012)
        assert await migrate(empty_url, before_0012) == ["identifier_collation"]
        async with open_writer_database(empty_url) as db:
            assert [await table(db, sql) for sql in views] == old
            assert old[0][0]["upvote_count"] == 1 and old[1][0]["downvote_count"] == 1
            assert old[2][0]["subscriber_count"] == 1 and old[2][0]["post_count"] == 1
            collations = {(c["relation"], c["name"]): c["collation"]
                          for c in await table(db, _COLUMN_COLLATIONS, ["r", "v"])}
            assert collations[("posts", "uri")] == collations[("votes", "subject_uri")] == "C"
            # The writer goes on after the upgrade: a newer vote replaces the older one.
            await ingest(db, [f.vote(user, v1, post, "down", rev=f.tid(10**6))])
            assert (await table(db, "SELECT score FROM posts"))[0]["score"] == -1
