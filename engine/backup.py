"""`coves backup` and `coves restore`: pg_dump custom-format archives, pruned by age, and a restore
that checks what it restored.

Backups are named `coves-YYYYmmddTHHMMSSZ.dump` in BACKUP_DIR; files of that pattern older than
BACKUP_KEEP_DAYS are deleted after each successful backup. A restore goes into an empty database
only (it refuses one that has tables), then reports the row count of every table and runs the
reconcile: a restore whose counters do not match their source rows is reported as failed.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Final

import trio

from .db import Database
from .errors import EngineError
from .reconcile import Drift, reconcile

__all__ = ["BackupError", "RestoreReport", "backup", "pg_tool", "prune", "restore"]

LOGGER = logging.getLogger(__name__)
NAME_FORMAT: Final = "coves-%Y%m%dT%H%M%SZ.dump"
_NAME_RE: Final = re.compile(r"^coves-(\d{8}T\d{6}Z)\.dump$")


class BackupError(EngineError):
    """pg_dump / pg_restore failed, or the restore target is not empty."""


def pg_tool(name: str, bin_dir: Path | None = None) -> str:
    """Path of pg_dump / pg_restore: PG_BIN_DIR, else the embedded Postgres', else PATH.

    The embedded server's own tools match its version; for another server, set PG_BIN_DIR to
    tools at least as new as the server.
    """
    if bin_dir is not None:
        return str(bin_dir / name)
    try:
        from pgserver._commands import POSTGRES_BIN_PATH

        bundled = Path(POSTGRES_BIN_PATH) / name
        if bundled.exists():
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} not found: set PG_BIN_DIR to a directory holding it")
    return found


async def _run(command: list[str]) -> None:
    result = await trio.run_process(command, capture_stdout=True, capture_stderr=True, check=False)
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip()[-2000:]
        raise BackupError(f"{Path(command[0]).name} failed (exit {result.returncode}): {message}")


def prune(directory: Path, keep_days: int, *, now: datetime | None = None) -> list[Path]:
    """Delete backups (by their name's timestamp) older than `keep_days`; return them."""
    cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=keep_days)
    removed = []
    for path in sorted(directory.glob("coves-*.dump")):
        match = _NAME_RE.match(path.name)
        if match is None:
            continue
        taken = datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        if taken < cutoff:
            path.unlink()
            removed.append(path)
    return removed


async def backup(url: str, directory: Path, *, keep_days: int, bin_dir: Path | None = None,
                 now: datetime | None = None) -> Path:
    """Dump the database to a new time-stamped archive, then prune old ones. Return the archive.

    The dump is written to a temporary name and renamed when complete, so a failed or
    interrupted dump never looks like a backup.
    """
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / (now or datetime.now(timezone.utc)).strftime(NAME_FORMAT)
    partial = target.with_suffix(".partial")
    await _run([pg_tool("pg_dump", bin_dir), "--format=custom", "--no-owner", "--file", str(partial),
                "--dbname", url])
    os.replace(partial, target)
    removed = prune(directory, keep_days, now=now)
    LOGGER.info("backup written", extra={"file": str(target), "bytes": target.stat().st_size,
                                         "pruned": len(removed)})
    return target


@dataclasses.dataclass
class RestoreReport:
    rows: dict[str, int]
    drift: list[Drift]

    @property
    def ok(self) -> bool:
        return not self.drift

    def __str__(self) -> str:
        counts = ", ".join(f"{table} {count}" for table, count in sorted(self.rows.items()))
        verdict = "no drift" if self.ok else f"{len(self.drift)} counter(s) drift"
        return f"restored rows: {counts}; reconcile: {verdict}"


async def restore(db: Database, url: str, archive: Path, *, bin_dir: Path | None = None) -> RestoreReport:
    """Restore `archive` into the (empty) database at `url`, then count rows and reconcile.

    Raises:
        BackupError: the database has tables already, or pg_restore failed.
    """
    if not archive.is_file():
        raise BackupError(f"no such backup: {archive}")
    existing = await db.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
    if existing:
        raise BackupError(f"the target database is not empty ({existing} tables): restore into an "
                          "empty database (createdb a new one, or drop this one first)")
    await _run([pg_tool("pg_restore", bin_dir), "--no-owner", "--exit-on-error", "--dbname", url,
                str(archive)])
    tables = [row["tablename"] for row in await db.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")]
    rows = {name: await db.fetchval(f'SELECT count(*) FROM "{name}"') for name in tables}
    return RestoreReport(rows, await reconcile(db))
