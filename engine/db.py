"""Postgres from Trio: with engine/pool.py, the only code that knows about asyncio.

asyncpg is an asyncio library. We run it on a trio-asyncio loop opened once at the root of the
program (`open_bridge`) and cross into it through `Database.run`, which takes a plain coroutine
function `fn(connection, *args)` and runs it on the asyncio side with a pooled connection
(engine/pool.py). A multi-step transaction is written as one such function, so it crosses the
bridge once (each crossing costs ~0.05 ms; a one-row query through it ~0.12 ms of CPU).
Pooled connections keep no session state between calls (no LISTEN, no cursors, advisory locks
only on dedicated connections), so a connection goes back to the pool without a reset.

Never call back into Trio from inside `fn`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Concatenate, Final, ParamSpec, TypeVar

import asyncpg
import orjson
import trio
import trio_asyncio

from . import metrics
from .errors import DatabaseError, DatabaseUnavailable
from .pool import ConnectionPool

__all__ = ["Connection", "Database", "open_bridge", "open_database", "translate_error"]

P = ParamSpec("P")
T = TypeVar("T")
Connection = asyncpg.Connection
LOGGER = logging.getLogger(__name__)

CONNECT_TIMEOUT_S: Final = 10.0
# A call slower than this counts in coves_db_slow_queries_total (DB_SLOW_QUERY_MS).
DEFAULT_SLOW_QUERY_S: Final = 0.5
# SQLSTATE classes that mean "the server is not there right now", not "your statement is wrong":
# 08 connection exception, 57P01-03 admin/crash shutdown or starting up, 53300 too many connections.
_TRANSIENT_SQLSTATES: Final = frozenset({"57P01", "57P02", "57P03", "53300", "40001", "40P01"})
# Errors of the socket or the driver rather than answers of the server: a connection that
# raised one is not trusted again.
_DRIVER_ERRORS: Final = (OSError, asyncio.TimeoutError, asyncpg.InterfaceError,
                         asyncpg.PostgresConnectionError, asyncpg.InternalClientError)


def translate_error(exc: BaseException) -> BaseException:
    """Map an asyncpg/OS error to ours: DatabaseUnavailable when transient, DatabaseError else.

    Classified by exception class and SQLSTATE, never by message text.
    """
    if isinstance(exc, _DRIVER_ERRORS):
        return DatabaseUnavailable(f"database unavailable: {type(exc).__name__}: {exc}")
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = getattr(exc, "sqlstate", None) or ""
        if sqlstate.startswith("08") or sqlstate in _TRANSIENT_SQLSTATES:
            return DatabaseUnavailable(f"database unavailable: {sqlstate} {exc}")
        error = DatabaseError(f"{sqlstate} {type(exc).__name__}: {exc}")
        error.sqlstate = sqlstate  # type: ignore[attr-defined]
        return error
    return exc


def _encode_jsonb(value: Any) -> bytes:
    # Binary jsonb = version byte 1 + JSON text; COPY needs the binary form.
    return b"\x01" + (value if isinstance(value, bytes) else orjson.dumps(value))


def _decode_jsonb(data: bytes) -> Any:
    return orjson.loads(data[1:])


async def _init_connection(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec("jsonb", schema="pg_catalog", format="binary",
                                    encoder=_encode_jsonb, decoder=_decode_jsonb)
    await connection.set_type_codec("json", schema="pg_catalog", format="text",
                                    encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads)


class Database:
    """A pool of Postgres connections, used from Trio.

    Args:
        pool: a ConnectionPool started on the trio-asyncio loop.
        url: the connection URL (kept to open dedicated connections, e.g. for migrations).
    """

    def __init__(self, pool: ConnectionPool, url: str, *, name: str = "coves",
                 slow_query_s: float = DEFAULT_SLOW_QUERY_S) -> None:
        self._pool = pool
        self.url = url
        self.name = name
        self._slow_query_s = slow_query_s
        self._slots = trio.Semaphore(pool.max_size)  # one per connection: callers wait here
        self._durations = metrics.DB_QUERY_SECONDS.labels(name)
        self._slow = metrics.DB_SLOW_QUERIES.labels(name)
        for state, read in (("open", pool.size), ("idle", pool.idle),
                            ("max", lambda: pool.max_size)):
            metrics.DB_POOL_CONNECTIONS.labels(name, state).set_function(read)
        metrics.DB_POOL_WAITING.labels(name).set_function(
            lambda: self._slots.statistics().tasks_waiting)

    async def run(self, fn: Callable[Concatenate[asyncpg.Connection, P], Awaitable[T]],
                  *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn(connection, *args)` on the asyncio side with a pooled connection.

        Callers beyond the pool's size wait here, on the Trio side, for at most CONNECT_TIMEOUT_S.

        Error handling: asyncpg and socket errors are translated (`translate_error`):
        DatabaseUnavailable for transient failures or no connection free in time,
        DatabaseError otherwise.
        """

        async def with_connection() -> T:
            held = await self._pool.acquire(CONNECT_TIMEOUT_S)
            clean = False  # cancelled mid-call: a statement may still be running
            try:
                result: T = await fn(held.connection, *args, **kwargs)
                clean = True
                return result
            except Exception as exc:
                clean = not isinstance(exc, _DRIVER_ERRORS)
                raise
            finally:
                self._pool.release(held, clean=clean)

        started = time.perf_counter()
        try:
            await self._take_slot()
            try:
                answer: T = await trio_asyncio.aio_as_trio(with_connection)()
            finally:
                self._slots.release()
            return answer
        except Exception as exc:
            translated = _translated(exc)
            if translated is exc:
                raise
            raise translated from exc
        finally:
            elapsed = time.perf_counter() - started
            self._durations.observe(elapsed)
            if elapsed >= self._slow_query_s:
                self._slow.inc()

    async def _take_slot(self) -> None:
        if self._slots.value:  # a free slot means nobody is waiting for one
            self._slots.acquire_nowait()
            return
        with trio.move_on_after(CONNECT_TIMEOUT_S):  # all busy: wait, in order of arrival
            await self._slots.acquire()
            return
        raise DatabaseUnavailable(f"database unavailable: no connection of {self.name}'s "
                                  f"{self._pool.max_size} free within {CONNECT_TIMEOUT_S:g} s")

    async def transaction(self, fn: Callable[Concatenate[asyncpg.Connection, P], Awaitable[T]],
                          *args: P.args, **kwargs: P.kwargs) -> T:
        """Like `run`, inside one transaction (committed when `fn` returns)."""

        async def in_transaction(connection: asyncpg.Connection) -> T:
            async with connection.transaction():
                return await fn(connection, *args, **kwargs)

        return await self.run(in_transaction)

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return await self.run(lambda c: c.fetch(sql, *args))

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        return await self.run(lambda c: c.fetchrow(sql, *args))

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self.run(lambda c: c.fetchval(sql, *args))

    async def fetchrow_custom_plan(self, sql: str, *args: Any) -> asyncpg.Record | None:
        """`fetchrow`, planned for these values even where the session plans generically (the
        API's pool): for a statement whose best plan depends on them — a common word is found
        fastest newest-first, a rare one through its index. Costs a transaction (two round trips)."""

        async def custom(connection: asyncpg.Connection) -> asyncpg.Record | None:
            await connection.execute("SET LOCAL plan_cache_mode = force_custom_plan")
            row: asyncpg.Record | None = await connection.fetchrow(sql, *args)
            return row

        return await self.transaction(custom)

    async def execute(self, sql: str, *args: Any) -> str:
        return await self.run(lambda c: c.execute(sql, *args))

    def statistics(self) -> dict[str, int]:
        """Pool size, idle, max and callers waiting for a connection, for gauges."""
        return {"size": self._pool.size(), "idle": self._pool.idle(), "max": self._pool.max_size,
                "waiting": self._slots.statistics().tasks_waiting}


def _translated(exc: Exception) -> BaseException:
    """Translate an error that crossed the bridge; unwrap a group holding a single error."""
    while isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return translate_error(exc)


@asynccontextmanager
async def open_bridge() -> AsyncIterator[None]:
    """Open the trio-asyncio loop that every Database of this program runs on.

    Open it once, near the root of the task tree; databases opened inside it share it.

    Error handling: the loop runs in a nursery, which would wrap an error raised in the body in
    an ExceptionGroup; a group holding a single error is unwrapped so the bridge stays
    transparent to callers (`except MigrationError` works as written).
    """
    try:
        async with trio_asyncio.open_loop() as loop:
            loop.set_exception_handler(_log_loop_error)
            yield
    except BaseExceptionGroup as group:
        leaf = _only_leaf(group)
        if leaf is None:
            raise
        raise leaf from leaf.__cause__  # keep its own cause, drop the group as context


def _log_loop_error(loop: Any, context: dict[str, Any]) -> None:
    """Log what asyncio reports outside any awaited call; never raise it.

    trio-asyncio's default handler raises such reports into the loop's nursery, which ends the
    program. asyncpg makes them while a server goes away ("Resetting connection with an active
    transaction", a future's "exception was never retrieved") — the awaited call has already
    failed with DatabaseUnavailable and the writer retries, so these are noise, not errors.
    """
    exception = context.get("exception")
    LOGGER.warning("asyncio reported an error outside an awaited call", extra={
        "asyncio_message": context.get("message", ""),
        "error": f"{type(exception).__name__}: {exception}" if exception is not None else None})


def _only_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        if len(exc.exceptions) != 1:
            return None
        exc = exc.exceptions[0]
    return exc


@asynccontextmanager
async def open_database(url: str, *, min_size: int = 1, max_size: int = 10,
                        init: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
                        server_settings: Mapping[str, str] | None = None,
                        application_name: str = "coves",
                        slow_query_s: float = DEFAULT_SLOW_QUERY_S) -> AsyncIterator[Database]:
    """Open a connection pool to `url`. Must run inside `open_bridge()`.

    Args:
        init: extra per-connection set-up (after the JSON codecs), e.g. temp staging tables.
        server_settings: session settings applied at connect (e.g. temp_buffers).

    Raises:
        DatabaseUnavailable: the server cannot be reached within CONNECT_TIMEOUT_S.
    """

    async def init_connection(connection: asyncpg.Connection) -> None:
        await _init_connection(connection)
        if init is not None:
            await init(connection)

    # No JIT: every statement here is short, but the planner can cost one far above
    # jit_above_cost (a merge's insert-time counts: ~470k for a dozen rows) and Postgres then
    # spends ~20 ms compiling what runs in one. (Builds without LLVM, as pgserver's, ignore it.)
    settings = {"application_name": application_name, "jit": "off", **(server_settings or {})}

    async def connect(timeout: float) -> asyncpg.Connection:
        connection = await asyncpg.connect(url, timeout=timeout, server_settings=settings)
        try:
            await init_connection(connection)
        except BaseException:
            connection.terminate()
            raise
        return connection

    pool = ConnectionPool(connect, min_size=min_size, max_size=max_size)
    try:
        await trio_asyncio.aio_as_trio(pool.start)(CONNECT_TIMEOUT_S)
    except Exception as exc:
        translated = _translated(exc)
        if translated is exc:
            raise
        raise translated from exc
    try:
        yield Database(pool, url, name=application_name, slow_query_s=slow_query_s)
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(CONNECT_TIMEOUT_S):
            try:
                await trio_asyncio.aio_as_trio(pool.close)(CONNECT_TIMEOUT_S)
            except Exception:
                pool.terminate()
