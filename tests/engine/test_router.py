"""The router paces a source that has many events in hand: it yields to the other tasks (the
writer's next statement) every YIELD_EVERY events instead of keeping the thread for a batch."""

from __future__ import annotations

import math

import trio

from engine.batcher import Batch, Batcher
from engine.decode import decode_jetstream
from engine.records import DEFAULT_REGISTRY
from engine.router import YIELD_EVERY, Router
from tests import factories as f

EVENTS = 20 * YIELD_EVERY


async def test_router_yields_between_events_of_one_batch() -> None:
    send, _receive = trio.open_memory_channel[Batch](math.inf)
    # A batch far larger than the stream: the batcher never asks the reader to wait.
    batcher = Batcher(send, source="test", max_size=10 * EVENTS, max_latency_s=3600,
                      known_collections=DEFAULT_REGISTRY.commits)
    router = Router(DEFAULT_REGISTRY, batcher, label="replay")
    community = f.did("c")
    frames = [f.subscription(f.did(n), f.tid(), community) for n in range(EVENTS)]
    other_task_ran = 0

    async def other_task() -> None:
        nonlocal other_task_ran
        while True:
            await trio.lowlevel.checkpoint()
            other_task_ran += 1

    longest_run = run = 0  # events handled in a row while the other task did not run
    async with trio.open_nursery() as nursery:
        nursery.start_soon(other_task)
        await trio.lowlevel.checkpoint()
        seen = other_task_ran
        for number, frame in enumerate(frames, start=1):
            await router.event(decode_jetstream(frame, cursor=number))
            run = 0 if other_task_ran != seen else run + 1
            seen = other_task_ran
            longest_run = max(longest_run, run)
        nursery.cancel_scope.cancel()
    assert batcher.pending == EVENTS
    # Trio runs every runnable task once per scheduling round: at most one round late.
    assert longest_run <= 2 * YIELD_EVERY, longest_run
    assert other_task_ran >= EVENTS // (2 * YIELD_EVERY)


async def test_router_adds_no_yield_while_the_source_reports_its_own() -> None:
    # trio-websocket: every receive is a schedule point, and the source says so (`yielded()`).
    send, _receive = trio.open_memory_channel[Batch](math.inf)
    batcher = Batcher(send, source="test", max_size=10 * EVENTS, max_latency_s=3600,
                      known_collections=DEFAULT_REGISTRY.commits)
    router = Router(DEFAULT_REGISTRY, batcher, label="jetstream")
    community = f.did("c")
    frames = [f.subscription(f.did(n), f.tid(), community) for n in range(EVENTS)]
    other_task_ran = 0

    async def other_task() -> None:
        nonlocal other_task_ran
        while True:
            await trio.lowlevel.checkpoint()
            other_task_ran += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other_task)
        await trio.lowlevel.checkpoint()
        seen = other_task_ran
        for number, frame in enumerate(frames, start=1):
            router.yielded()
            await router.event(decode_jetstream(frame, cursor=number))
        assert other_task_ran == seen  # the router itself never yielded
        nursery.cancel_scope.cancel()
    assert batcher.pending == EVENTS
