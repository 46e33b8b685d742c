"""A time-limited cache whose concurrent misses for one key share one computation.

Used for DID documents (resolver.py) and hostedBy document checks (hosting.py). Each value
carries its own lifetime (`ttl_of(value)`), so a success and a failure stored under the same
kind of key can live 1 h and 5 min. Time is trio's clock, so tests move it with MockClock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

import cachetools
import trio

from .. import metrics

__all__ = ["SharedCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SharedCache(Generic[K, V]):
    """TLRU cache (least recently used evicted first once full, each entry with its own expiry).

    Args:
        name: the `cache` label of coves_identity_cache_lookups_total.
        maxsize: entries kept.
        ttl_of: seconds a value stays valid.
    """

    def __init__(self, name: str, *, maxsize: int, ttl_of: Callable[[V], float],
                 timer: Callable[[], float] = trio.current_time) -> None:
        self._cache: cachetools.TLRUCache[K, V] = cachetools.TLRUCache(
            maxsize, ttu=lambda _key, value, now: now + ttl_of(value), timer=timer)
        self._inflight: dict[K, trio.Event] = {}
        self._hits = metrics.IDENTITY_CACHE_LOOKUPS.labels(name, "hit")
        self._misses = metrics.IDENTITY_CACHE_LOOKUPS.labels(name, "miss")

    async def get(self, key: K, compute: Callable[[], Awaitable[V]], *, fresh: bool = False) -> V:
        """The cached value of `key`, or `await compute()` stored and returned.

        While one task computes a key, other tasks asking for it wait and take its result.
        `fresh=True` drops the cached value first and does not join a computation already
        under way (it may have started before whatever made the caller want a fresh value).

        Error handling: `compute` should return failures as values (so they are cached too);
        if it raises or is cancelled, nothing is stored and the waiting tasks compute again.
        """
        if fresh:
            self.purge(key)
        while True:
            value = self._cache.get(key)
            if value is not None:
                self._hits.inc()
                return value
            running = self._inflight.get(key)
            if running is None:
                break
            await running.wait()
        self._misses.inc()
        done = self._inflight[key] = trio.Event()
        try:
            value = await compute()
            if self._inflight.get(key) is done:  # else purged meanwhile: the value may be stale
                self._cache[key] = value
        finally:
            if self._inflight.get(key) is done:
                del self._inflight[key]
            done.set()
        return value

    def purge(self, key: K) -> None:
        """Forget `key`; a computation under way for it will not store its result."""
        self._cache.pop(key, None)
        self._inflight.pop(key, None)

    def __len__(self) -> int:
        return len(self._cache)
