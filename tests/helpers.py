"""Test helpers: an in-memory source, a one-call ingest, a plan as text, a recording sink."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import trio

from engine.db import Connection, Database
from engine.decode import decode_jetstream
from engine.errors import RejectedEvent
from engine.events import Event
from engine.pipeline import IngestSettings, run_ingest
from engine.sources import Sink, Source


class MemorySource:
    """Delivers a list of Jetstream frames; cursor = 1-based index (like a replay file)."""

    label = "replay"

    def __init__(self, frames: Sequence[bytes], name: str = "memory") -> None:
        self.frames = list(frames)
        self.name = name

    async def run(self, start: int | None, sink: Sink) -> None:
        for number, frame in enumerate(self.frames, start=1):
            if start is not None and number <= start:
                continue
            try:
                event = decode_jetstream(frame, cursor=number)
            except RejectedEvent as rejected:
                await sink.reject(rejected, frame, number)
                continue
            await sink.event(event)


async def ingest(db: Database, frames: Sequence[bytes], *, batch_size: int = 1000,
                 latency_s: float = 0.05, name: str = "memory", **kwargs: Any) -> int | None:
    """Run frames through the real pipeline (router, batcher, writer) into `db`.

    A batch closes at `batch_size` events or `latency_s` after its first, as the engine's do.
    """
    settings = IngestSettings(batch_max_size=batch_size, batch_max_latency_s=latency_s)
    return await run_ingest(db, MemorySource(frames, name), settings=settings, resume=False, **kwargs)


async def table(db: Database, sql: str, *args: Any) -> list[dict[str, Any]]:
    return [dict(row) for row in await db.fetch(sql, *args)]


async def explain(db: Database | Connection, sql: str, *args: Any) -> list[str]:
    """The lines of `EXPLAIN sql` (planned for `args`)."""
    return [row[0] for row in await db.fetch("EXPLAIN " + sql, *args)]


class RecordingSink:
    """A Sink that records what a source delivers, and whether another task ran between two of
    its `yielded()` calls (`turns`: counted by a task that only yields)."""

    def __init__(self, wanted: int) -> None:
        self.wanted = wanted
        self.events: list[int] = []
        self.calls: list[str] = []
        self.turns = 0
        self.turns_at_yield: list[int] = []
        self._done = trio.Event()

    async def read(self, source: Source, timeout_s: float = 30) -> None:
        """Run `source` from cursor 0 until `wanted` events arrived, beside the counting task."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._count_turns)
            nursery.start_soon(source.run, 0, self)
            with trio.fail_after(timeout_s):
                await self._done.wait()
            nursery.cancel_scope.cancel()

    def other_task_ran_within_two_yields(self) -> bool:
        """Trio runs each runnable task once a scheduling round, in varying order: another
        task runs at least once in any two of a source's schedule points."""
        marks = self.turns_at_yield
        return all(later > earlier for earlier, later in zip(marks, marks[2:]))

    async def event(self, event: Event) -> None:
        self.events.append(event.cursor)
        self.calls.append("event")
        if len(self.events) >= self.wanted:
            self._done.set()

    async def reject(self, *args: object, **kwargs: object) -> None:
        raise AssertionError(f"nothing here is rejected: {args}")

    def yielded(self) -> None:
        self.calls.append("yielded")
        self.turns_at_yield.append(self.turns)

    async def _count_turns(self) -> None:
        while True:
            await trio.lowlevel.checkpoint()
            self.turns += 1
