"""Backups: archive, prune by age, refuse a non-empty target, restore with counts and reconcile."""

from __future__ import annotations

import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import trio

from engine.backup import prune
from engine.db import Database, open_database
from tests import factories as f
from tests.conftest import _admin, with_database
from tests.helpers import ingest
from tests.test_cli import ROOT, snapshot

C = f.did("c")
P = f.uri(C, f.POST, "3k7a3dmb5bk2c")


def run_coves(*args: str, database_url: str, backup_dir: Path) -> trio.Process:
    env = {**os.environ, "DATABASE_URL": database_url, "BACKUP_DIR": str(backup_dir),
           "LOG_LEVEL": "warning"}
    return trio.run_process([sys.executable, "-m", "engine.cli", *args], env=env, cwd=ROOT,
                            capture_stdout=True, capture_stderr=True, check=False)


def without_xmin(rows: list[tuple]) -> list[tuple]:
    """Table name and values; row versions (xmin) differ in a restored copy by design."""
    return [row[:1] + row[2:] for row in rows]


def test_prune_deletes_only_old_backups(tmp_path: Path) -> None:
    now = datetime(2026, 11, 26, tzinfo=timezone.utc)
    names = [(now - timedelta(days=d)).strftime("coves-%Y%m%dT%H%M%SZ.dump") for d in (0, 29, 31, 90)]
    for name in names + ["notes.txt", "coves-garbage.dump"]:
        (tmp_path / name).write_text("x")
    removed = prune(tmp_path, 30, now=now)
    assert sorted(p.name for p in removed) == sorted(names[2:])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[:2] + ["notes.txt", "coves-garbage.dump"])


async def test_backup_wipe_restore_gives_back_the_same_rows(writer_db: Database, db: Database,
                                                            database_url: str, pg_admin_url: str,
                                                            tmp_path: Path) -> None:
    await ingest(writer_db, [f.profile(C), f.post(C, "3k7a3dmb5bk2c"), f.vote(f.did("u"), f.tid(), P),
                             f.subscription(f.did("u"), f.tid(), C), b"{bad json"])
    before = await snapshot(db)
    result = await run_coves("backup", database_url=database_url, backup_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    archives = list(tmp_path.glob("coves-*.dump"))
    assert len(archives) == 1 and b"backup written" in result.stdout

    # restore refuses a database that has tables
    refused = await run_coves("restore", str(archives[0]), database_url=database_url, backup_dir=tmp_path)
    assert refused.returncode == 1 and b"not empty" in refused.stderr

    name = database_url.rsplit("/", 1)[1].split("?")[0]
    target = with_database(database_url, name + "_restored")
    await _admin(pg_admin_url, f"CREATE DATABASE {name}_restored")
    try:
        restored = await run_coves("restore", str(archives[0]), database_url=target, backup_dir=tmp_path)
        assert restored.returncode == 0, restored.stderr
        assert b"post_records 1" in restored.stdout and b"reconcile: no drift" in restored.stdout
        async with open_database(target) as copy:
            assert without_xmin(await snapshot(copy)) == without_xmin(before)
    finally:
        await _admin(pg_admin_url, f"DROP DATABASE IF EXISTS {name}_restored WITH (FORCE)")


async def test_restore_of_a_missing_file_is_a_clear_error(database_url: str, tmp_path: Path) -> None:
    result = await run_coves("restore", str(tmp_path / "nope.dump"), database_url=database_url,
                             backup_dir=tmp_path)
    assert result.returncode == 1 and b"no such backup" in result.stderr
