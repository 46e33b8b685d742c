"""Invariants 1 and 4 as properties: any delivery of a history over every counted record kind —
duplicated, reordered (votes before posts, replies before parents, updates before creates),
split into any batches — ends in the state of the clean in-order run, computed here by an
independent model; and `reconcile` then finds no drift.

Votes' counters are kept by deltas (engine/tables.py, Tally), so the vote-heavy property and
the one with account purges mixed in check that those deltas add up to a full recount whatever
the order: several vote records of one voter on one subject, deletes of the newest, re-creates,
votes before their subject, purges before, between and after them."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.db import open_bridge
from engine.pipeline import open_writer_database
from engine.reconcile import reconcile
from tests.helpers import ingest
from tests.model import Op, assert_same, deliveries, model, purging_deliveries, stored


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(delivery=deliveries(), batch_size=st.integers(1, 8))
async def test_any_delivery_ends_in_the_clean_run_state(
        database_url: str, delivery: tuple[list[Op], list[list[Op]]], batch_size: int) -> None:
    # pytest-trio runs each Hypothesis example in its own trio.run: open the pool per example.
    async with open_bridge(), open_writer_database(database_url) as db:
        await db.execute("TRUNCATE communities, subscriptions, post_records, post_stats, comment_records, "
                         "comment_stats, votes, identities, "
                         "ingest_cursors, ingest_rejects")
        history, runs = delivery
        for run in runs:  # each run is an engine restart that re-reads from its own start
            await ingest(db, [op.frame() for op in run], batch_size=batch_size)
        assert_same(await stored(db), model(history))
        assert await db.fetchval("SELECT count(*) FROM ingest_rejects") == 0
        assert await reconcile(db) == []


_TABLES = ("communities, subscriptions, post_records, post_stats, comment_records, comment_stats, "
           "votes, identities, ingest_cursors, ingest_rejects")


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(delivery=deliveries(("post", "comment", "vote", "vote", "vote"), focus=True,
                               min_size=10),
       batch_size=st.integers(1, 8), subjects_first=st.booleans())
async def test_vote_deltas_end_in_the_clean_run_state(
        database_url: str, delivery: tuple[list[Op], list[list[Op]]], batch_size: int,
        subjects_first: bool) -> None:
    async with open_bridge(), open_writer_database(database_url) as db:
        await db.execute(f"TRUNCATE {_TABLES}")
        history, runs = delivery
        if subjects_first:  # a run of the posts and comments first: most votes go by deltas
            runs = [[op for op in history if op.kind != "vote"], *runs]
        for run in runs:
            await ingest(db, [op.frame() for op in run], batch_size=batch_size)
        assert_same(await stored(db), model(history))
        assert await reconcile(db) == []


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(runs=purging_deliveries(), batch_size=st.integers(1, 8))
async def test_counters_equal_a_recount_with_account_purges(
        database_url: str, runs: list[list[Op]], batch_size: int) -> None:
    async with open_bridge(), open_writer_database(database_url) as db:
        await db.execute(f"TRUNCATE {_TABLES}")
        for run in runs:
            await ingest(db, [op.frame() for op in run], batch_size=batch_size)
        assert await db.fetchval("SELECT count(*) FROM ingest_rejects") == 0
        assert await reconcile(db) == []
