"""Postgres for benchmark runs: DATABASE_URL's server or an embedded one, a fresh migrated
database per run (cloned from a migrated template), and the postmaster's pid for CPU accounting.

The embedded server keeps its data in CACHE_DIR (or a directory the caller names), so a database
worth keeping between runs — the API load test's 7M-row dataset — survives; every other database
a run makes is dropped when the run is done.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import trio

from engine.db import open_bridge, open_database
from engine.migrate import apply_migrations

from ._measure import postmaster_pid

__all__ = ["BenchServer", "CACHE_DIR", "open_server", "schema_version", "with_database"]

TEMPLATE = "bench_template"
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "coves-bench"
SQL_DIR = Path(__file__).resolve().parents[1] / "sql"


def schema_version() -> str:
    """A digest of every migration and SQL function: a kept database older than it is stale."""
    digest = hashlib.sha256()
    for path in sorted(SQL_DIR.rglob("*.sql")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def with_database(url: str, name: str) -> str:
    """`url` pointing at database `name` (keeps host, socket and credentials)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


class BenchServer:
    """A Postgres server the benchmark may create databases on.

    Attributes:
        admin_url: the `postgres` database, for CREATE/DROP DATABASE.
        postmaster: the postmaster pid when the server runs on this machine, else None.
        schema: `schema_version()` of the migrations the template was made from (read then: a
            file edited during a run must not pass the template's schema off as the new one).
    """

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self._count = 0
        self.schema = schema_version()
        self.postmaster = trio.run(self._prepare)

    async def _prepare(self) -> int | None:
        async with open_bridge(), open_database(self.admin_url, max_size=1) as admin:
            backend = await admin.fetchval("SELECT pg_backend_pid()")
            try:
                postmaster: int | None = postmaster_pid(backend)  # while the backend lives
            except OSError:
                postmaster = None  # a server on another machine: its CPU is not ours to read
            await admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
            await admin.execute(f"CREATE DATABASE {TEMPLATE}")
        async with open_bridge(), open_database(with_database(self.admin_url, TEMPLATE),
                                                max_size=1) as db:
            await apply_migrations(db)
        return postmaster

    def fresh(self, name: str) -> str:
        """A new migrated database named after `name`; return its URL."""
        self._count += 1
        database = f"bench_{name}_{self._count}".replace("@", "_").replace(".", "_").replace("-", "_")
        return self.named(database, fresh=True)

    def exists(self, database: str) -> bool:
        async def check() -> bool:
            async with open_bridge(), open_database(self.admin_url, max_size=1) as admin:
                found: bool = await admin.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", database)
                return found

        return trio.run(check)

    def named(self, database: str, *, fresh: bool) -> str:
        """The URL of `database`; with `fresh`, (re)create it from the migrated template."""
        if fresh:
            async def create() -> None:
                async with open_bridge(), open_database(self.admin_url, max_size=1) as admin:
                    await admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
                    await admin.execute(f"CREATE DATABASE {database} TEMPLATE {TEMPLATE}")

            trio.run(create)
        return with_database(self.admin_url, database)

    def drop_stale(self, prefix: str, current: str) -> list[str]:
        """Drop the databases named `prefix`… but not `current`… (kept data of an older schema);
        return their names."""
        async def drop() -> list[str]:
            async with open_bridge(), open_database(self.admin_url, max_size=1) as admin:
                names = [row[0] for row in await admin.fetch(
                    "SELECT datname FROM pg_database WHERE starts_with(datname, $1) "
                    "AND NOT starts_with(datname, $2)", prefix, current)]
                for name in names:
                    await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
                return names

        return trio.run(drop)

    def drop(self, url: str) -> None:
        """Drop a database `fresh` made (frees disk between runs)."""
        database = urlsplit(url).path.lstrip("/")

        async def drop() -> None:
            async with open_bridge(), open_database(self.admin_url, max_size=1) as admin:
                await admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")

        trio.run(drop)


@contextmanager
def open_server(data_dir: Path = CACHE_DIR) -> Iterator[BenchServer]:
    """DATABASE_URL's server, or an embedded Postgres keeping its data in `data_dir` (stopped on
    exit; the data stays)."""
    admin_url = os.environ.get("DATABASE_URL")
    server = None
    if admin_url is None:
        from engine.embedded_pg import start_server, url_for
        server = start_server(data_dir / "pgdata")  # tuned as `coves run`'s embedded server
        admin_url = url_for(server, "postgres")
    else:
        admin_url = with_database(admin_url, "postgres")
    try:
        yield BenchServer(admin_url)
    finally:
        if server is not None:
            server.cleanup()
