"""Postgres restarted five times under a running `coves engine` mid-stream: the process rides
through every outage, loses nothing, and resumes ingesting within 10 s of the database's return
(measured from `pg_ctl start` returning to the next committed batch)."""

from __future__ import annotations

import random
import time
from pathlib import Path

import orjson
import pytest
import trio

from bench.emulator import JetstreamEmulator
from bench.workload import generate, write_jsonl
from engine.db import open_database
from engine.errors import DatabaseUnavailable
from tests.conftest import EmbeddedPostgres

from .conftest import Scenario
from .processes import committed_cursor, run_coves, start_engine, wait_for_cursor
from .state import database_state, deliver, diff_states

EVENTS = 30_000
RATE = 2000  # events/s the emulator sends: the stream lasts ~15 s plus the outages
RESTARTS = 5
RESUME_LIMIT_S = 10.0
ENGINE_ENV = {"BATCH_MAX_ROWS": "500", "BATCH_MAX_LATENCY_MS": "50", "JETSTREAM_REWIND_S": "0.05"}



async def _read_cursor(url: str) -> int | None:
    try:
        async with open_database(url, min_size=1, max_size=1) as db:
            return await committed_cursor(db)
    except DatabaseUnavailable:
        return None


@pytest.mark.slow
@pytest.mark.scenario("postgres-restarts")
async def test_engine_survives_five_postgres_restarts_and_resumes_fast(
        bridge: None, private_postgres: EmbeddedPostgres, oracle_url: str, tmp_path: Path, nursery: trio.Nursery,
        scenario: Scenario) -> None:
    rng = random.Random(5)
    frames = list(generate(EVENTS, seed=5))
    delivered, shape = deliver(frames, rng)
    clean = tmp_path / "clean.jsonl"
    write_jsonl(clean, iter(frames))
    url = private_postgres.url
    await run_coves(url, "migrate")
    first = orjson.loads(delivered[0])["time_us"]
    last = first + 100 * (len(delivered) - 1)
    async with open_database(url, max_size=1) as db:
        await db.execute("INSERT INTO ingest_cursors (source, cursor) VALUES ('jetstream', $1)",
                         first - 1)
    emulator = JetstreamEmulator(delivered, rate=RATE)
    await nursery.start(emulator.serve)
    log = tmp_path / "engine.log"
    process = await start_engine(url, emulator.url, log=log, **ENGINE_ENV)
    resumed: list[float] = []
    downtime: list[float] = []
    try:
        step = (last - first) // (RESTARTS + 1)
        for restart in range(RESTARTS):
            async with open_database(url, max_size=1) as db:
                await wait_for_cursor(db, first + step * (restart + 1) - rng.randrange(step // 2),
                                      process=process)
            stopped = time.monotonic()
            await trio.to_thread.run_sync(private_postgres.stop)
            await trio.sleep(rng.uniform(0.5, 3.0))  # the outage itself: the scenario's length
            assert process.returncode is None, "the engine died while the database was down"
            await trio.to_thread.run_sync(private_postgres.start)
            back = time.monotonic()
            downtime.append(back - stopped)
            with trio.fail_after(RESUME_LIMIT_S * 3):
                before = await _read_cursor(url)
                while before is None:  # accepting connections a moment after pg_ctl returns
                    before = await _read_cursor(url)
                async with open_database(url, max_size=1) as db:
                    while await committed_cursor(db) <= before:
                        assert process.returncode is None, "the engine died after the restart"
                        await trio.sleep(0.02)
            resumed.append(time.monotonic() - back)
        async with open_database(url, max_size=1) as db:
            await wait_for_cursor(db, last, process=process, timeout=120)
        process.terminate()
        with trio.fail_after(30):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
        print("engine log, last lines:\n" + "\n".join(log.read_text().splitlines()[-15:]))
    scenario.note(f"{RESTARTS} restarts, database down {min(downtime):.1f}–{max(downtime):.1f} s "
                  f"each; ingestion resumed after {', '.join(f'{s:.2f}' for s in resumed)} s "
                  f"(limit {RESUME_LIMIT_S:.0f} s)")
    assert max(resumed) < RESUME_LIMIT_S

    await run_coves(oracle_url, "replay", str(clean))
    async with open_database(oracle_url, max_size=1) as oracle_db:
        want = await database_state(oracle_db)
    async with open_database(url, max_size=1) as db:
        got = await database_state(db)
        assert await db.fetchval("SELECT count(*) FROM ingest_rejects") == 0
    problems = diff_states(got, want)
    assert not problems, "\n".join(problems[:40])
    scenario.note(f"{shape['delivered']:,} frames ({shape['duplicated']:,} duplicated, "
                  f"{shape['reordered']:,} reordered): database equal to the clean replay")
