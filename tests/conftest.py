"""Shared fixtures: a real Postgres (DATABASE_URL, or an embedded one per session), a migrated
template database, and a fresh database per test cloned from it (~50 ms)."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import trio

from engine.db import Database, open_bridge, open_database
from engine.migrate import apply_migrations
from engine.pipeline import open_writer_database

pytest_plugins = ["tests.pds.fixtures"]

SHARED = Path(__file__).resolve().parents[2] / "shared"
TEMPLATE_DB = "coves_test_template"
_counter = itertools.count()


def with_database(url: str, name: str) -> str:
    """`url` pointing at database `name` (keeps host, socket and credentials)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


async def _admin(url: str, *statements: str) -> None:
    async with open_bridge(), open_database(url, min_size=1, max_size=1) as db:
        for statement in statements:
            await db.execute(statement)


async def _migrate(url: str) -> None:
    async with open_bridge(), open_database(url, min_size=1, max_size=1) as db:
        await apply_migrations(db)


class EmbeddedPostgres:
    """The session's own Postgres (pgserver), with stop/start for outage tests."""

    def __init__(self, root: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver
        self.server = pgserver.get_server(root / "pgdata", cleanup_mode="stop")

    @property
    def url(self) -> str:
        from engine.embedded_pg import url_for
        return url_for(self.server, "postgres")

    def stop(self) -> None:
        from pgserver._commands import pg_ctl
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user)

    def start(self) -> None:
        self.server.ensure_postgres_running()

    def cleanup(self) -> None:
        self.server.cleanup()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[EmbeddedPostgres | None]:
    """The embedded server, or None when DATABASE_URL points the tests at another one."""
    if os.environ.get("DATABASE_URL"):
        yield None
        return
    root = Path(tempfile.mkdtemp(prefix="coves-test-pg-"))
    server = EmbeddedPostgres(root)
    try:
        yield server
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_admin_url(pg_server: EmbeddedPostgres | None) -> str:
    return os.environ["DATABASE_URL"] if pg_server is None else pg_server.url


@pytest.fixture(scope="session")
def template_url(pg_admin_url: str) -> str:
    trio.run(_admin, pg_admin_url, f"DROP DATABASE IF EXISTS {TEMPLATE_DB} WITH (FORCE)",
             f"CREATE DATABASE {TEMPLATE_DB}")
    url = with_database(pg_admin_url, TEMPLATE_DB)
    trio.run(_migrate, url)
    return url


@contextmanager
def fresh_database(pg_admin_url: str, prefix: str = "coves_test") -> Iterator[str]:
    """A new database copied from the migrated template, dropped on exit: its URL."""
    name = f"{prefix}_{os.getpid()}_{next(_counter)}"
    trio.run(_admin, pg_admin_url, f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")
    try:
        yield with_database(pg_admin_url, name)
    finally:
        trio.run(_admin, pg_admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def empty_url(pg_admin_url: str) -> Iterator[str]:
    """An empty database, no migrations applied (for migration tests): its URL."""
    name = "coves_test_migrate_empty"
    trio.run(_admin, pg_admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)",
             f"CREATE DATABASE {name}")
    yield with_database(pg_admin_url, name)
    trio.run(_admin, pg_admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def database_url(pg_admin_url: str, template_url: str) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    with fresh_database(pg_admin_url) as url:
        yield url


@pytest.fixture
def private_postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    """A Postgres server of the test's own, for tests that stop or restart it (doing that to the
    session's server would disturb other tests)."""
    server = EmbeddedPostgres(tmp_path)
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
async def bridge() -> AsyncIterator[None]:
    async with open_bridge():
        yield


@pytest.fixture
async def db(bridge: None, database_url: str) -> AsyncIterator[Database]:
    async with open_database(database_url) as database:
        yield database


@pytest.fixture
async def writer_db(bridge: None, database_url: str) -> AsyncIterator[Database]:
    async with open_writer_database(database_url) as database:
        yield database


def shared_path(*parts: str) -> Path:
    """A file under ../shared, or skip the test saying why."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present: this test reads the shared reference data")
    return path


def pytest_configure(config: Any) -> None:
    # Tests never talk to the public network: point the default Jetstream at a closed port.
    os.environ.setdefault("JETSTREAM_URL", "ws://127.0.0.1:9/subscribe")
