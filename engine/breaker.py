"""Circuit breaker: after repeated failures, stop trying until a probe succeeds.

Closed: calls go through; `failure_threshold` consecutive failures open it. Open: the caller
stops intake and probes; a successful probe moves it to half-open, the next success closes it and
a failure opens it again. Pure state plus a gauge; the waiting is done by the caller.
"""

from __future__ import annotations

import enum
import logging
from typing import Final

from .metrics import BREAKER_STATE

__all__ = ["Breaker", "BreakerState"]

LOGGER = logging.getLogger(__name__)
DEFAULT_FAILURE_THRESHOLD: Final = 5


class BreakerState(enum.IntEnum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class Breaker:
    """Counts consecutive failures of one dependency (named for logs and the gauge)."""

    def __init__(self, name: str, failure_threshold: int = DEFAULT_FAILURE_THRESHOLD) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.failures = 0
        self.state = BreakerState.CLOSED
        BREAKER_STATE.labels(name).set(self.state)

    def _move(self, state: BreakerState) -> None:
        if state is not self.state:
            LOGGER.warning("breaker %s: %s -> %s", self.name, self.state.name.lower(),
                           state.name.lower(), extra={"breaker": self.name, "failures": self.failures})
            self.state = state
            BREAKER_STATE.labels(self.name).set(state)

    @property
    def is_open(self) -> bool:
        return self.state is BreakerState.OPEN

    def record_success(self) -> None:
        self.failures = 0
        self._move(BreakerState.CLOSED)

    def record_failure(self) -> None:
        self.failures += 1
        if self.state is BreakerState.HALF_OPEN or self.failures >= self.failure_threshold:
            self._move(BreakerState.OPEN)

    def probe_succeeded(self) -> None:
        """The dependency answered a probe: let the next real call decide."""
        self._move(BreakerState.HALF_OPEN)
