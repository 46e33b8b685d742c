"""Router: the sink every source delivers to — event → record handler → batcher.

Runs in the source's task, synchronously per event. It awaits when the batch is full
(backpressure from the writer), and yields to the other tasks after YIELD_EVERY events without
one from the source.

Why the yield: the writer runs in the same thread. Each of its statements returns while the
reader is decoding, and the writer can send the next one only once the reader lets it run. A
source with events already in hand (a replay file, a socket buffer full of messages) would keep
the thread for a whole batch, and Postgres would sit idle between statements: the engine's and
Postgres's CPU then add up instead of overlapping (replay of the core mix: 29k -> 35k events/s
with the yield, bench/RESULTS.md). A source whose every receive is a schedule point already
(trio-websocket: one message per receive) says so with `yielded()`, and the router adds none.
"""

from __future__ import annotations

import logging
from typing import Final

import trio

from .batcher import Batcher
from .errors import RejectedEvent, RejectReason
from .events import COMMIT, Event
from .records import Registry

__all__ = ["Router", "SKIP_UNHANDLED_KIND", "SKIP_UNWANTED_COLLECTION"]

LOGGER = logging.getLogger(__name__)
SKIP_UNWANTED_COLLECTION: Final = "unwanted_collection"  # a collection we do not index
SKIP_UNHANDLED_KIND: Final = "unhandled_kind"  # identity/account with no handler registered
SKIP_NO_ROWS: Final = "no_rows"  # the handler had nothing to store
# ~0.1-0.2 ms of decoding and handling between yields: the writer's next statement waits at most
# that long, and a batch takes 20-45 statements and COPYs, each a few trips through the
# trio-asyncio loop. 8 against 32, interleaved: core sansio +3 %, replay +1-4 %, the forum mix
# and trio-websocket (which yields itself) within noise (bench/RESULTS.md). A checkpoint costs a
# few µs, ~2 % of a core event's own cost.
YIELD_EVERY: Final = 8


class Router:
    """Delivers events to their handlers and the results to the batcher.

    Args:
        registry: the handlers.
        batcher: where rows, skips and rejects go.
        label: source label for metrics.
    """

    def __init__(self, registry: Registry, batcher: Batcher, *, label: str) -> None:
        self._commits = registry.commits
        self._kinds = registry.kinds
        self._batcher = batcher
        self._label = label
        self._since_yield = 0

    async def event(self, event: Event) -> None:
        """Handle one event.

        Error handling: RejectedEvent becomes a reject. Any other exception from a handler is a
        bug meeting odd input: it is logged, counted and stored as a `handler_error` reject, so
        one bad event cannot stop ingestion or vanish.
        """
        batcher = self._batcher
        if event.kind == COMMIT:
            handler = self._commits.get(event.collection)
            skip = SKIP_UNWANTED_COLLECTION
        else:
            handler = self._kinds.get(event.kind)
            skip = SKIP_UNHANDLED_KIND
        if handler is None:
            batcher.add_skip(event, skip)
        else:
            try:
                ops = handler(event)
            except RejectedEvent as rejected:
                batcher.add_reject(rejected, event.raw, event, event.cursor)
            except Exception as exc:  # supervisor boundary: see docstring
                LOGGER.exception("record handler failed", extra={
                    "did": event.did, "collection": event.collection, "rkey": event.rkey})
                crash = RejectedEvent(RejectReason.HANDLER_ERROR, f"{type(exc).__name__}: {exc}")
                batcher.add_reject(crash, event.raw, event, event.cursor)
            else:
                if ops:
                    batcher.add(event, ops)
                else:
                    batcher.add_skip(event, SKIP_NO_ROWS)
        if self._due():
            await self._pace()

    async def reject(self, rejected: RejectedEvent, raw: bytes, cursor: int | None,
                     event: Event | None = None) -> None:
        """Store input the source could not even decode."""
        self._batcher.add_reject(rejected, raw, event, cursor)
        if self._due():
            await self._pace()

    def yielded(self) -> None:
        """The source passed a schedule point (other tasks ran): start counting again."""
        self._since_yield = 0

    def _due(self) -> bool:
        """Count an event; whether the reader must now wait (a full batch) or yield. Checked
        without awaiting: most events need neither, and the hot path makes no coroutine."""
        self._since_yield += 1
        return self._batcher.full or self._since_yield >= YIELD_EVERY

    async def _pace(self) -> None:
        """Wait while the batch is full, else yield to the other tasks."""
        self._since_yield = 0
        if self._batcher.full:
            await self._batcher.wait_until_taken()
        else:
            await trio.lowlevel.checkpoint()
