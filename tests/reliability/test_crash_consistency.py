"""Crash consistency at scale: 200k forum events, duplicated and reordered by the upstream, the
engine process SIGKILLed 50 times at random points — the final database equals a clean replay of
the same events (every table but bookkeeping; tests/reliability/state.py says which and why) and
`coves reconcile` finds no drift."""

from __future__ import annotations

import random
import time
from pathlib import Path

import orjson
import pytest
import trio

from bench.emulator import JetstreamEmulator
from bench.workload import generate, write_jsonl
from engine.db import Database, open_database

from .conftest import Scenario
from .processes import committed_cursor, run_coves, start_engine, wait_for_cursor
from .state import database_state, deliver, diff_states, row_counts

EVENTS = 200_000
KILLS = 50
SEED = 9
# Resume 50 ms of event time (500 events at the workload's 10k events/s) before the cursor: a
# restart replays a little, never the whole stream.
REWIND_S = "0.05"
ENGINE_ENV = {"BATCH_MAX_ROWS": "2000", "BATCH_MAX_LATENCY_MS": "50", "JETSTREAM_REWIND_S": REWIND_S}
EARLY_KILLS = 0.15  # share of lives killed at a random moment of start-up, before any progress


async def _oracle(oracle_url: str, path: Path) -> float:
    started = time.monotonic()
    result = await run_coves(oracle_url, "replay", str(path))
    assert b"0 rejected" in result.stdout, result.stdout
    return time.monotonic() - started


@pytest.mark.slow
@pytest.mark.scenario("crash-sigkill")
async def test_fifty_sigkills_end_in_the_clean_replay_state(
        db: Database, database_url: str, oracle_url: str, tmp_path: Path, nursery: trio.Nursery,
        scenario: Scenario) -> None:
    rng = random.Random(SEED)
    frames = list(generate(EVENTS, seed=SEED))
    delivered, shape = deliver(frames, rng)
    scenario.note(f"{shape['events']:,} events delivered as {shape['delivered']:,} frames: "
                  f"{shape['duplicated']:,} duplicated, {shape['reordered']:,} reordered")
    clean = tmp_path / "clean.jsonl"
    write_jsonl(clean, iter(frames))
    oracle_seconds: list[float] = []

    async def oracle() -> None:
        oracle_seconds.append(await _oracle(oracle_url, clean))

    nursery.start_soon(oracle)  # the clean run, into the second database, meanwhile

    first = orjson.loads(delivered[0])["time_us"]
    last = first + 100 * (len(delivered) - 1)
    # A running deployment has a cursor; without one Jetstream would start at the live tail.
    await db.execute("INSERT INTO ingest_cursors (source, cursor) VALUES ('jetstream', $1)", first - 1)
    emulator = JetstreamEmulator(delivered)
    await nursery.start(emulator.serve)

    started = time.monotonic()
    early = 0
    for kill in range(KILLS):
        process = await start_engine(database_url, emulator.url, **ENGINE_ENV)
        if rng.random() < EARLY_KILLS:
            early += 1
            await trio.sleep(rng.random() * 1.5)  # the kill point itself: anywhere in start-up
        else:
            now = await committed_cursor(db)
            remaining = (last - max(now, first)) // 100
            step = max(200, int(remaining / (KILLS - kill + 1) * rng.uniform(0.2, 1.8)))
            await wait_for_cursor(db, min(last - 100, max(now, first) + 100 * step), process=process)
            await trio.sleep(rng.random() * 0.2)  # the kill point: anywhere inside a batch
        assert process.returncode is None, "the engine died on its own"
        process.kill()
        await process.wait()
    killed_at = await committed_cursor(db)
    connections = emulator.stats.connections
    process = await start_engine(database_url, emulator.url, **ENGINE_ENV)
    with trio.fail_after(30):
        await emulator.wait_for_connections(connections + 1)  # running, signal handler installed
    await wait_for_cursor(db, last, process=process, timeout=180)
    process.terminate()
    with trio.fail_after(30):
        assert await process.wait() == 0  # SIGTERM drains and exits cleanly
    seconds = time.monotonic() - started
    scenario.note(f"{KILLS} SIGKILLs ({early} during start-up), "
                  f"{(killed_at - first) // 100:,} of {len(delivered):,} frames committed before "
                  f"the last kill; ingest incl. restarts {seconds:.0f} s, "
                  f"{emulator.stats.connections} connections, "
                  f"{emulator.stats.frames_sent:,} frames sent")

    with trio.fail_after(300):
        while not oracle_seconds:
            await trio.sleep(0.1)
    scenario.note(f"oracle `coves replay` of {len(frames):,} events: {oracle_seconds[0]:.1f} s")
    async with open_database(oracle_url, max_size=2) as oracle_db:
        want = await database_state(oracle_db)
    got = await database_state(db)
    problems = diff_states(got, want)
    assert not problems, "\n".join(problems[:40])
    counts = row_counts(got)
    scenario.note("tables equal to the oracle: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
    assert counts["votes"] > EVENTS // 4 and counts["comment_stats"] > EVENTS // 10  # a real forum's shape

    result = await run_coves(database_url, "reconcile", check=False)
    assert (result.returncode, result.stdout.strip()) == (0, b"reconcile: no drift")
    scenario.note("`coves reconcile`: no drift")
