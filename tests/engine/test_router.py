"""The router paces a source that has many events in hand: it yields to the other tasks (the
writer's next statement) every YIELD_EVERY events instead of keeping the thread for a batch —
unless the source says it passed a schedule point itself (`yielded()`)."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import trio

from engine.batcher import Batch, Batcher
from engine.decode import decode_jetstream
from engine.events import Event
from engine.records import DEFAULT_REGISTRY
from engine.router import YIELD_EVERY, Router
from tests import factories as f

EVENTS = 20 * YIELD_EVERY


def events() -> list[Event]:
    community = f.did("c")
    return [decode_jetstream(f.subscription(f.did(n), f.tid(), community), cursor=n)
            for n in range(1, EVENTS + 1)]


@asynccontextmanager
async def router_beside_another_task() -> AsyncIterator[tuple[Router, Batcher, Callable[[], int]]]:
    """A router over a batch far larger than the stream (the batcher never asks the reader to
    wait), with another task running; yields (router, batcher, how often the other task ran)."""
    send, _receive = trio.open_memory_channel[Batch](math.inf)
    batcher = Batcher(send, source="test", max_size=10 * EVENTS, max_latency_s=3600,
                      known_collections=DEFAULT_REGISTRY.commits)
    ran = 0

    async def other_task() -> None:
        nonlocal ran
        while True:
            await trio.lowlevel.checkpoint()
            ran += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other_task)
        await trio.lowlevel.checkpoint()
        yield Router(DEFAULT_REGISTRY, batcher, label="test"), batcher, lambda: ran
        nursery.cancel_scope.cancel()


async def test_router_yields_between_events_of_one_batch() -> None:
    longest_run = run = 0  # events handled in a row while the other task did not run
    async with router_beside_another_task() as (router, batcher, other_task_ran):
        seen = other_task_ran()
        for event in events():
            await router.event(event)
            run = 0 if other_task_ran() != seen else run + 1
            seen = other_task_ran()
            longest_run = max(longest_run, run)
        assert batcher.pending == EVENTS
        # Trio runs every runnable task once per scheduling round: at most one round late.
        assert longest_run <= 2 * YIELD_EVERY, longest_run
        assert other_task_ran() >= EVENTS // (2 * YIELD_EVERY)


async def test_router_adds_no_yield_while_the_source_reports_its_own() -> None:
    # trio-websocket: every receive is a schedule point, and the source says so (`yielded()`).
    async with router_beside_another_task() as (router, batcher, other_task_ran):
        seen = other_task_ran()
        for event in events():
            router.yielded()
            await router.event(event)
        assert other_task_ran() == seen  # the router itself never yielded
        assert batcher.pending == EVENTS
