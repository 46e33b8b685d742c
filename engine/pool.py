"""A lean pool of asyncpg connections, used on the asyncio side of the bridge (engine/db.py).

asyncpg's own Pool cost ~120 µs of CPU per acquire + release under trio-asyncio — as much as
the one-row query it wrapped: a Task for its shielded release, a timer for every acquire's
timeout and another re-armed at every release for the idle lifetime, each a trip through the
bridge's loop. An API request is one statement, so that was a fifth of a feed read's CPU.

This pool does the same job with plain data structures. Its fast path — an idle connection
there, handed back clean — creates no task, future or timer:

  * `acquire` takes the most recently used idle connection (LIFO, so a quiet server keeps using
    the same few) or opens a new one. It never waits for a busy one: callers hold one of
    `max_size` slots first (Database.run waits for a slot on the Trio side, where waiting
    costs no asyncio task or timer and a cancelled caller never held a connection).
  * `release(held, clean=...)` keeps the connection idle, or closes it when the call did not
    end cleanly (cancelled: a statement may still be running on the server), when the server
    ended it, when it is still inside a transaction, or once it has served `max_uses` calls
    (Postgres backends grow with the plans and catalog entries they cache).
  * Idle connections beyond `min_size` unused for `idle_lifetime_s` are closed, checked at each
    release (no timers): after a burst the pool shrinks as traffic goes on.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Final

import asyncpg

__all__ = ["ConnectionPool", "Held"]

DEFAULT_IDLE_LIFETIME_S: Final = 300.0  # as asyncpg's max_inactive_connection_lifetime
DEFAULT_MAX_USES: Final = 50_000  # as asyncpg's max_queries


@dataclasses.dataclass(slots=True, eq=False)
class Held:
    """A pooled connection and what the pool knows about it."""

    connection: asyncpg.Connection
    uses: int = 0
    released_at: float = 0.0


class ConnectionPool:
    """Up to `max_size` connections made by `connect(timeout)`, shared by asyncio tasks that
    each hold one of `max_size` slots while they use one.

    Call every method from the asyncio side (inside the trio-asyncio loop).
    """

    def __init__(self, connect: Callable[[float], Awaitable[asyncpg.Connection]], *,
                 min_size: int, max_size: int,
                 idle_lifetime_s: float = DEFAULT_IDLE_LIFETIME_S,
                 max_uses: int = DEFAULT_MAX_USES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 <= min_size <= max_size or max_size < 1:
            raise ValueError(f"pool sizes must satisfy 0 <= min_size <= max_size, max_size >= 1; "
                             f"got {min_size}, {max_size}")
        self._connect = connect
        self.min_size = min_size
        self.max_size = max_size
        self._idle_lifetime_s = idle_lifetime_s
        self._max_uses = max_uses
        self._clock = clock
        self._idle: collections.deque[Held] = collections.deque()  # most recent on the right
        self._in_use: set[Held] = set()
        self._opening = 0
        self._closing_tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._emptied: asyncio.Future[None] | None = None

    # ---- what the gauges read ----

    def size(self) -> int:
        """Connections open or opening."""
        return len(self._idle) + len(self._in_use) + self._opening

    def idle(self) -> int:
        return len(self._idle)

    # ---- life cycle ----

    async def start(self, timeout: float) -> None:
        """Open `min_size` connections (all of them, or raise the first failure)."""
        opened = await asyncio.gather(*(self._open(timeout) for _ in range(self.min_size)),
                                      return_exceptions=True)
        failures = [result for result in opened if isinstance(result, BaseException)]
        for result in opened:
            if isinstance(result, Held):
                self.release(result, clean=True)
        if failures:
            await self.close(timeout)
            raise failures[0]

    async def close(self, timeout: float) -> None:
        """Refuse new calls, close idle connections and each busy one as it comes back.

        Raises:
            TimeoutError: connections were still busy after `timeout` (call `terminate`).
        """
        self._closed = True
        while self._idle:
            self._close_gracefully(self._idle.popleft())
        async with asyncio.timeout(timeout):
            if self._in_use or self._opening:
                self._emptied = asyncio.get_running_loop().create_future()
                await self._emptied
            if self._closing_tasks:
                await asyncio.gather(*self._closing_tasks, return_exceptions=True)

    def terminate(self) -> None:
        """Drop every connection at once, busy ones included."""
        self._closed = True
        for held in (*self._idle, *self._in_use):
            held.connection.terminate()
        self._idle.clear()
        self._in_use.clear()

    # ---- calls ----

    async def acquire(self, timeout: float) -> Held:
        """A connection for one call; give it back with `release`.

        Raises:
            asyncpg.InterfaceError: the pool is closing.
            TimeoutError: a new connection could not be opened within `timeout`.
            RuntimeError: `max_size` connections are busy (the caller holds no slot).
        """
        if self._closed:
            raise asyncpg.InterfaceError("pool is closing")
        while self._idle:
            held = self._idle.pop()
            if not held.connection.is_closed():  # else ended by the server while idle: forget it
                self._in_use.add(held)
                return held
        if self.size() >= self.max_size:
            raise RuntimeError(f"all {self.max_size} connections are busy: hold a slot first")
        held = await self._open(timeout)
        self._in_use.add(held)
        return held

    def release(self, held: Held, *, clean: bool) -> None:
        """Give back what `acquire` returned; `clean` is False when the call was cancelled."""
        self._in_use.discard(held)
        held.uses += 1
        connection = held.connection
        idle_now = clean and not connection.is_in_transaction()  # no statement, no transaction
        if not idle_now or self._closed or connection.is_closed() or held.uses >= self._max_uses:
            self._discard(held, graceful=idle_now)
            return
        now = self._clock()
        held.released_at = now
        self._idle.append(held)
        oldest = self._idle[0]
        if now - oldest.released_at > self._idle_lifetime_s and self.size() > self.min_size:
            self._idle.popleft()
            self._close_gracefully(oldest)

    # ---- inside ----

    async def _open(self, timeout: float) -> Held:
        self._opening += 1
        try:
            connection = await self._connect(max(timeout, 0.0))
        except BaseException:
            self._opening -= 1
            self._slot_freed()
            raise
        self._opening -= 1
        if self._closed:
            self._close_gracefully(Held(connection))
            self._slot_freed()
            raise asyncpg.InterfaceError("pool is closing")
        return Held(connection)

    def _discard(self, held: Held, *, graceful: bool) -> None:
        if not held.connection.is_closed():  # else the server or the driver ended it already
            if graceful:
                self._close_gracefully(held)
            else:  # a statement or transaction may still be open: don't wait on it
                held.connection.terminate()
        self._slot_freed()

    def _close_gracefully(self, held: Held) -> None:
        task = asyncio.get_running_loop().create_task(self._close_quietly(held.connection))
        self._closing_tasks.add(task)
        task.add_done_callback(self._closing_tasks.discard)

    @staticmethod
    async def _close_quietly(connection: asyncpg.Connection) -> None:
        try:
            await connection.close(timeout=5)
        except Exception:
            connection.terminate()

    def _slot_freed(self) -> None:
        """A connection is gone: finish a close that waited for it."""
        if self._emptied is not None and not self._in_use and not self._opening \
                and not self._emptied.done():
            self._emptied.set_result(None)
