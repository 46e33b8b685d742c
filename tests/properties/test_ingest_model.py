"""Invariants 1 and 4 as properties: any delivery of a history over every counted record kind —
duplicated, reordered (votes before posts, replies before parents, updates before creates),
split into any batches — ends in the state of the clean in-order run, computed here by an
independent model; and `reconcile` then finds no drift."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.db import open_bridge
from engine.pipeline import open_writer_database
from engine.reconcile import reconcile
from tests.helpers import ingest
from tests.model import Op, assert_same, deliveries, model, stored


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
