"""Crash consistency: the engine process SIGKILLed mid-stream, again and again, then restarted
from its stored cursor, ends in exactly the state of a clean run — rows and every counter."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from bench.emulator import JetstreamEmulator
from engine.db import Database
from engine.reconcile import reconcile
from tests.model import assert_same, model, random_history, stored

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 15_000
KILLS = 6


async def committed_cursor(db: Database) -> int:
    return await db.fetchval("SELECT cursor FROM ingest_cursors WHERE source = 'jetstream'") or 0


async def start_engine(database_url: str, url: str) -> trio.Process:
    env = {**os.environ, "DATABASE_URL": database_url, "JETSTREAM_URL": url, "METRICS_PORT": "0",
           "LOG_LEVEL": "warning", "BATCH_MAX_ROWS": "300", "BATCH_MAX_LATENCY_MS": "20",
           # resume 2 ms (≈ 2000 events here) before the cursor: replays some, loses none
           "JETSTREAM_REWIND_S": "0.002",
           # offline: hostedBy checks would fail and store unverified_host rejects
           "SKIP_DID_WEB_VERIFICATION": "true"}
    return await trio.lowlevel.open_process([sys.executable, "-m", "engine.cli", "engine"], env=env,
                                            cwd=ROOT, stdout=subprocess.DEVNULL)


async def wait_for_cursor(db: Database, process: trio.Process, target: int) -> None:
    with trio.fail_after(60):
        while await committed_cursor(db) < target:
            assert process.returncode is None, "the engine died on its own"
            await trio.sleep(0.02)


@pytest.mark.slow
async def test_sigkill_at_random_points_loses_and_doubles_nothing(db: Database, database_url: str,
                                                                   nursery: trio.Nursery) -> None:
    rng = random.Random(2026)
    history = random_history(rng, EVENTS)
    frames = [op.frame() for op in history]
    first = int(frames[0].split(b'"time_us":')[1].split(b",")[0])
    last = int(frames[-1].split(b'"time_us":')[1].split(b",")[0])
    # A running deployment has a cursor; Jetstream without one would start at the live tail.
    await db.execute("INSERT INTO ingest_cursors (source, cursor) VALUES ('jetstream', $1)", first - 1)
    emulator = JetstreamEmulator(frames, rate=8000)
    await nursery.start(emulator.serve)

    kills = 0
    while kills < KILLS:
        process = await start_engine(database_url, emulator.url)
        now = await committed_cursor(db)
        target = min(last - 1, now + rng.randrange(500, 3000))  # 1 µs apart: µs = events here
        await wait_for_cursor(db, process, target)
        await trio.sleep(rng.random() * 0.2)  # land the kill anywhere inside a batch
        process.kill()
        await process.wait()
        kills += 1
    connections = emulator.stats.connections
    process = await start_engine(database_url, emulator.url)
    with trio.fail_after(30):
        await emulator.wait_for_connections(connections + 1)  # running, signal handler installed
    await wait_for_cursor(db, process, last)
    process.terminate()
    with trio.fail_after(30):
        assert await process.wait() == 0  # SIGTERM drains and exits cleanly

    assert_same(await stored(db), model(history))
    assert await db.fetchval("SELECT count(*) FROM ingest_rejects") == 0
    assert await reconcile(db) == []
