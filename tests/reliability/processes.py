"""The engine and the `coves` commands as real processes, offline, for the reliability suite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import trio

from engine.db import Database

ROOT = Path(__file__).resolve().parents[2]
COVES = [sys.executable, "-m", "engine.cli"]
# Offline: identity fetches go nowhere (a private address the fetcher refuses without a packet),
# and hostedBy checks are skipped (they would store unverified_host rejects).
OFFLINE_ENV = {"PLC_URL": "https://127.0.0.1:9", "SKIP_DID_WEB_VERIFICATION": "true",
               "METRICS_PORT": "0"}


def coves_env(database_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "warning", **OFFLINE_ENV,
            **extra}


async def start_engine(database_url: str, jetstream_url: str, *, log: Path | None = None,
                       **extra: str) -> trio.Process:
    """`coves engine` (python -m engine.cli engine) reading `jetstream_url`; its log lines are
    appended to `log` (else inherited)."""
    env = coves_env(database_url, JETSTREAM_URL=jetstream_url, **extra)
    stderr = None if log is None else log.open("ab")
    try:
        return await trio.lowlevel.open_process([*COVES, "engine"], env=env, cwd=ROOT,
                                                stdout=subprocess.DEVNULL, stderr=stderr)
    finally:
        if stderr is not None:
            stderr.close()  # the child has its own copy


async def run_coves(database_url: str, *args: str, check: bool = True,
                    **extra: str) -> subprocess.CompletedProcess[bytes]:
    """Run one `coves` command to completion; stdout and stderr captured."""
    return await trio.run_process([*COVES, *args], env=coves_env(database_url, **extra), cwd=ROOT,
                                  capture_stdout=True, capture_stderr=True, check=check)


async def committed_cursor(db: Database, source: str = "jetstream") -> int:
    value: Any = await db.fetchval("SELECT cursor FROM ingest_cursors WHERE source = $1", source)
    return int(value or 0)


async def wait_for_cursor(db: Database, target: int, *, process: trio.Process | None = None,
                          timeout: float = 60) -> None:
    """Poll the committed cursor until it reaches `target` (the engine must stay alive)."""
    with trio.fail_after(timeout):
        while await committed_cursor(db) < target:
            assert process is None or process.returncode is None, "the engine died on its own"
            await trio.sleep(0.02)
