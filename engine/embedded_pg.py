"""Embedded Postgres: used when DATABASE_URL is unset.

pgserver (a PyPI wheel that ships the Postgres binaries) runs a server on a Unix socket in the
data directory. We start it at program start and stop it at exit; if the program is killed the
server stays up and the next start reuses it.
"""

from __future__ import annotations

import logging
import subprocess
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import trio

__all__ = ["DATABASE_NAME", "open_embedded_postgres"]

LOGGER = logging.getLogger(__name__)
DATABASE_NAME: Final = "coves"


def _start(pgdata: Path) -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); its fallback is fine.
        warnings.simplefilter("ignore")
        import pgserver

        pgdata.mkdir(parents=True, exist_ok=True)
        server = pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
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
