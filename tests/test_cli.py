"""The `coves` command as operators run it: real processes, real Postgres."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import trio

from engine.db import Database
from tests import factories as f
from tests.conftest import shared_path

COVES = [sys.executable, "-m", "engine.cli"]
ROOT = Path(__file__).resolve().parents[1]


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "LOG_FORMAT": "json", "METRICS_PORT": "0", **extra}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def snapshot(db: Database) -> list[tuple]:
    """Every row of every table with its xmin: equal snapshots mean no row was written."""
    tables = [r["tablename"] for r in await db.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")]
    rows: list[tuple] = []
    for name in tables:
        rows += [(name, *r.values()) for r in await db.fetch(f"SELECT xmin::text, * FROM {name} ORDER BY 2")]
    return rows


async def test_replay_of_real_sample_twice_changes_no_row(db: Database, database_url: str) -> None:
    sample = shared_path("jetstream-samples", "expected_v1.jsonl")
    first = await trio.run_process([*COVES, "replay", str(sample)], capture_stdout=True,
                                   env=env(DATABASE_URL=database_url), cwd=ROOT)
    assert b"152 events: 2 applied, 150 skipped (unwanted_collection 150), 0 rejected" \
        in first.stdout
    before = await snapshot(db)
    await trio.run_process([*COVES, "replay", str(sample)], capture_stdout=True,
                           env=env(DATABASE_URL=database_url), cwd=ROOT)
    assert await snapshot(db) == before


async def test_replay_applies_coves_records_and_stores_rejects(db: Database, database_url: str,
                                                               tmp_path: Path) -> None:
    community, user = f.did("c"), f.did("u")
    lines = [f.profile(community, name="cats"), f.subscription(user, f.tid(), community),
             b"{garbage", f.subscription(user, f.tid(), "nope")]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = await trio.run_process([*COVES, "replay", str(path)], capture_stdout=True,
                                    env=env(DATABASE_URL=database_url), cwd=ROOT)
    assert b"4 events: 2 applied, 0 skipped, 2 rejected (invalid_json 1, invalid_record 1)" in result.stdout
    assert await db.fetchval("SELECT subscriber_count FROM communities") == 1
    before = await snapshot(db)
    await trio.run_process([*COVES, "replay", str(path)], env=env(DATABASE_URL=database_url), cwd=ROOT,
                           capture_stdout=True)
    after = await snapshot(db)
    # the second run only bumps the rejects' seen_count
    assert [r for r in after if r[0] != "ingest_rejects"] == [r for r in before if r[0] != "ingest_rejects"]


async def test_bad_setting_exits_2_naming_the_variable() -> None:
    result = await trio.run_process([*COVES, "engine"], capture_stderr=True, check=False,
                                    env=env(BATCH_MAX_LATENCY_MS="soon"), cwd=ROOT)
    assert result.returncode == 2
    assert b"BATCH_MAX_LATENCY_MS" in result.stderr and b"milliseconds, 1..60000" in result.stderr


async def test_engine_offline_keeps_retrying_serves_metrics_and_stops_on_sigterm(
        database_url: str) -> None:
    closed = free_port()  # nothing listens here: like an unreachable Jetstream
    metrics_port = free_port()
    process = await trio.lowlevel.open_process(
        [*COVES, "engine"], stderr=subprocess.PIPE, cwd=ROOT,
        env=env(DATABASE_URL=database_url, JETSTREAM_URL=f"ws://127.0.0.1:{closed}/subscribe",
                METRICS_PORT=str(metrics_port), JETSTREAM_IDLE_TIMEOUT_S="1"))
    assert process.stderr is not None
    log = b""
    try:
        with trio.fail_after(30):
            while log.count(b"unavailable (unreachable)") < 2:
                log += await process.stderr.receive_some(65536)
            async with httpx.AsyncClient() as client:
                text = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
            assert 'coves_ingest_reconnects_total{reason="unreachable",source="jetstream"}' in text
            process.send_signal(signal.SIGTERM)
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
    assert b'"delay_s"' in log and b"retrying in" in log


async def test_check_config_prints_masked_settings_and_every_problem() -> None:
    result = await trio.run_process(
        [*COVES, "check-config"], capture_stdout=True, check=False, cwd=ROOT,
        env=env(COVES_ENV="production", AUTH_SKIP_VERIFY="true", BATCH_MAX_ROWS="lots",
                DATABASE_URL="postgresql://coves:hunter2@db.internal/coves"))
    out = result.stdout.decode()
    assert result.returncode == 2
    assert "postgresql://***@db.internal/coves" in out and "hunter2" not in out
    assert "BATCH_MAX_ROWS                    (invalid: see problems)" in out
    assert "AUTH_SKIP_VERIFY must be off in production" in out
    assert "BATCH_MAX_ROWS (BATCH_MAX_ROWS) = 'lots'" in out


async def test_check_config_in_development_notes_what_production_would_refuse() -> None:
    result = await trio.run_process([*COVES, "check-config"], capture_stdout=True, check=False,
                                    cwd=ROOT, env=env(SKIP_DID_WEB_VERIFICATION="true"))
    out = result.stdout.decode()
    assert result.returncode == 0 and "problems: none" in out
    assert "production would refuse:" in out and "SKIP_DID_WEB_VERIFICATION must be off" in out


async def test_refresh_identities_makes_dids_due(db: Database, writer_db: Database,
                                                 database_url: str) -> None:
    from tests.helpers import ingest
    await ingest(writer_db, [f.profile(f.did("c"))])
    await db.execute("UPDATE identities SET resolve_after = NULL")
    await db.execute("UPDATE communities SET host_checked_for = 'x'")
    result = await trio.run_process([*COVES, "refresh-identities", f.did("c"), "--communities"],
                                    capture_stdout=True, env=env(DATABASE_URL=database_url), cwd=ROOT)
    assert b"2 row(s) due now" in result.stdout
    assert await db.fetchval("SELECT resolve_after IS NOT NULL FROM identities WHERE did = $1", f.did("c"))
    assert await db.fetchval("SELECT host_checked_for IS NULL FROM communities")
    assert await db.fetchval("SELECT count(*) FROM identities WHERE resolve_after IS NOT NULL") == 1
