"""Database.run's pooled connections (engine/db.py): never handed out in a bad state (left in a
transaction, after an error or a cancel, ended by the server), never starving a caller, never
outliving the Database."""

from __future__ import annotations

import contextlib
from typing import Any

import asyncpg
import pytest
import trio
import trio.testing

import engine.db

from engine.db import Connection, Database, open_database
from engine.errors import DatabaseError, DatabaseUnavailable

APP = "coves-kept-test"


async def sessions(db: Database) -> int:
    return int(await db.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", APP))


async def test_sequential_calls_reuse_one_connection(bridge: None, database_url: str) -> None:
    async with open_database(database_url, min_size=0, max_size=4, application_name=APP) as db:
        backends = {await db.fetchval("SELECT pg_backend_pid()") for _ in range(20)}
        assert len(backends) == 1
        assert db.statistics()["idle"] == db.statistics()["size"] == 1


async def test_a_connection_left_in_a_transaction_is_rolled_back_not_kept(
        bridge: None, database_url: str) -> None:
    async def leave_open(connection: Connection) -> None:
        await connection.execute("BEGIN")
        await connection.execute("CREATE TEMP TABLE leftover (x int)")

    async with open_database(database_url, max_size=1) as db:
        await db.run(leave_open)
        assert await db.run(lambda c: returning(c.is_in_transaction())) is False
        assert await db.fetchval("SELECT to_regclass('pg_temp.leftover')") is None


async def returning(value: Any) -> Any:
    """A coroutine for Database.run that hands back a value read on the asyncio side."""
    return value


async def test_a_failed_call_does_not_spoil_the_next(bridge: None, database_url: str) -> None:
    async def fail_in_transaction(connection: Connection) -> None:
        await connection.execute("CREATE TEMP TABLE t (x int)")
        await connection.execute("SELECT 1/0")

    async with open_database(database_url, max_size=1) as db:
        with pytest.raises(DatabaseError):
            await db.transaction(fail_in_transaction)
        assert await db.fetchval("SELECT to_regclass('pg_temp.t')") is None
        assert await db.fetchval("SELECT 2") == 2


async def test_a_call_that_raised_a_driver_error_does_not_hand_its_connection_on(
        bridge: None, database_url: str) -> None:
    # A server's error answer leaves the connection ready; a driver error may not.
    async def driver_trouble(connection: Connection) -> None:
        raise asyncpg.InterfaceError("cannot perform operation: another operation is in progress")

    async with open_database(database_url, max_size=1) as db:
        pid = await db.fetchval("SELECT pg_backend_pid()")
        with pytest.raises(DatabaseUnavailable):
            await db.run(driver_trouble)
        replacement = await db.fetchval("SELECT pg_backend_pid()")
        assert replacement != pid
        with pytest.raises(DatabaseError):
            await db.fetchval("SELECT 1/0")
        assert await db.fetchval("SELECT pg_backend_pid()") == replacement
        assert db.statistics()["size"] == 1


async def test_more_callers_than_connections_all_finish(bridge: None, database_url: str) -> None:
    # Callers beyond max_size wait on the pool: a finished call must release to them rather
    # than keep its connection (they would wait CONNECT_TIMEOUT_S for nothing).
    async with open_database(database_url, max_size=2) as db:
        done: list[int] = []

        async def call(n: int) -> None:
            await db.fetchval("SELECT pg_sleep(0.05)")
            done.append(n)

        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                for n in range(8):
                    nursery.start_soon(call, n)
        assert sorted(done) == list(range(8))


async def test_a_caller_waits_for_a_connection_at_most_connect_timeout(
        bridge: None, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine.db, "CONNECT_TIMEOUT_S", 0.2)
    async with open_database(database_url, max_size=1) as db:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(db.fetchval, "SELECT pg_sleep(1)")
            await trio.testing.wait_all_tasks_blocked()
            waited: list[int] = []

            async def watch() -> None:
                await trio.testing.wait_all_tasks_blocked()
                waited.append(db.statistics()["waiting"])

            nursery.start_soon(watch)
            with pytest.raises(DatabaseUnavailable, match="no connection .* free within 0.2 s"):
                await db.fetchval("SELECT 1")
        assert waited == [1]
        assert db.statistics() == {"size": 1, "idle": 1, "max": 1, "waiting": 0}
        assert await db.fetchval("SELECT 2") == 2


async def test_a_caller_cancelled_while_waiting_leaves_no_slot_taken(
        bridge: None, database_url: str) -> None:
    async with open_database(database_url, max_size=1) as db:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(db.fetchval, "SELECT pg_sleep(0.2)")
            await trio.testing.wait_all_tasks_blocked()
            with trio.move_on_after(0.05):
                await db.fetchval("SELECT 1")
        for _ in range(3):  # with a slot lost, the second call would wait for ever
            with trio.fail_after(5):
                assert await db.fetchval("SELECT 3") == 3


async def test_a_cancelled_call_releases_its_connection(bridge: None, database_url: str) -> None:
    async with open_database(database_url, max_size=1) as db:
        with trio.move_on_after(0.1):
            await db.fetchval("SELECT pg_sleep(5)")
        with trio.fail_after(5):
            assert await db.fetchval("SELECT 3") == 3


async def test_a_connection_the_server_ended_costs_at_most_one_call_then_the_pool_reconnects(
        bridge: None, database_url: str, db: Database) -> None:
    async with open_database(database_url, max_size=1, application_name=APP) as victim:
        pid = await victim.fetchval("SELECT pg_backend_pid()")
        assert await db.fetchval("SELECT pg_terminate_backend($1)", pid) is True
        # The next call fails as DatabaseUnavailable when it runs before the driver has seen the
        # socket close, and succeeds on a new connection when it runs after: a race, both fine.
        with contextlib.suppress(DatabaseUnavailable):
            await victim.fetchval("SELECT 1")
        assert await victim.fetchval("SELECT pg_backend_pid()") != pid


async def test_closing_the_database_closes_its_kept_connections(
        bridge: None, database_url: str, db: Database) -> None:
    with trio.fail_after(5):
        async with open_database(database_url, min_size=0, max_size=3,
                                 application_name=APP) as kept:
            async with trio.open_nursery() as nursery:
                for _ in range(3):
                    nursery.start_soon(kept.fetchval, "SELECT pg_sleep(0.05)")
            assert await sessions(db) == 3
    for _ in range(50):  # the server notices a closed session a moment later
        if await sessions(db) == 0:
            break
        await trio.sleep(0.05)
    assert await sessions(db) == 0
