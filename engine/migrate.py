"""Schema migrations: numbered `sql/NNNN_name.sql` files, plus functions rebuilt on every run.

Each migration runs once, in order, in its own transaction, and is recorded with a SHA-256 of its
text; a recorded migration whose file changed is refused (write a new migration instead). After
the migrations, `sql/functions/*.sql` are applied in name order: they hold `CREATE OR REPLACE`
definitions we may change freely (as Lemmy rebuilds its replaceable schema). Everything runs under
a Postgres advisory lock so several processes may start at once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from pathlib import Path
from typing import Final

import asyncpg

from .db import Database
from .errors import MigrationError

__all__ = ["Migration", "SQL_DIR", "apply_migrations", "load_migrations"]

LOGGER = logging.getLogger(__name__)
SQL_DIR: Final = Path(__file__).resolve().parent.parent / "sql"
# Any constant works as long as nothing else in the database uses it; this spells "coves".
MIGRATION_LOCK_KEY: Final = 0x636F766573
_NAME_RE: Final = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclasses.dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(sql_dir: Path = SQL_DIR) -> list[Migration]:
    """Read and order the migration files.

    Raises:
        MigrationError: a file is misnamed or two files share a version.
    """
    migrations: dict[int, Migration] = {}
    for path in sorted(sql_dir.glob("*.sql")):
        match = _NAME_RE.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_lower_snake.sql")
        version = int(match.group(1))
        if version in migrations:
            raise MigrationError(f"{path.name}: version {version} is used twice")
        migrations[version] = Migration(version, match.group(2), path.read_text())
    return [migrations[v] for v in sorted(migrations)]


async def _apply(connection: asyncpg.Connection, migrations: list[Migration],
                 functions: list[tuple[str, str]], sql_dir: Path) -> list[Migration]:
    await connection.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await connection.execute("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )""")
        applied = {row["version"]: row for row in
                   await connection.fetch("SELECT version, name, checksum FROM schema_migrations")}
        known = {m.version for m in migrations}
        for version, row in applied.items():
            if version not in known:
                raise MigrationError(f"migration {version:04d}_{row['name']} is applied but its file "
                                     f"is missing from {sql_dir}")
        done = []
        for migration in migrations:
            row = applied.get(migration.version)
            if row is not None:
                if row["checksum"] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name}.sql was edited after it "
                        f"was applied (recorded sha256 {row['checksum'][:12]}…, file "
                        f"{migration.checksum[:12]}…); restore the file and add a new migration")
                continue
            async with connection.transaction():
                await connection.execute(migration.sql)
                await connection.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version, migration.name, migration.checksum)
            done.append(migration)
        async with connection.transaction():
            for _name, sql in functions:
                await connection.execute(sql)
        return done
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)


async def apply_migrations(db: Database, sql_dir: Path = SQL_DIR) -> list[Migration]:
    """Apply pending migrations and rebuild the functions; return the migrations applied now.

    Raises:
        MigrationError: an applied migration was edited or removed, or a file is misnamed.
        DatabaseError: a migration's SQL failed (its transaction is rolled back).
    """
    migrations = load_migrations(sql_dir)
    functions = [(p.name, p.read_text()) for p in sorted((sql_dir / "functions").glob("*.sql"))]
    done = await db.run(_apply, migrations, functions, sql_dir)
    for migration in done:
        LOGGER.info("migration applied", extra={"version": migration.version, "migration": migration.name})
    return done
