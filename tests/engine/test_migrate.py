"""Migrations apply once, in order, with checksums; edits and gaps are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from engine.db import open_bridge, open_database
from engine.errors import MigrationError
from engine.migrate import SQL_DIR, apply_migrations, load_migrations


def write(folder: Path, name: str, sql: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(sql)


async def migrate(url: str, folder: Path) -> list[str]:
    async with open_bridge(), open_database(url, max_size=1) as db:
        return [m.name for m in await apply_migrations(db, folder)]


async def test_applies_in_order_once_and_rebuilds_functions(empty_url: str, tmp_path: Path) -> None:
    write(tmp_path, "0002_second.sql", "ALTER TABLE t ADD COLUMN b int;")
    write(tmp_path, "0001_first.sql", "CREATE TABLE t (a int);")
    write(tmp_path / "functions", "answer.sql", "CREATE OR REPLACE FUNCTION answer() RETURNS int "
                                                "LANGUAGE sql IMMUTABLE AS 'SELECT 42';")
    assert await migrate(empty_url, tmp_path) == ["first", "second"]
    assert await migrate(empty_url, tmp_path) == []
    async with open_bridge(), open_database(empty_url) as db:
        assert await db.fetchval("SELECT answer()") == 42
        assert await db.fetchval("SELECT count(*) FROM schema_migrations") == 2


async def test_edited_migration_is_refused(empty_url: str, tmp_path: Path) -> None:
    write(tmp_path, "0001_first.sql", "CREATE TABLE t (a int);")
    await migrate(empty_url, tmp_path)
    write(tmp_path, "0001_first.sql", "CREATE TABLE t (a bigint);")
    with pytest.raises(MigrationError, match=r"0001_first\.sql was edited after it was applied"):
        await migrate(empty_url, tmp_path)


async def test_missing_applied_migration_is_refused(empty_url: str, tmp_path: Path) -> None:
    write(tmp_path, "0001_first.sql", "CREATE TABLE t (a int);")
    await migrate(empty_url, tmp_path)
    (tmp_path / "0001_first.sql").unlink()
    write(tmp_path, "0002_second.sql", "SELECT 1;")
    with pytest.raises(MigrationError, match="0001_first is applied but its file is missing"):
        await migrate(empty_url, tmp_path)


async def test_failed_migration_rolls_back(empty_url: str, tmp_path: Path) -> None:
    write(tmp_path, "0001_bad.sql", "CREATE TABLE t (a int); SELECT no_such_function();")
    with pytest.raises(Exception, match="no_such_function"):
        await migrate(empty_url, tmp_path)
    async with open_bridge(), open_database(empty_url) as db:
        assert await db.fetchval("SELECT to_regclass('t')") is None
        assert await db.fetchval("SELECT count(*) FROM schema_migrations") == 0


async def test_concurrent_starts_apply_once(empty_url: str, tmp_path: Path) -> None:
    write(tmp_path, "0001_first.sql", "CREATE TABLE t (a int);")
    results: list[list[str]] = []

    async def one() -> None:
        results.append(await migrate(empty_url, tmp_path))

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(one)
    assert sorted(map(len, results)) == [0, 0, 1]


def test_misnamed_file_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "1_first.sql", "SELECT 1;")
    with pytest.raises(MigrationError, match="NNNN_lower_snake"):
        load_migrations(tmp_path)


def test_project_migrations_open_with_a_why_comment() -> None:
    for migration in load_migrations(SQL_DIR):
        assert migration.sql.startswith("-- Why:"), migration.name
