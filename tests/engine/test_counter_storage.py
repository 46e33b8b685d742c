"""How the counter tables are stored (sql/0007): room for in-place updates, and the rank history
log without a primary-key index — it still keeps old keys and prunes expired rows. A new post or
comment is written once: inserted with its counters and hot key, not inserted and then updated."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest

from engine.db import Database
from tests import factories as f
from tests.helpers import ingest

C, U1, U2 = f.did("c"), f.did("u1"), f.did("u2")
P = f.uri(C, f.POST, "3k7a3dmb5bk2c")


async def test_counter_tables_leave_room_for_in_place_updates(writer_db: Database) -> None:
    rows = await writer_db.fetch(
        "SELECT relname, reloptions FROM pg_class "
        "WHERE relname IN ('post_stats', 'comment_stats', 'communities') ORDER BY relname")
    assert [(r["relname"], r["reloptions"]) for r in rows] == [
        ("comment_stats", ["fillfactor=80"]), ("communities", ["fillfactor=80"]),
        ("post_stats", ["fillfactor=80"])]


async def test_rank_history_keeps_old_keys_and_prunes_expired_rows(writer_db: Database) -> None:
    await ingest(writer_db, [f.profile(C), f.post(C, "3k7a3dmb5bk2c")])
    await ingest(writer_db, [f.vote(U1, f.tid(), P)])
    kept = await writer_db.fetch("SELECT score FROM rank_history WHERE uri = $1", P)
    assert [r["score"] for r in kept] == [0]  # the keys before the vote

    # A row from two days ago, and one comment: comment_count is no sort key, so no history.
    await writer_db.execute(
        "INSERT INTO rank_history (uri, hot_key, score, created_at, changed_at) "
        "VALUES ('at://expired', 0, 0, now(), now() - interval '2 days')")
    await ingest(writer_db, [f.comment(U2, f.tid(), root=P)])
    assert await writer_db.fetchval("SELECT comment_count FROM posts WHERE uri = $1", P) == 1
    assert await writer_db.fetchval("SELECT count(*) FROM rank_history WHERE uri = $1", P) == 1

    # The next sort-key change prunes what is older than the retention, and keeps the rest.
    await ingest(writer_db, [f.vote(U2, f.tid(), P, "down")])
    rows = await writer_db.fetch("SELECT uri, score FROM rank_history "
                                 "WHERE uri IN ($1, 'at://expired') ORDER BY id", P)
    assert [(r["uri"], r["score"]) for r in rows] == [(P, 0), (P, 1)]


_HOT_KEY_OF_SCORE = ("SELECT hot_key = coves_hot_key($2, LEAST(COALESCE(created_at, first_seen_at), "
                     "first_seen_at)) FROM {table} WHERE uri = $1")


async def test_new_posts_and_comments_are_inserted_with_their_hot_key(writer_db: Database) -> None:
    await ingest(writer_db, [f.profile(C), f.post(C, "3k7a3dmb5bk2c")])
    comment = f.uri(U1, f.COMMENT, "3k7a3dmb5bk2d")
    await ingest(writer_db, [f.comment(U1, "3k7a3dmb5bk2d", root=P)])
    for table, uri in (("post_stats", P), ("comment_stats", comment)):
        assert await writer_db.fetchval(_HOT_KEY_OF_SCORE.format(table=table), uri, 0)
    # No second write of the new rows: an update of their hot key would have logged the old one.
    assert await writer_db.fetchval("SELECT count(*) FROM rank_history") == 0


async def test_a_post_is_inserted_with_the_votes_and_comments_stored_before_it(
        writer_db: Database) -> None:
    # Votes and a comment from an earlier batch, then the post with more votes in its own batch
    # (sources merge before targets): the row is inserted with every count and its hot key.
    await ingest(writer_db, [f.profile(C), f.vote(U1, f.tid(), P), f.vote(U2, f.tid(), P, "down"),
                             f.comment(U1, "3k7a3dmb5bk2d", root=P)])
    await ingest(writer_db, [f.post(C, "3k7a3dmb5bk2c"), f.vote(f.did("u3"), f.tid(), P),
                             f.vote(f.did("u4"), f.tid(), P)])
    row = await writer_db.fetchrow("SELECT upvote_count, downvote_count, score, comment_count "
                                   "FROM post_stats WHERE uri = $1", P)
    assert tuple(row) == (3, 1, 2, 1)
    assert await writer_db.fetchval(_HOT_KEY_OF_SCORE.format(table="post_stats"), P, 2)
    assert await writer_db.fetchval("SELECT post_count FROM communities WHERE did = $1", C) == 1
    assert await writer_db.fetchval("SELECT count(*) FROM rank_history") == 0  # written once


async def test_the_hot_key_is_the_documented_formula_and_inlined(writer_db: Database) -> None:
    """sql/functions/hot_key.sql: sign(s)·log10(max(|s|, 1)) + (created − 2024-01-01) / 45000 s,
    to 7 decimals — and a body Postgres inlines into the statements calling it (the writer's
    vote deltas call it ~40k times per 100k forum events; a call that is not inlined costs
    2.5x)."""
    epoch = datetime(2024, 1, 1, tzinfo=timezone.utc)
    created = [datetime(2023, 6, 1, 12, 34, 56, 789012, tzinfo=timezone.utc), epoch,
               datetime(2026, 11, 27, 10, 0, 0, 500000, tzinfo=timezone.utc)]
    for score in (-1000, -10, -1, 0, 1, 9, 10, 12345):
        for when in created:
            wanted = (math.copysign(math.log10(max(abs(score), 1)), score) if score else 0.0) + (
                when - epoch).total_seconds() / 45000
            got = await writer_db.fetchval("SELECT coves_hot_key($1, $2)", score, when)
            assert got == pytest.approx(wanted, abs=1e-7), (score, when)
    plan = await writer_db.fetchval(
        "EXPLAIN (VERBOSE, FORMAT JSON) SELECT coves_hot_key(s, c) "
        "FROM (VALUES (3, now())) AS v(s, c)")
    assert "coves_hot_key" not in str(plan)
    assert "round" in str(plan)
