"""Pace a sender at a fixed average rate on trio's clock, sleeping in short bursts.

Used by `bench/emulator.py` for `rate=`; works on a MockClock, so tests check it in virtual time.
"""

from __future__ import annotations

import math
from typing import Final

import trio

__all__ = ["PACE_QUANTUM_S", "Pacer"]

# When ahead of the rate, sleep until this much sending is due and send it as one burst: trio's
# timers wake ~0.1-1 ms late, so one sleep per event would undershoot rates in the 10k/s range.
PACE_QUANTUM_S: Final = 0.005


class Pacer:
    """Let frames go at `rate` per second on average (None: no pacing).

    Frame k after `reset` is due at start + k / rate. A sender that falls behind (slow client)
    catches up in a burst; time spent idle after `reset` earns none.
    """

    def __init__(self, rate: float | None) -> None:
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be positive, not {rate}")
        self._rate = rate
        self.reset()

    def reset(self) -> None:
        """Start afresh from the next frame."""
        self._start: float | None = None
        self._count = 0  # frames let go since `_start`
        self._allowed = 0  # frames known to be due

    async def wait(self) -> None:
        """Return when the next frame is due."""
        await self.grant(1)

    async def grant(self, wanted: int) -> int:
        """Wait until the next frame is due; return how many of the next `wanted` frames are due
        now (1..wanted), counted as let go."""
        if self._rate is None:
            return wanted
        if self._count >= self._allowed:
            now = trio.current_time()
            if self._start is None:
                self._start = now
            self._allowed = int((now - self._start) * self._rate) + 1
            if self._count >= self._allowed:
                burst = math.ceil(self._rate * PACE_QUANTUM_S)
                await trio.sleep_until(self._start + (self._count + burst - 1) / self._rate)
                self._allowed = self._count + burst
        granted = min(wanted, self._allowed - self._count)
        self._count += granted
        return granted
