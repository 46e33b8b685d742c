"""Invariant 5 under a real outage: Postgres stopped mid-run and started again loses nothing."""

from __future__ import annotations

import random
import time

import trio
from prometheus_client import REGISTRY

from engine.db import open_bridge, open_database
from engine.errors import RejectedEvent
from engine.migrate import apply_migrations
from engine.decode import decode_jetstream
from engine.pipeline import IngestSettings, open_writer_database, run_ingest
from engine.sources import Sink
from tests.conftest import EmbeddedPostgres, with_database
from tests.model import assert_same, model, random_history, stored



class GatedSource:
    """Delivers frames; before frame `gate_at` it signals `reached` and waits for `resume`."""

    label = "replay"
    name = "gated"

    def __init__(self, frames: list[bytes], gate_at: int) -> None:
        self.frames, self.gate_at = frames, gate_at
        self.reached, self.resume = trio.Event(), trio.Event()
        self.starts: list[int | None] = []

    async def run(self, start: int | None, sink: Sink) -> None:
        self.starts.append(start)
        for number, frame in enumerate(self.frames, start=1):
            if start is not None and number <= start:
                continue
            if number == self.gate_at and not self.resume.is_set():
                self.reached.set()
                await self.resume.wait()
            try:
                await sink.event(decode_jetstream(frame, cursor=number))
            except RejectedEvent:
                raise AssertionError("test frames are valid") from None


def breaker_state() -> float | None:
    return REGISTRY.get_sample_value("coves_breaker_state", {"breaker": "database"})


async def wait_until(predicate, timeout: float = 30) -> None:  # noqa: ANN001
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.02)


async def test_postgres_stopped_mid_run_loses_nothing(private_postgres: EmbeddedPostgres) -> None:
    history = random_history(random.Random(7), 3000)
    source = GatedSource([op.frame() for op in history], gate_at=1500)
    commits: list[float] = []
    url = with_database(private_postgres.url, "postgres")
    async with open_bridge():
        async with open_database(url, max_size=1) as admin:
            await apply_migrations(admin)
        async with open_writer_database(url) as db, trio.open_nursery() as nursery:
            settings = IngestSettings(batch_max_size=100, batch_max_latency_s=0.02)
            nursery.start_soon(lambda: run_ingest(db, source, settings=settings,
                                                  on_commit=lambda b: commits.append(time.monotonic())))
            await source.reached.wait()
            await trio.to_thread.run_sync(private_postgres.stop)
            source.resume.set()
            await wait_until(lambda: breaker_state() == 2)  # open: intake paused
            committed_while_down = len(commits)
            await trio.to_thread.run_sync(private_postgres.start)
            back = time.monotonic()
            await wait_until(lambda: len(commits) > committed_while_down)
            resumed_after = commits[committed_while_down] - back
            print(f"ingestion resumed {resumed_after:.2f} s after Postgres came back")
            assert resumed_after < 10
            await wait_until(lambda: source.starts and len(source.starts) >= 2)
        async with open_database(url) as check:
            assert_same(await stored(check), model(history))
            assert await check.fetchval("SELECT cursor FROM ingest_cursors WHERE source = 'gated'") == 3000
    # the restart resumed from the committed cursor, not from the start or from the frames read
    assert source.starts[0] is None and 0 < source.starts[1] < 1500
    assert breaker_state() == 0
