"""Upstream faults on a realistic stream: the forum workload, duplicated and reordered, served by
the emulator while it misbehaves once — each run must end in exactly the clean run's state (no
gap, no duplicated effect), with the refused frame (if any) stored as a reject.

tests/engine/test_jetstream_source.py checks each fault alone on a one-community stream; here the
stream has votes, comments, edits and deletes whose counters would show any gap or double count.
"""

from __future__ import annotations

import functools
import os
import random
from collections.abc import Awaitable, Callable

import orjson
import pytest
import trio
from prometheus_client import REGISTRY

from bench.emulator import Fault, JetstreamEmulator
from bench.workload import generate
from engine.batcher import Batch
from engine.db import Database, open_bridge
from engine.pipeline import IngestSettings, open_writer_database, run_ingest
from engine.sources.jetstream import JetstreamSource
from engine.sources.reconnect import Reconnector
from tests.conftest import TEMPLATE_DB, _admin, with_database
from tests.helpers import ingest

from .conftest import Scenario
from .state import database_state, deliver, diff_states

EVENTS = 3000
SETTINGS = IngestSettings(batch_max_size=200, batch_max_latency_s=0.02)
# Short enough to keep the stall scenario quick; 0.6 s fired without a fault on a loaded 2-core
# machine (one more connection than the scenario expects).
IDLE_TIMEOUT_S = 2.0
REWIND_S = 0.05


def reconnects(reason: str) -> float:
    labels = {"source": "jetstream", "reason": reason}
    return REGISTRY.get_sample_value("coves_ingest_reconnects_total", labels) or 0.0


class Run:
    """One engine pipeline against one emulator, with what the test needs to steer it."""

    def __init__(self, db: Database, delivered: list[bytes], nursery: trio.Nursery) -> None:
        self.db, self.delivered, self.nursery = db, delivered, nursery
        self.first = orjson.loads(delivered[0])["time_us"]
        self.last = orjson.loads(delivered[-1])["time_us"]
        self.cursor = 0
        self.moved = trio.Event()
        self.source: JetstreamSource | None = None

    def committed(self, batch: Batch) -> None:
        if batch.cursor is not None:
            self.cursor = max(self.cursor, batch.cursor)
            self.moved.set()

    async def until_cursor(self, target: int, timeout: float = 60) -> None:
        with trio.fail_after(timeout):
            while self.cursor < target:
                self.moved = trio.Event()
                await self.moved.wait()

    async def start(self, url: str) -> None:
        self.source = JetstreamSource(
            url, ("social.coves.*",), idle_timeout_s=IDLE_TIMEOUT_S, rewind_s=REWIND_S,
            reconnector=Reconnector("jetstream", base_s=0.01, cap_s=0.05))
        self.nursery.start_soon(functools.partial(
            run_ingest, self.db, self.source, settings=SETTINGS, start=self.first - 1,
            resume=False, on_commit=self.committed))


async def _serve(nursery: trio.Nursery, frames: list[bytes], **kwargs: object) -> JetstreamEmulator:
    emulator = JetstreamEmulator(frames, **kwargs)  # type: ignore[arg-type]
    await nursery.start(emulator.serve)
    return emulator


# Each fault: arm it (or act mid-stream), return what the test checks afterwards.
Act = Callable[[Run, JetstreamEmulator, trio.Nursery], Awaitable[str]]


async def _armed(fault: Fault, reason: str | None, run: Run, emulator: JetstreamEmulator,
                 nursery: trio.Nursery) -> str:
    emulator.schedule_fault(fault, after=len(run.delivered) // 3)
    before = reconnects(reason) if reason else 0.0
    await run.start(emulator.url)
    await run.until_cursor(run.last)
    if reason:
        assert reconnects(reason) == before + 1
        assert emulator.stats.connections == 2
    else:
        assert emulator.stats.connections == 1  # a bad frame is refused, the connection kept
    return f"{emulator.stats.connections} connection(s), {emulator.stats.frames_sent:,} frames sent"


async def _restart_all(run: Run, emulator: JetstreamEmulator, nursery: trio.Nursery) -> str:
    await run.start(emulator.url)
    await run.until_cursor(run.first + (run.last - run.first) // 2)
    committed = run.cursor
    emulator.close_all()
    await run.until_cursor(run.last)
    assert emulator.stats.connections == 2
    # The source resumes from the last event it delivered (≥ the committed one) minus the rewind.
    resumed_at = emulator.stats.last_query["cursor"]
    assert committed - int(REWIND_S * 1e6) <= resumed_at < run.last
    return (f"resumed with cursor {(resumed_at - committed) / 1000:+.1f} ms from the committed "
            f"one (last delivered − {REWIND_S * 1000:.0f} ms rewind)")


async def _listener_restart(run: Run, emulator: JetstreamEmulator, nursery: trio.Nursery) -> str:
    async with trio.open_nursery() as own:
        first = JetstreamEmulator(run.delivered)
        url = await own.start(first.serve)
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        await run.start(url)
        await run.until_cursor(run.first + (run.last - run.first) // 2)
        refused = reconnects("unreachable")
        first.close_all()
        own.cancel_scope.cancel()  # the listener goes away: connections are refused
    with trio.fail_after(30):
        while reconnects("unreachable") < refused + 2:
            await trio.sleep(0.01)
    second = JetstreamEmulator(run.delivered)
    await nursery.start(functools.partial(second.serve, port=port))
    await run.until_cursor(run.last)
    return (f"{reconnects('unreachable') - refused:.0f} refused attempts, then resumed on the "
            f"new listener with cursor {second.stats.last_query['cursor']}")


async def _slow(run: Run, emulator: JetstreamEmulator, nursery: trio.Nursery) -> str:
    idle = reconnects("idle")
    await run.start(emulator.url)
    started = trio.current_time()
    await run.until_cursor(run.last)
    assert reconnects("idle") == idle and emulator.stats.connections == 1
    return (f"{len(run.delivered)} events over {trio.current_time() - started:.1f} s, one "
            f"connection, no idle reconnect")


FAULTS: dict[str, tuple[Act, int]] = {  # scenario → (act, events in the stream)
    "upstream-abrupt-close": (functools.partial(_armed, Fault.ABRUPT_CLOSE, "closed"), EVENTS),
    "upstream-close-1011": (functools.partial(_armed, Fault.CLOSE, "closed"), EVENTS),
    "upstream-stall": (functools.partial(_armed, Fault.STALL, "idle"), EVENTS),
    "upstream-garbage": (functools.partial(_armed, Fault.GARBAGE, None), EVENTS),
    "upstream-oversize": (functools.partial(_armed, Fault.OVERSIZE, None), EVENTS),
    "upstream-slow": (_slow, 30),
    "upstream-restart-cursor": (_restart_all, EVENTS),
    "upstream-listener-restart": (_listener_restart, EVENTS),
}
EXPECTED_REJECTS = {"upstream-garbage": ["invalid_json"], "upstream-oversize": ["oversize"]}
SLOW_RATE = 1 / 0.15  # one event every 150 ms: well inside the idle timeout


def _frames(events: int) -> list[bytes]:
    return list(generate(events, seed=11, communities=20, users=200))


async def _clean_state(url: str, frames: list[bytes]) -> dict[str, list[tuple[object, ...]]]:
    async with open_bridge(), open_writer_database(url) as db:
        await ingest(db, frames)
        return await database_state(db)


@pytest.fixture(scope="module")
def oracles(pg_admin_url: str, template_url: str) -> dict[int, dict[str, list[tuple[object, ...]]]]:
    """The clean run's state of each stream length, computed once for the module."""
    name = f"coves_oracle_faults_{os.getpid()}"
    states = {}
    for events in sorted({events for _act, events in FAULTS.values()}):
        trio.run(_admin, pg_admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)",
                 f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")
        states[events] = trio.run(_clean_state, with_database(pg_admin_url, name), _frames(events))
    trio.run(_admin, pg_admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    return states


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.scenario(name)) for name in FAULTS])
async def test_fault_ends_in_the_clean_state(
        name: str, writer_db: Database, oracles: dict[int, dict[str, list[tuple[object, ...]]]],
        nursery: trio.Nursery, scenario: Scenario) -> None:
    act, events = FAULTS[name]
    frames = _frames(events)
    delivered, shape = deliver(frames, random.Random(name), max_distance=200)
    run = Run(writer_db, delivered, nursery)
    emulator = await _serve(nursery, delivered, rate=SLOW_RATE if name == "upstream-slow" else None)
    detail = await act(run, emulator, nursery)

    want = dict(oracles[events])
    got = await database_state(writer_db)
    stored = got.pop("ingest_rejects")
    rejects = [row[stored[0].index("reason")] for row in stored[1:]]
    want.pop("ingest_rejects")
    assert sorted(rejects) == EXPECTED_REJECTS.get(name, [])
    problems = diff_states(got, want)
    assert not problems, "\n".join(problems[:40])
    scenario.note(f"{shape['delivered']:,} frames ({shape['duplicated']} duplicated, "
                  f"{shape['reordered']} reordered); {detail}; state = clean run"
                  + (f"; reject: {rejects[0]}" if rejects else ""))
