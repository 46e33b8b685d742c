"""Batcher: ships on size, on latency (virtual clock), on close; keeps order; pushes back;
group commit driven by the writer's idle signal, without timed wake-ups."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import pytest
import trio
import trio.testing

from engine.batcher import RELEASE_CHUNK, Batch, Batcher, release_batches
from engine.breaker import Breaker
from engine.decode import decode_jetstream
from engine.errors import RejectedEvent, RejectReason
from engine.records.community_profile import TABLE
from engine.table_stats import table_state
from engine.tables import RowOp
from engine.writer import WritePlan, Writer
from tests import factories as f


def event(n: int):  # noqa: ANN201 - test helper
    return decode_jetstream(f.profile(f.did(n)), cursor=n)


def op(n: int) -> list[RowOp]:
    return [RowOp(TABLE, (n,))]


def batcher(capacity: int = 10, *, size: int = 3, latency: float = 1.0
            ) -> tuple[Batcher, trio.MemoryReceiveChannel[Batch]]:
    send, receive = trio.open_memory_channel[Batch](capacity)
    return Batcher(send, source="s", max_size=size, max_latency_s=latency,
                   known_collections={f.PROFILE}), receive


async def test_full_batch_ships_at_once_in_order(autojump_clock: trio.testing.MockClock) -> None:
    b, receive = batcher(size=3)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(b.run)
        for n in range(1, 7):
            b.add(event(n), op(n))
            if b.full:
                await b.wait_until_taken()
        first, second = await receive.receive(), await receive.receive()
        assert trio.current_time() == 0  # no latency wait: shipped because full
        assert [r[0] for r in first.rows[TABLE]] == [1, 2, 3]
        assert [r[0] for r in second.rows[TABLE]] == [4, 5, 6]
        assert (first.cursor, second.cursor) == (3, 6)
        await b.aclose()


async def test_partial_batch_ships_after_latency(autojump_clock: trio.testing.MockClock) -> None:
    b, receive = batcher(size=100, latency=0.25)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(b.run)
        await trio.sleep(5)  # an idle batcher ships nothing
        b.add(event(1), op(1))
        start = trio.current_time()
        batch = await receive.receive()
        assert trio.current_time() - start == pytest.approx(0.25)
        assert batch.size == 1 and batch.received[(f.PROFILE, "create")] == 1
        await b.aclose()


class GatedDatabase:
    """Stands in for the writer's database: each batch's transaction lasts until the test opens
    the gate, so the test decides exactly how long the real Writer stays busy."""

    def __init__(self) -> None:
        self.started: list[Batch] = []  # batches whose transaction began, in order
        self.started_rows: list[list[int]] = []  # their rows (the writer frees them after)
        self._gate = trio.Event()
        self.writing = trio.Event()  # set when a transaction starts

    async def run(self, fn: Any, *args: Any) -> Any:
        if fn is table_state:  # the writer reads the tables' sizes first: none here
            return {}, {}
        plan, batch = args[:2]
        self.started.append(batch)
        self.started_rows.append(rows(batch))
        self.writing.set()
        await self._gate.wait()
        self._gate = trio.Event()
        return []

    def commit(self) -> None:
        """Let the transaction in progress finish."""
        self.writing = trio.Event()
        self._gate.set()


def rows(batch: Batch) -> list[int]:
    return [row[0] for row in batch.rows[TABLE]]


class StepCounter(trio.abc.Instrument):
    """Counts the steps (wake-ups) of the task named `name`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task.name == self.name:
            self.steps += 1


@contextmanager
def counting_steps(name: str) -> Iterator[StepCounter]:
    counter = StepCounter(name)
    trio.lowlevel.add_instrument(counter)
    try:
        yield counter
    finally:
        trio.lowlevel.remove_instrument(counter)


def writer(db: GatedDatabase) -> Writer:
    return Writer(db, WritePlan((), ()), breaker=Breaker("database"), label="test")  # type: ignore[arg-type]


async def test_batch_past_its_deadline_grows_while_the_writer_is_busy(
        autojump_clock: trio.testing.MockClock) -> None:
    """Group commit: while the writer is writing, a batch past its deadline keeps filling, and
    the flusher sleeps (no timed wake-ups); it ships, whole, as soon as the writer signals idle."""
    b, receive = batcher(capacity=2, size=100, latency=0.25)
    db = GatedDatabase()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(writer(db).run, receive, on_idle=b.writer_idle))
        nursery.start_soon(b.run, name="flusher")
        b.add(event(1), op(1))
        await db.writing.wait()  # the idle writer got it at its deadline
        assert trio.current_time() == pytest.approx(0.25)
        b.add(event(2), op(2))
        await trio.sleep(0.5)  # batch 2 is past its deadline; the writer is still busy
        with counting_steps("flusher") as flusher:
            for n in range(3, 6):
                await trio.sleep(1)  # many deadlines later, the writer still busy
                b.add(event(n), op(n))
            assert b.pending == 4  # not shipped: still the batch being filled
            assert flusher.steps == 0  # polling every 2 ms would have woken it ~1,500 times
            start = trio.current_time()
            db.commit()  # batch 1 commits: the writer signals idle and waits
            await db.writing.wait()
        assert trio.current_time() == start  # shipped at once, not at a later poll
        assert 1 <= flusher.steps <= 3
        assert db.started_rows == [[1], [2, 3, 4, 5]]
        assert db.started[1].cursor == 5 and b.pending == 0
        db.commit()
        await b.aclose()


async def test_idle_writer_gets_a_lone_event_within_the_latency(
        autojump_clock: trio.testing.MockClock) -> None:
    """An idle, signalling writer gets each lone event at its deadline: its idle signal neither
    ships a batch early nor is needed again to ship the next one."""
    b, receive = batcher(size=100, latency=0.25)
    db = GatedDatabase()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(writer(db).run, receive, on_idle=b.writer_idle))
        nursery.start_soon(b.run)
        for n in (1, 2):
            await trio.sleep(5)  # an idle batcher ships nothing
            b.add(event(n), op(n))
            start = trio.current_time()
            await db.writing.wait()
            assert trio.current_time() - start == pytest.approx(0.25)
            db.commit()
        assert db.started_rows == [[1], [2]]
        await b.aclose()


async def test_a_held_batch_ships_when_full_or_closing(autojump_clock: trio.testing.MockClock) -> None:
    """The writer busy and a batch held past its deadline: filling it up ships it into the
    channel at once, and so does closing the batcher; order is kept."""
    b, receive = batcher(capacity=2, size=3, latency=0.25)
    db = GatedDatabase()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(writer(db).run, receive, on_idle=b.writer_idle))
        nursery.start_soon(b.run)
        b.add(event(1), op(1))
        await db.writing.wait()  # the writer is busy with [1] from here on
        b.add(event(2), op(2))
        await trio.sleep(1)
        for n in (3, 4):
            b.add(event(n), op(n))
        await b.wait_until_taken()
        assert receive.statistics().current_buffer_used == 1  # [2, 3, 4], queued
        b.add(event(5), op(5))
        await trio.sleep(1)
        await b.aclose()  # closing ships [5] behind it although the writer is still busy
        await trio.testing.wait_all_tasks_blocked()
        assert receive.statistics().current_buffer_used == 2
        while len(db.started) < 3 or db.writing.is_set():
            db.commit()
            await trio.testing.wait_all_tasks_blocked()
    assert db.started_rows == [[1], [2, 3, 4], [5]]


async def test_without_the_writer_signal_a_batch_ships_at_its_deadline(
        autojump_clock: trio.testing.MockClock) -> None:
    """A consumer that never signals idle cannot release a held batch: it gets each batch at its
    deadline, like a batcher without group commit, even while it is not waiting."""
    b, receive = batcher(size=100, latency=0.25)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(b.run)
        b.add(event(1), op(1))
        await trio.sleep(1)  # busy elsewhere, not waiting on the channel
        assert b.pending == 0 and receive.statistics().current_buffer_used == 1
        b.add(event(2), op(2))
        await trio.sleep(1)
        assert [rows(receive.receive_nowait()), rows(receive.receive_nowait())] == [[1], [2]]
        await b.aclose()


async def test_close_ships_the_rest_then_closes_channel(autojump_clock: trio.testing.MockClock) -> None:
    b, receive = batcher(size=100, latency=60)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(b.run)
        b.add(event(1), op(1))
        b.add_skip(event(2), "unwanted_collection")
        await b.aclose()
        batches = [batch async for batch in receive]
    assert len(batches) == 1 and batches[0].size == 2 and batches[0].cursor == 2
    assert batches[0].skipped == {"unwanted_collection": 1}
    assert trio.current_time() < 1


async def test_writer_stall_blocks_the_reader(autojump_clock: trio.testing.MockClock) -> None:
    """With the writer stalled, at most channel + 2 batches are accepted, then add() blocks."""
    b, receive = batcher(capacity=1, size=2)
    added = 0

    async def reader() -> None:
        nonlocal added
        for n in range(1, 100):
            b.add(event(n), op(n))
            added += 1
            if b.full:
                await b.wait_until_taken()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(b.run)
        nursery.start_soon(reader)
        await trio.testing.wait_all_tasks_blocked()
        # one batch in the channel, one held by the flusher, one full pending batch
        assert added == 6
        assert receive.statistics().current_buffer_used == 1
        await receive.receive()
        await trio.testing.wait_all_tasks_blocked()
        assert added == 8
        nursery.cancel_scope.cancel()


async def test_rejects_carry_reason_and_fingerprint() -> None:
    b, receive = batcher(size=10)
    rejected = RejectedEvent(RejectReason.INVALID_JSON, "bad")
    b.add_reject(rejected, b"{x", None, 7)
    b.add_reject(rejected, b"{x", None, 8)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(b.run)
        await b.aclose()
    batch = receive.receive_nowait()
    assert batch.rejected == {"invalid_json": 2} and batch.cursor == 8
    assert batch.rejects[0][0] == batch.rejects[1][0] and batch.rejects[0][1] == "invalid_json"


async def test_written_batches_are_freed_in_parts_between_other_tasks_turns() -> None:
    # Freeing a batch at once costs the writer 3.5-6 ms between two transactions.
    batch = Batch("s", cursor=7, size=2 * RELEASE_CHUNK + 1)
    batch.events = [(event(n), op(n)) for n in range(2 * RELEASE_CHUNK + 1)]
    batch.rows = {TABLE: [(n,) for n in range(RELEASE_CHUNK)]}
    events, table_rows = batch.events, batch.rows[TABLE]
    send, receive = trio.open_memory_channel[Batch](1)
    seen: set[tuple[int, int]] = set()  # (events, rows) left, as other tasks saw them

    async with trio.open_nursery() as nursery:
        nursery.start_soon(release_batches, receive)
        async with send:
            await send.send(batch)
        while events or table_rows:
            seen.add((len(events), len(table_rows)))
            await trio.lowlevel.checkpoint()
    assert (batch.events, batch.rows, batch.rejects) == ([], {}, [])
    assert (batch.cursor, batch.size) == (7, 2 * RELEASE_CHUNK + 1)  # what commits report stays
    # Freed part by part: whatever order Trio runs the two tasks in each round, this one sees
    # the events partly freed at least once (in the second round at the latest).
    assert any(0 < events_left < 2 * RELEASE_CHUNK + 1 for events_left, _ in seen), seen


async def test_the_writer_frees_a_batch_after_its_commit_callback(
        autojump_clock: trio.testing.MockClock) -> None:
    b, receive = batcher(size=2)
    db = GatedDatabase()
    seen: list[list[int]] = []
    committed = Writer(db, WritePlan((), ()), breaker=Breaker("database"),  # type: ignore[arg-type]
                       label="test", on_commit=lambda batch: seen.append(rows(batch)))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(committed.run, receive, on_idle=b.writer_idle))
        nursery.start_soon(b.run)
        b.add(event(1), op(1))
        b.add(event(2), op(2))
        await db.writing.wait()
        db.commit()
        await b.aclose()
    assert seen == [[1, 2]]  # the callback saw the batch whole
    assert db.started[0].rows == {} and db.started[0].events == []  # then it was freed
