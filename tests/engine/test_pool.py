"""engine/pool.py: the connection pool under Database.run — its fast path schedules nothing on
the loop, and it keeps its promises about size, waiting, lifetime and closing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
import trio_asyncio

from engine.db import _init_connection
from engine.pool import ConnectionPool, Held


def on_asyncio(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Run test body `fn` on the asyncio side of the bridge."""
    async def run(*args: Any) -> Any:
        return await trio_asyncio.aio_as_trio(fn)(*args)
    return run


def connector(url: str, opened: list[asyncpg.Connection] | None = None
              ) -> Callable[[float], Awaitable[asyncpg.Connection]]:
    async def connect(timeout: float) -> asyncpg.Connection:
        connection = await asyncpg.connect(url, timeout=timeout)
        await _init_connection(connection)
        if opened is not None:
            opened.append(connection)
        return connection
    return connect


async def backend(held: Held) -> int:
    return int(await held.connection.fetchval("SELECT pg_backend_pid()"))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_taking_and_returning_an_idle_connection_schedules_nothing(
        bridge: None, database_url: str) -> None:
    # asyncpg's Pool made a task and two timers per call: ~120 µs of a 250 µs one-row query here.
    @on_asyncio
    async def body() -> tuple[int, int]:
        pool = ConnectionPool(connector(database_url), min_size=1, max_size=2)
        await pool.start(5)
        loop = asyncio.get_running_loop()
        scheduled = {"timers": 0, "tasks": 0}
        call_at, create_task = loop.call_at, loop.create_task

        def counting_call_at(*args: Any, **kwargs: Any) -> Any:
            scheduled["timers"] += 1
            return call_at(*args, **kwargs)

        def counting_create_task(*args: Any, **kwargs: Any) -> Any:
            scheduled["tasks"] += 1
            return create_task(*args, **kwargs)

        loop.call_at, loop.create_task = counting_call_at, counting_create_task  # type: ignore[method-assign]
        try:
            for _ in range(20):
                held = await pool.acquire(5)
                pool.release(held, clean=True)
        finally:
            loop.call_at, loop.create_task = call_at, create_task  # type: ignore[method-assign]
        await pool.close(5)
        return scheduled["timers"], scheduled["tasks"]

    assert await body() == (0, 0)


async def test_the_last_connection_returned_is_the_next_handed_out(
        bridge: None, database_url: str) -> None:
    @on_asyncio
    async def body() -> None:
        pool = ConnectionPool(connector(database_url), min_size=0, max_size=3)
        first, second = await pool.acquire(5), await pool.acquire(5)
        pool.release(first, clean=True)
        pool.release(second, clean=True)
        assert (await pool.acquire(5)) is second
        assert pool.size() == 2 and pool.idle() == 1
        pool.terminate()

    await body()


async def test_a_caller_without_a_slot_is_refused_not_queued(
        bridge: None, database_url: str) -> None:
    # Waiting happens on the Trio side (Database.run's slots), where it needs no asyncio timer.
    @on_asyncio
    async def body() -> None:
        pool = ConnectionPool(connector(database_url), min_size=0, max_size=1)
        busy = await pool.acquire(5)
        with pytest.raises(RuntimeError, match="busy"):
            await pool.acquire(5)
        pool.release(busy, clean=True)
        assert (await pool.acquire(5)) is busy
        pool.terminate()

    await body()


async def test_an_unclean_call_closes_its_connection_and_frees_its_place(
        bridge: None, database_url: str) -> None:
    @on_asyncio
    async def body() -> None:
        pool = ConnectionPool(connector(database_url), min_size=0, max_size=1)
        cancelled = await pool.acquire(5)
        pid = await backend(cancelled)
        pool.release(cancelled, clean=False)
        assert cancelled.connection.is_closed() and pool.size() == 0
        fresh = await pool.acquire(5)
        assert await backend(fresh) != pid
        pool.terminate()

    await body()


async def test_a_connection_is_replaced_after_max_uses(bridge: None, database_url: str) -> None:
    @on_asyncio
    async def body() -> None:
        pool = ConnectionPool(connector(database_url), min_size=0, max_size=1, max_uses=3)
        pids = []
        for _ in range(6):
            held = await pool.acquire(5)
            pids.append(await backend(held))
            pool.release(held, clean=True)
        assert pids[0] == pids[1] == pids[2] != pids[3] == pids[4] == pids[5]
        await pool.close(5)

    await body()


async def test_idle_connections_beyond_min_size_close_after_their_lifetime(
        bridge: None, database_url: str) -> None:
    @on_asyncio
    async def body() -> None:
        clock = Clock()
        pool = ConnectionPool(connector(database_url), min_size=1, max_size=3,
                              idle_lifetime_s=60, clock=clock)
        held = [await pool.acquire(5) for _ in range(3)]
        for h in held:
            pool.release(h, clean=True)
        assert pool.size() == 3
        clock.now = 59
        pool.release(await pool.acquire(5), clean=True)
        assert pool.size() == 3  # not yet
        clock.now = 121  # the two unused since 0 are past their lifetime; one goes per release
        pool.release(await pool.acquire(5), clean=True)
        assert pool.size() == 2
        pool.release(await pool.acquire(5), clean=True)
        assert pool.size() == 1
        clock.now = 1000
        pool.release(await pool.acquire(5), clean=True)
        assert pool.size() == 1  # min_size stays
        await pool.close(5)
        assert all(h.connection.is_closed() for h in held)

    await body()


async def test_a_failed_connect_frees_its_slot(bridge: None, database_url: str) -> None:
    attempts = 0
    good = connector(database_url)

    async def flaky(timeout: float) -> asyncpg.Connection:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise OSError("connection refused")
        return await good(timeout)

    @on_asyncio
    async def body() -> None:
        pool = ConnectionPool(flaky, min_size=0, max_size=1)
        with pytest.raises(OSError):
            await pool.acquire(5)
        assert pool.size() == 0
        held = await pool.acquire(5)
        assert await held.connection.fetchval("SELECT 1") == 1
        pool.release(held, clean=True)
        await pool.close(5)

    await body()


async def test_close_waits_for_busy_connections_then_refuses_calls(
        bridge: None, database_url: str) -> None:
    @on_asyncio
    async def body() -> None:
        pool = ConnectionPool(connector(database_url), min_size=2, max_size=2)
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

    await body()
