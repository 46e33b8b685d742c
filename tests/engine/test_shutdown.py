"""Graceful shutdown: SIGTERM writes the batch in hand, commits its cursor, closes the upstream
connection and exits 0 within the grace period."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import orjson
import trio

from bench.emulator import JetstreamEmulator
from engine.db import Database
from engine.service import SHUTDOWN_GRACE_S
from tests import factories as f
from tests.test_cli import ROOT, free_port

C = f.did("c")


async def pending(port: int) -> float:
    try:
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    except httpx.ConnectError:  # not listening yet
        return -1
    for line in text.splitlines():
        if line.startswith('coves_ingest_pending_events{source="jetstream"}'):
            return float(line.split()[-1])
    return -1


async def test_sigterm_drains_the_pending_batch_and_exits(db: Database, database_url: str,
                                                         nursery: trio.Nursery) -> None:
    frames = [f.profile(C)] + [f.subscription(f.did(f"u{i}"), f.tid(), C) for i in range(299)]
    last = orjson.loads(frames[-1])["time_us"]
    emulator = JetstreamEmulator(frames)
    await nursery.start(emulator.serve)
    await db.execute("INSERT INTO ingest_cursors (source, cursor) VALUES ('jetstream', 1)")
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "JETSTREAM_URL": emulator.url,
           "METRICS_PORT": str(port), "LOG_LEVEL": "warning",
           # nothing is written before the signal: the whole stream sits in one pending batch
           "BATCH_MAX_ROWS": "100000", "BATCH_MAX_LATENCY_MS": "60000"}
    process = await trio.lowlevel.open_process([sys.executable, "-m", "engine.cli", "engine"],
                                               env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        with trio.fail_after(30):
            while await pending(port) != len(frames):
                await trio.sleep(0.05)
        assert await db.fetchval("SELECT count(*) FROM subscriptions") == 0
        signalled = time.monotonic()
        process.terminate()
        with trio.fail_after(SHUTDOWN_GRACE_S + 5):
            assert await process.wait() == 0
        print(f"drained and exited in {time.monotonic() - signalled:.2f} s")
    finally:
        if process.returncode is None:
            process.kill()
    assert await db.fetchval("SELECT count(*) FROM subscriptions") == 299
    assert await db.fetchval("SELECT subscriber_count FROM communities") == 299
    assert await db.fetchval("SELECT cursor FROM ingest_cursors WHERE source = 'jetstream'") == last
