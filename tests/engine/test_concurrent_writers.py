"""Several writers at once (one per FIREHOSE_URL, backfill beside the live engine) still keep
every counter equal to a recount: they take turns on the writer advisory lock."""

from __future__ import annotations

import trio

from engine.db import Database
from engine.pipeline import open_writer_database
from engine.reconcile import reconcile
from tests import factories as f
from tests.helpers import ingest

C = f.did("community")
USERS = 120


async def test_two_writers_on_one_subject_keep_its_count_exact(bridge: None, database_url: str,
                                                               writer_db: Database) -> None:
    frames = [f.subscription(f.did(f"user{i}"), f.tid(), C) for i in range(USERS)]
    await ingest(writer_db, [f.profile(C)])
    async with open_writer_database(database_url) as other:
        async with trio.open_nursery() as nursery:
            # Batches of 2: many small transactions, each recounting the same community while
            # the other writer inserts subscriptions to it.
            nursery.start_soon(lambda: ingest(writer_db, frames[0::2], batch_size=2, name="one"))
            nursery.start_soon(lambda: ingest(other, frames[1::2], batch_size=2, name="two"))
    assert await writer_db.fetchval("SELECT subscriber_count FROM communities") == USERS
    assert await reconcile(writer_db) == []
