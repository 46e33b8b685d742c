"""Anonymous answers of public reads, shared for a moment (ANONYMOUS_CACHE_TTL_S).

A logged-out reader's feed page depends on its parameters alone, and logged-out readers arrive
in crowds: a community linked from elsewhere brings hundreds asking for the same first page.
Each would run the same statement. Instead the first one runs it and, for the next TTL seconds,
everyone asking the same method with the same parameters and no token gets the same bytes.

* Only methods declared `shared=True` (api/xrpc.py), only callers without a token: an answer
  for a viewer carries their votes and honours their blocks, and is never shared.
* Single flight: requests that miss while the first one is still running wait for its answer
  instead of running the statement again. If it fails (or is cancelled), each runs its own.
* Errors are never kept. An answer is at most TTL old: a vote, a new post or a takedown arriving
  from the firehose reaches logged-out readers at most that much later. A write through this
  process (any procedure that succeeds: api/xrpc.py) drops every kept answer at once, so its
  author sees it even logged out; an answer being read across that moment is not kept.
* Cursors inside a kept page stay valid: they carry the snapshot the page was read at
  (api/views/snapshot.py), whoever follows them.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Final

import trio
from cachetools import TTLCache
from prometheus_client import Counter

__all__ = ["SHARED_ANSWERS", "SharedAnswers"]

DEFAULT_BYTES: Final = 32 * 1024 * 1024  # bytes of answers kept at most (a feed page: ~16 kB)

SHARED_ANSWERS: Final = Counter(
    "coves_api_shared_answers_total",
    "Anonymous reads of shareable methods: hit (a kept answer), joined (waited for the same "
    "request in flight) or miss (ran the statement).", ["result"])
_HIT, _JOINED, _MISS = (SHARED_ANSWERS.labels(result) for result in ("hit", "joined", "miss"))


class SharedAnswers:
    """Answer bytes by key for `ttl_s` seconds, computed once per key at a time.

    Args:
        ttl_s: how long an answer is kept; 0 keeps nothing (every call computes).
        max_bytes: bytes of answers kept at most (the least recently used go first; an
            answer larger than this is never kept).
        clock: monotonic seconds (tests pass a fake one).
    """

    def __init__(self, ttl_s: float, max_bytes: int = DEFAULT_BYTES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._answers: TTLCache[bytes, bytes] | None = (
            TTLCache(max_bytes, ttl_s, timer=clock, getsizeof=len) if ttl_s > 0 else None)
        self._in_flight: dict[bytes, trio.Event] = {}
        self._generation = 0  # counts clear(): an answer read across one is not kept

    def clear(self) -> None:
        """Drop every kept answer (something was written); those being read are not kept."""
        self._generation += 1
        if self._answers is not None:
            self._answers.clear()

    async def answer(self, key: bytes, compute: Callable[[], Awaitable[bytes]]) -> bytes:
        """The kept answer for `key`, the one in flight, or `compute()`'s (then kept)."""
        answers = self._answers
        if answers is None:
            return await compute()
        kept = answers.get(key)
        if kept is not None:
            _HIT.inc()
            return kept
        running = self._in_flight.get(key)
        if running is not None:
            await running.wait()
            kept = answers.get(key)
            if kept is not None:
                _JOINED.inc()
                return kept
            # The first one failed (or was read across a clear); its error was its own. Each
            # waiter runs its own statement at once (one after another would stack time-outs).
            _MISS.inc()
            return await self._compute(answers, key, compute)
        _MISS.inc()
        done = self._in_flight[key] = trio.Event()
        try:
            return await self._compute(answers, key, compute)
        finally:
            del self._in_flight[key]
            done.set()

    async def _compute(self, answers: TTLCache[bytes, bytes], key: bytes,
                       compute: Callable[[], Awaitable[bytes]]) -> bytes:
        generation = self._generation
        body = await compute()
        if generation == self._generation and len(body) <= answers.maxsize:
            answers[key] = body
        return body
