"""engine/pool.py: the connection pool under Database.run — its fast path schedules nothing on
the loop, and it keeps its promises about size, lifetime, unclean calls and closing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
import trio_asyncio

from engine.db import _init_connection
from engine.pool import ConnectionPool, Held

Connect = Callable[[float], Awaitable[asyncpg.Connection]]


def connector(url: str) -> Connect:
    async def connect(timeout: float) -> asyncpg.Connection:
        connection = await asyncpg.connect(url, timeout=timeout)
        await _init_connection(connection)
        return connection
    return connect


async def with_pool(url: str, body: Callable[[ConnectionPool], Awaitable[None]], *,
                    connect: Connect | None = None, **options: Any) -> None:
    """Run `body(pool)` on the asyncio side with a new pool (min_size 0, max_size 1 unless
    `options` say otherwise); its connections are dropped afterwards."""
    async def run() -> None:
        pool = ConnectionPool(connect or connector(url), **{"min_size": 0, "max_size": 1, **options})
        try:
            await body(pool)
        finally:
            pool.terminate()

    await trio_asyncio.aio_as_trio(run)()


async def backend(held: Held) -> int:
    return int(await held.connection.fetchval("SELECT pg_backend_pid()"))


async def test_taking_and_returning_an_idle_connection_schedules_nothing(
        bridge: None, database_url: str) -> None:
    # asyncpg's Pool made a task and two timers per call: ~120 µs of a 250 µs one-row query here.
    scheduled: list[str] = []

    async def body(pool: ConnectionPool) -> None:
        await pool.start(5)
        loop = asyncio.get_running_loop()
        watched = ("call_at", "call_later", "call_soon", "create_task", "create_future")
        originals = {name: getattr(loop, name) for name in watched}

        def counting(name: str) -> Callable[..., Any]:
            def call(*args: Any, **kwargs: Any) -> Any:
                scheduled.append(name)
                return originals[name](*args, **kwargs)
            return call

        for name in watched:
            setattr(loop, name, counting(name))
        try:
            for _ in range(20):
                pool.release(await pool.acquire(5), clean=True)
        finally:
            for name in watched:
                setattr(loop, name, originals[name])

    await with_pool(database_url, body, min_size=1, max_size=2)
    assert scheduled == []


async def test_the_last_connection_returned_is_the_next_handed_out(
        bridge: None, database_url: str) -> None:
    async def body(pool: ConnectionPool) -> None:
        first, second = await pool.acquire(5), await pool.acquire(5)
        pool.release(first, clean=True)
        pool.release(second, clean=True)
        assert (await pool.acquire(5)) is second
        assert pool.size() == 2 and pool.idle() == 1

    await with_pool(database_url, body, max_size=3)


async def test_a_caller_without_a_slot_is_refused_not_queued(
        bridge: None, database_url: str) -> None:
    # Waiting happens on the Trio side (Database.run's slots), where it needs no asyncio timer.
    async def body(pool: ConnectionPool) -> None:
        busy = await pool.acquire(5)
        with pytest.raises(RuntimeError, match="busy"):
            await pool.acquire(5)
        pool.release(busy, clean=True)
        assert (await pool.acquire(5)) is busy

    await with_pool(database_url, body)


async def test_an_unclean_call_closes_its_connection_and_frees_its_place(
        bridge: None, database_url: str) -> None:
    async def body(pool: ConnectionPool) -> None:
        cancelled = await pool.acquire(5)
        pid = await backend(cancelled)
        pool.release(cancelled, clean=False)
        assert cancelled.connection.is_closed() and pool.size() == 0
        assert await backend(await pool.acquire(5)) != pid

    await with_pool(database_url, body)


async def test_a_connection_is_replaced_after_max_uses(bridge: None, database_url: str) -> None:
    async def body(pool: ConnectionPool) -> None:
        pids = []
        for _ in range(6):
            held = await pool.acquire(5)
            pids.append(await backend(held))
            pool.release(held, clean=True)
        assert pids[0] == pids[1] == pids[2] != pids[3] == pids[4] == pids[5]

    await with_pool(database_url, body, max_uses=3)


async def test_idle_connections_beyond_min_size_close_after_their_lifetime(
        bridge: None, database_url: str) -> None:
    now = [0.0]

    async def body(pool: ConnectionPool) -> None:
        held = [await pool.acquire(5) for _ in range(3)]
        for h in held:
            pool.release(h, clean=True)
        assert pool.size() == 3
        now[0] = 59
        pool.release(await pool.acquire(5), clean=True)
        assert pool.size() == 3  # not yet
        now[0] = 121  # the two unused since 0 are past their lifetime; one goes per release
        pool.release(await pool.acquire(5), clean=True)
        assert pool.size() == 2
        pool.release(await pool.acquire(5), clean=True)
        assert pool.size() == 1
        now[0] = 1000
        pool.release(await pool.acquire(5), clean=True)
        assert pool.size() == 1  # min_size stays
        await pool.close(5)
        assert all(h.connection.is_closed() for h in held)

    await with_pool(database_url, body, min_size=1, max_size=3, idle_lifetime_s=60,
                    clock=lambda: now[0])


async def test_a_failed_connect_frees_its_slot(bridge: None, database_url: str) -> None:
    attempts = 0
    good = connector(database_url)

    async def flaky(timeout: float) -> asyncpg.Connection:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise OSError("connection refused")
        return await good(timeout)

    async def body(pool: ConnectionPool) -> None:
        with pytest.raises(OSError):
            await pool.acquire(5)
        assert pool.size() == 0
        held = await pool.acquire(5)
        assert await held.connection.fetchval("SELECT 1") == 1

    await with_pool(database_url, body, connect=flaky)


async def test_close_waits_for_busy_connections_then_refuses_calls(
        bridge: None, database_url: str) -> None:
    async def body(pool: ConnectionPool) -> None:
        await pool.start(5)
        busy = await pool.acquire(5)
        closing = asyncio.ensure_future(pool.close(5))
        await asyncio.sleep(0)
        assert not closing.done()
        pool.release(busy, clean=True)
        await asyncio.wait_for(closing, 5)
        assert busy.connection.is_closed() and pool.size() == 0
        with pytest.raises(asyncpg.InterfaceError):
            await pool.acquire(5)

    await with_pool(database_url, body, min_size=2, max_size=2)
