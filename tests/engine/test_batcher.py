"""Batcher: ships on size, on latency (virtual clock), on close; keeps order; pushes back."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from engine.batcher import Batch, Batcher
from engine.decode import decode_jetstream
from engine.errors import RejectedEvent, RejectReason
from engine.records.community_profile import TABLE
from engine.tables import RowOp
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


async def test_batch_past_its_deadline_grows_while_the_writer_is_busy(
        autojump_clock: trio.testing.MockClock) -> None:
    """Group commit: nobody waits on the writer channel (the writer is writing), so a batch past
    its deadline keeps filling; it ships, whole, as soon as the writer asks for the next one."""
    b, receive = batcher(size=100, latency=0.25)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(b.run)
        b.add(event(1), op(1))
        await trio.sleep(1)  # four deadlines later, the writer still busy
        b.add(event(2), op(2))
        assert b.pending == 2  # not shipped: still the batch being filled
        start = trio.current_time()
        batch = await receive.receive()  # the writer is free
        assert trio.current_time() - start < 0.01
        assert [r[0] for r in batch.rows[TABLE]] == [1, 2] and batch.cursor == 2
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
