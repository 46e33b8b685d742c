"""Batcher: groups handled events into batches and hands them to the writer.

The reader task adds each event synchronously (no await, no channel hop per event: a Trio
channel send costs ~7 µs here, a quarter of our per-event budget). One flusher task ships a batch
when it is full, when the batcher closes, or once its oldest event has waited `max_latency_s` —
if the writer is idle then; while the writer is busy, a batch past its deadline keeps filling
until the writer is free or the batch is full (group commit: under load batches grow, and the
per-batch work — one counter update per busy subject, the commit — is shared by more events; an idle
writer still gets every event within `max_latency_s`). The writer says when it is free: it calls
`writer_idle()` right before it waits for its next batch (Writer.run's `on_idle`), and the
flusher holding a late batch sleeps until that signal, a full batch or closing — no timed
wake-ups while the writer works. A consumer that never signals gets each batch at its deadline.
The flusher is the only sender on the writer's channel, so batches keep their order. While the
writer is busy and the channel is full the flusher blocks on it, the reader fills the next batch
and then waits: memory stays within (channel capacity + 2) batches and the socket stops being
read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import math
import time
from collections import Counter
from collections.abc import Container
from typing import Any, Final

import trio

from .errors import RejectedEvent, RejectReason
from .events import COMMIT, Event
from .tables import RowOp, Table

__all__ = ["Batch", "Batcher", "REJECT_RAW_CAP_BYTES", "release_batches"]

# How much of an oversize frame we keep: enough to diagnose, small enough that a flood of them
# cannot fill the database. Other rejects are under the 4 MiB event cap and kept whole, so
# `coves redrive` can re-read them.
REJECT_RAW_CAP_BYTES: Final = 64 * 1024
# Events a written batch frees between two yields (release_batches): ~0.4-0.6 ms of work.
RELEASE_CHUNK: Final = 500
# Batch ids: the process start time (seconds, hex) and a counter, unique across restarts.
_BATCH_IDS: Final = itertools.count(int(time.time()) << 20)


@dataclasses.dataclass(slots=True)
class Batch:
    """Everything one writer transaction commits.

    Attributes:
        source: cursor key of the source (e.g. "jetstream").
        id: correlation id of the batch in log lines (`batch=`).
        rows: staged rows per table, in arrival order.
        events: the events that produced rows, with their rows (to retry them in parts if the
            batch fails, and to name the event behind a refused version).
        rejects: rows for ingest_rejects.
        cursor: position of the last event added (None: no position to store).
        first_time_us, last_time_us: event times, for lag.
        size: events added (applied, skipped or rejected).
        received, applied: counts per (collection, operation); skipped and rejected per reason.
        deadline: when the flusher ships it at the latest (trio clock).
        resolved_rejects: ingest_rejects ids this batch applies (redrive deletes them on commit).
    """

    source: str
    id: str = dataclasses.field(default_factory=lambda: f"b-{next(_BATCH_IDS):x}")
    rows: dict[Table, list[tuple[Any, ...]]] = dataclasses.field(default_factory=dict)
    events: list[tuple[Event, list[RowOp]]] = dataclasses.field(default_factory=list)
    rejects: list[tuple[Any, ...]] = dataclasses.field(default_factory=list)
    cursor: int | None = None
    first_time_us: int | None = None
    last_time_us: int | None = None
    size: int = 0
    received: Counter[tuple[str, str]] = dataclasses.field(default_factory=Counter)
    applied: Counter[tuple[str, str]] = dataclasses.field(default_factory=Counter)
    skipped: Counter[str] = dataclasses.field(default_factory=Counter)
    rejected: Counter[str] = dataclasses.field(default_factory=Counter)
    deadline: float = math.inf
    resolved_rejects: list[int] = dataclasses.field(default_factory=list)  # redrive: ids to delete

    def row_count(self) -> int:
        return sum(len(rows) for rows in self.rows.values())


def event_labels(event: Event, known: Container[str]) -> tuple[str, str]:
    """Metric labels for an event: a known collection or "other"; the operation or the kind."""
    if event.kind == COMMIT:
        return (event.collection if event.collection in known else "other", event.operation)
    return ("none", event.kind)


def reject_row(source: str, rejected: RejectedEvent, raw: bytes, event: Event | None,
               cursor: int | None) -> tuple[Any, ...]:
    """A row for ingest_rejects; the fingerprint makes a re-delivered event count once."""
    fingerprint = hashlib.sha256(rejected.reason.value.encode() + b"\0" + raw).digest()
    return (fingerprint, rejected.reason.value, rejected.detail[:1000], source,
            event.did if event else None, event.collection or None if event else None,
            event.rkey or None if event else None, event.rev or None if event else None,
            event.time_us if event else None, cursor,
            raw[:REJECT_RAW_CAP_BYTES] if rejected.reason is RejectReason.OVERSIZE else raw, len(raw))


class Batcher:
    """Accumulates events; its `run` task ships batches to the writer channel.

    Args:
        send: the writer's bounded channel.
        source: cursor key stored with each batch.
        max_size: events per batch before it ships.
        max_latency_s: longest an event waits in a batch before it ships (if the writer is idle).
        known_collections: collections with handlers (for metric labels).

    Group commit needs the writer's idle signal: pass `writer_idle` as `Writer.run`'s `on_idle`.
    """

    def __init__(self, send: trio.MemorySendChannel[Batch], *, source: str, max_size: int,
                 max_latency_s: float, known_collections: Container[str]) -> None:
        self._send = send
        self._source = source
        self._max_size = max_size
        self._max_latency_s = max_latency_s
        self._known = known_collections
        self._pending = Batch(source)
        self._closing = False
        self._has_items = trio.Event()
        self._urgent = trio.Event()  # full or closing: ship now
        self._wake = trio.Event()  # urgent, or the writer went idle: recheck a held batch
        self._writer_signals = False  # set by the first writer_idle(): group commit is on
        self._taken = trio.Event()

    # ---- reader side: synchronous adds, one await when the batch is full ----

    @property
    def pending(self) -> int:
        """Events in the batch being filled."""
        return self._pending.size

    @property
    def full(self) -> bool:
        return self._pending.size >= self._max_size

    def _note(self, event: Event | None, cursor: int | None) -> Batch:
        batch = self._pending
        if batch.size == 0:
            batch.deadline = trio.current_time() + self._max_latency_s
            self._has_items.set()
        batch.size += 1
        if cursor is not None:
            batch.cursor = cursor
        if event is not None:
            if batch.first_time_us is None:
                batch.first_time_us = event.time_us
            batch.last_time_us = event.time_us
        if batch.size >= self._max_size:
            self._urgent.set()
            self._wake.set()
        return batch

    def add(self, event: Event, ops: list[RowOp]) -> None:
        """Add an event and the rows its handler produced (none: counted as skipped by caller)."""
        batch = self._note(event, event.cursor)
        labels = event_labels(event, self._known)
        batch.received[labels] += 1
        if ops:
            batch.events.append((event, ops))
            rows = batch.rows
            for table, row in ops:
                bucket = rows.get(table)
                if bucket is None:
                    rows[table] = [row]
                else:
                    bucket.append(row)
            batch.applied[labels] += 1

    def add_skip(self, event: Event, reason: str) -> None:
        """Add an event we deliberately do not store (e.g. a collection we do not index)."""
        batch = self._note(event, event.cursor)
        batch.received[event_labels(event, self._known)] += 1
        batch.skipped[reason] += 1

    def add_reject(self, rejected: RejectedEvent, raw: bytes, event: Event | None,
                   cursor: int | None) -> None:
        """Add a refused event: it is stored in ingest_rejects in the same transaction."""
        batch = self._note(event, cursor)
        if event is not None:
            batch.received[event_labels(event, self._known)] += 1
        else:
            batch.received[("none", "undecodable")] += 1
        batch.rejects.append(reject_row(self._source, rejected, raw, event, cursor))
        batch.rejected[rejected.reason.value] += 1

    async def wait_until_taken(self) -> None:
        """Block the reader until the flusher took the full batch (backpressure)."""
        while self.full:
            await self._taken.wait()

    async def aclose(self) -> None:
        """Ship what is pending and close the writer channel once the flusher is done."""
        self._closing = True
        self._has_items.set()
        self._urgent.set()
        self._wake.set()

    # ---- writer side ----

    def writer_idle(self) -> None:
        """The writer is about to wait for its next batch, none queued (Writer.run's `on_idle`).

        Synchronous and cheap: it only wakes the flusher. From the first call on, the writer must
        call it before every such wait, since a batch past its deadline is then held while the
        writer is busy and this is what releases it.
        """
        self._writer_signals = True
        self._wake.set()

    # ---- flusher task ----

    def _take(self) -> Batch:
        batch, self._pending = self._pending, Batch(self._source)
        self._has_items = trio.Event()
        self._urgent = trio.Event()
        taken, self._taken = self._taken, trio.Event()
        taken.set()
        return batch

    def _writer_busy(self) -> bool:
        """No task waits on the writer's channel: the writer is writing (or batches are queued)."""
        return self._send.statistics().tasks_waiting_receive == 0

    async def _hold_while_writer_busy(self) -> None:
        """Group commit: keep a batch past its deadline filling while the writer is busy.

        Sleeps until the writer's idle signal, a full batch or closing (never on a timer); then
        the channel statistics say whether the writer really waits. A writer that never signalled
        cannot release a held batch, so without the signal the batch ships at its deadline.
        """
        while self._writer_signals:
            self._wake = trio.Event()  # fresh before the check: a signal after it is not lost
            if self._urgent.is_set() or not self._writer_busy():
                return
            await self._wake.wait()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Ship batches until closed; then close the writer channel.

        Resource handling: closes `send` when it returns, so the writer's loop ends.
        """
        task_status.started()
        async with self._send:
            while True:
                await self._has_items.wait()
                if not self._urgent.is_set():
                    with trio.move_on_at(self._pending.deadline):
                        await self._urgent.wait()
                    await self._hold_while_writer_busy()
                batch = self._take()
                if batch.size:
                    await self._send.send(batch)
                if self._closing and self._pending.size == 0:
                    return


async def release_batches(batches: trio.MemoryReceiveChannel[Batch]) -> None:
    """Free written batches' events and rows a few hundred at a time, yielding in between.

    Freeing a 5,000-event batch at once (its events, records and rows: ~200k objects) takes 3.5-6
    ms here. The writer did it between two transactions, with Postgres idle; in this task it
    overlaps the next batch's statements. A batch keeps its counters, cursor and times.
    """
    async with batches:
        async for batch in batches:
            parts: list[list[Any]] = [batch.events, *batch.rows.values(), batch.rejects]
            batch.events, batch.rows, batch.rejects = [], {}, []
            del batch
            for part in parts:
                while part:
                    del part[-RELEASE_CHUNK:]
                    await trio.lowlevel.checkpoint()
