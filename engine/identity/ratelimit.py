"""A token bucket on trio's clock: callers wait their turn to make an outbound request."""

from __future__ import annotations

import trio

__all__ = ["TokenBucket"]


class TokenBucket:
    """Allow `rate_per_s` acquisitions per second on average, at most `burst` at once.

    With burst=1 (the default) acquisitions are spaced 1/rate apart, so no window of one second
    holds more than `rate` of them. Waiters are served in arrival order (trio.Lock is fair).
    """

    def __init__(self, rate_per_s: float, *, burst: float = 1.0) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self.rate_per_s = rate_per_s
        self._burst = burst
        self._tokens = burst
        self._stamp: float | None = None
        self._lock = trio.Lock()

    def _refill(self) -> None:
        now = trio.current_time()
        if self._stamp is not None:
            self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self.rate_per_s)
        self._stamp = now

    async def acquire(self) -> None:
        """Wait until a token is free and take it."""
        async with self._lock:
            self._refill()
            if self._tokens < 1:
                await trio.sleep((1 - self._tokens) / self.rate_per_s)
                self._refill()
            self._tokens -= 1
