"""Embedded Postgres: used when DATABASE_URL is unset.

pgserver (a PyPI wheel that ships the Postgres binaries) runs a server on a Unix socket in the
data directory. We start it at program start and stop it at exit; if the program is killed the
server stays up and the next start reuses it. It runs with settings sized for the machine
(`tuned_settings`), written once to its data directory's postgresql.auto.conf; a setting an
operator changed there with ALTER SYSTEM stays theirs.
"""

from __future__ import annotations

import atexit
import logging
import os
import subprocess
import time
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import trio

__all__ = ["DATABASE_NAME", "open_embedded_postgres", "start_server", "tuned_settings"]

LOGGER = logging.getLogger(__name__)
DATABASE_NAME: Final = "coves"
MIB: Final = 1024 * 1024
# Postgres's defaults suit a shared laptop: 128 MB of shared buffers, which the forum's indexes
# outgrow after about a million events, and a checkpoint every 1 GB of WAL (~400k events), after
# which each page is logged whole again on its next change. Measured on 1.5M forum events (five
# replays of 300k into one database): Postgres CPU per 300k grew 27 → 48 s and WAL 0.8 → 3.9 GB
# with the defaults; 22 → 35 s and 0.7 → 0.8 GB with these.
SHARED_BUFFERS_SHARE: Final = 0.25  # of the machine's memory …
SHARED_BUFFERS_MAX_MIB: Final = 2048  # … up to this
SHARED_BUFFERS_MIN_MIB: Final = 128  # Postgres's default
FIXED_SETTINGS: Final = {"max_wal_size": "4GB", "checkpoint_timeout": "15min"}
_MARK: Final = "coves-setting:"
# Crash recovery replays up to max_wal_size of WAL (measured: 2.5 GB in 15 s here); a slow disk
# takes minutes. Past this, starting fails with the log's path.
START_TIMEOUT_S: Final = 600.0
START_POLL_S: Final = 0.2


def tuned_settings(memory_bytes: int) -> dict[str, str]:
    """The settings the embedded server runs with on a machine with `memory_bytes` of RAM."""
    shared = int(memory_bytes * SHARED_BUFFERS_SHARE / MIB)
    shared = max(SHARED_BUFFERS_MIN_MIB, min(SHARED_BUFFERS_MAX_MIB, shared))
    return {"shared_buffers": f"{shared}MB", **FIXED_SETTINGS}


def _machine_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _tune(server: Any) -> bool:
    """Set `tuned_settings` where the data directory's postgresql.auto.conf does not set them
    already (an operator's ALTER SYSTEM wins); return whether a restart is needed to apply them."""
    settings = tuned_settings(_machine_memory())
    names = ", ".join(f"'{name}'" for name in settings)  # our constants: no outside text in SQL
    listed = server.psql(
        f"SELECT '{_MARK}' || name || ' ' || context || ' ' || "
        f"coalesce(sourcefile LIKE '%postgresql.auto.conf', false) "
        f"FROM pg_settings WHERE name IN ({names});")
    wanted, restart = [], False
    for line in listed.splitlines():
        if line.strip().startswith(_MARK):
            name, context, chosen = line.strip().removeprefix(_MARK).split()
            if chosen != "true":
                wanted.append(name)
                restart = restart or context == "postmaster"
    if wanted:
        server.psql("".join(f"ALTER SYSTEM SET {name} = '{settings[name]}';\n" for name in wanted)
                    + "SELECT pg_reload_conf();")
    return restart


def start_server(pgdata: Path) -> Any:
    """Start (or reuse) pgserver's Postgres in `pgdata`, with `tuned_settings` (restarting it
    once, the first time, if a setting needs that and no other process holds it)."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); its fallback is fine.
        warnings.simplefilter("ignore")
        import pgserver

        pgdata.mkdir(parents=True, exist_ok=True)
        server = _get_server(pgserver, pgdata)
        if _tune(server):
            LOGGER.info("embedded postgres restarts to apply its settings")
            server.cleanup()  # stops it unless another process still uses it
            server = _get_server(pgserver, pgdata)
    return server


def _get_server(pgserver: Any, pgdata: Path) -> Any:
    """pgserver's handle on a running server, waiting out a long start.

    pgserver gives `pg_ctl start` 10 s. After an unclean stop (a killed container, a power
    cut) Postgres first replays the WAL written since its last checkpoint — up to max_wal_size,
    tens of seconds here — and pgserver gives up although the server goes on starting. We
    wait for it, and fail at once, naming the log, if it exits instead.
    """
    pgdata = pgdata.resolve()
    _wait_until_ready(pgdata)  # one still starting from an earlier run: pgserver asserts "ready"
    try:
        return pgserver.get_server(pgdata, cleanup_mode="stop")
    except subprocess.TimeoutExpired:
        # pgserver registered the half-made handle before starting; drop it, or the retry gets it.
        stale = pgserver.PostgresServer._instances.pop(pgdata, None)
        if stale is not None:
            atexit.unregister(stale._cleanup)
        LOGGER.warning("embedded postgres is still starting (recovering after an unclean stop?); "
                       "waiting for it", extra={"log": str(pgdata / "log")})
        if not _wait_until_ready(pgdata):
            raise RuntimeError(f"embedded postgres exited while starting; see {pgdata / 'log'}")
        return pgserver.get_server(pgdata, cleanup_mode="stop")


def _postmaster_status(pgdata: Path) -> str | None:
    """The status line of a live postmaster's postmaster.pid ('starting', 'ready', …), or None
    if no postmaster runs for `pgdata`."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        os.kill(int(lines[0]), 0)
    except (OSError, ValueError, IndexError):  # no file, no such process, a file half written
        return None
    return lines[7].strip() if len(lines) > 7 else "starting"


def _wait_until_ready(pgdata: Path) -> bool:
    """Wait while a postmaster of `pgdata` is starting; return whether one is ready (False:
    none runs, or it exited while we waited).

    Raises:
        RuntimeError: it was still starting after START_TIMEOUT_S.
    """
    timeout_s = START_TIMEOUT_S
    deadline = time.monotonic() + timeout_s
    status = _postmaster_status(pgdata)
    while status is not None and status != "ready":
        if time.monotonic() > deadline:
            raise RuntimeError(f"embedded postgres not ready after {timeout_s:.0f} s "
                               f"(status {status!r}); see {pgdata / 'log'}")
        time.sleep(START_POLL_S)
        status = _postmaster_status(pgdata)
    return status == "ready"


def _start(pgdata: Path) -> Any:
    server = start_server(pgdata)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
    if "1 row" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    return server


def url_for(server: Any, database: str = DATABASE_NAME) -> str:
    """Return the asyncpg URL of `database` on the embedded server (Unix socket)."""
    info = server.get_postmaster_info()
    socket_dir = str(info.socket_dir)
    return f"postgresql://postgres@/{database}?host={quote(socket_dir, safe='/')}"


@asynccontextmanager
async def open_embedded_postgres(data_dir: Path) -> AsyncIterator[str]:
    """Start (or reuse) the embedded Postgres in `data_dir/postgres`; yield its URL; stop it.

    Raises:
        RuntimeError: the server could not start; its log is in `data_dir/postgres/log`.
    """
    pgdata = data_dir.resolve() / "postgres"
    LOGGER.info("starting embedded postgres", extra={"pgdata": str(pgdata)})
    try:
        server = await trio.to_thread.run_sync(_start, pgdata)
    except (subprocess.SubprocessError, OSError) as exc:
        raise RuntimeError(f"embedded postgres failed to start; see {pgdata / 'log'}") from exc
    try:
        yield url_for(server)
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(server.cleanup)
            LOGGER.info("embedded postgres stopped")
