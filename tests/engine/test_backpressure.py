"""A stalled writer stops the reader: the pipeline holds a bounded number of events."""

from __future__ import annotations

import itertools

import trio

from engine.db import Database
from engine.decode import decode_jetstream
from engine.pipeline import BATCH_QUEUE_SIZE, IngestSettings, run_ingest
from engine.sources import Sink
from tests import factories as f

BATCH = 50


class EndlessSource:
    """Delivers subscription events forever, counting what the pipeline accepted."""

    label = "replay"
    name = "endless"

    def __init__(self) -> None:
        self.delivered = 0

    async def run(self, start: int | None, sink: Sink) -> None:
        community = f.did("c")
        for number in itertools.count(1):
            frame = f.subscription(f.did(number), f.tid(), community)
            await sink.event(decode_jetstream(frame, cursor=number))
            self.delivered += 1


async def test_stalled_writer_stops_the_reader(writer_db: Database, db: Database) -> None:
    source = EndlessSource()
    settings = IngestSettings(batch_max_size=BATCH, batch_max_latency_s=0.01)
    async with trio.open_nursery() as nursery:
        # Hold a lock the writer's merge needs: its transaction blocks, like a stuck database.
        async def hold_lock(connection) -> None:  # noqa: ANN001 - runs on the asyncio side
            async with connection.transaction():
                await connection.execute("LOCK TABLE subscriptions IN ACCESS EXCLUSIVE MODE")
                locked_flag.append(True)
                while not release_flag:
                    await connection.execute("SELECT pg_sleep(0.01)")

        locked_flag: list[bool] = []
        release_flag: list[bool] = []
        nursery.start_soon(db.run, hold_lock)
        with trio.fail_after(10):
            while not locked_flag:
                await trio.sleep(0.01)
        nursery.start_soon(lambda: run_ingest(writer_db, source, settings=settings, resume=False))
        # Wait until the reader stops making progress.
        with trio.fail_after(10):
            seen = -1
            while source.delivered != seen:
                seen = source.delivered
                await trio.sleep(0.2)
        # writer holds 1 batch, BATCH_QUEUE_SIZE queued, flusher holds 1, one pending full batch
        bound = (BATCH_QUEUE_SIZE + 3) * BATCH
        assert 0 < source.delivered <= bound, source.delivered
        stalled_at = source.delivered
        release_flag.append(True)
        with trio.fail_after(10):
            while await db.fetchval("SELECT count(*) FROM subscriptions") < stalled_at:
                await trio.sleep(0.05)
        assert source.delivered > stalled_at  # the reader runs again
        nursery.cancel_scope.cancel()
