"""The reconnect policy every live source shares: backoff with jitter and an idle watchdog."""

from __future__ import annotations

import logging
from typing import Final

import trio

from .. import metrics
from ..backoff import backoff_delay

__all__ = ["IdleWatchdog", "Reconnector", "RECONNECT_BASE_S", "RECONNECT_CAP_S"]

LOGGER = logging.getLogger(__name__)
# First retry after ~0.5-1 s, doubling to a 60 s ceiling: fast recovery from a blip, and a
# public Jetstream host that is down for minutes sees one attempt a minute from us, not a storm.
RECONNECT_BASE_S: Final = 1.0
RECONNECT_CAP_S: Final = 60.0


class Reconnector:
    """Counts failed attempts since the last healthy connection and sleeps accordingly.

    Args:
        label: the source label for logs and `coves_ingest_reconnects_total`.
    """

    def __init__(self, label: str, *, base_s: float = RECONNECT_BASE_S,
                 cap_s: float = RECONNECT_CAP_S) -> None:
        self.label = label
        self.base_s = base_s
        self.cap_s = cap_s
        self.attempt = 0

    def healthy(self) -> None:
        """A connection delivered data: the next failure starts the backoff afresh."""
        self.attempt = 0

    async def wait(self, reason: str, error: str, url: str) -> None:
        """Log and count a disconnect, then sleep the backoff delay before the next attempt."""
        delay = backoff_delay(self.attempt, base_s=self.base_s, cap_s=self.cap_s)
        metrics.RECONNECTS.labels(self.label, reason).inc()
        LOGGER.warning("%s unavailable (%s): %s; retrying in %.1f s", self.label, reason, error,
                       delay, extra={"source": self.label, "url": url, "reason": reason,
                                     "attempt": self.attempt, "delay_s": round(delay, 2)})
        self.attempt += 1
        await trio.sleep(delay)


class IdleWatchdog:
    """Cancels a scope when no frame arrived for `timeout_s`.

    The reader bumps `frames` per frame (an integer add, no clock read on the hot path); the
    watchdog wakes every quarter timeout, so it fires between 1 and 1.25 timeouts of silence.
    """

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.frames = 0
        self.fired = False

    async def run(self, scope: trio.CancelScope) -> None:
        seen = self.frames
        quiet_since = trio.current_time()
        while True:
            await trio.sleep(self.timeout_s / 4)
            now = trio.current_time()
            if self.frames != seen:
                seen, quiet_since = self.frames, now
            elif now - quiet_since >= self.timeout_s:
                self.fired = True
                scope.cancel()
                return
