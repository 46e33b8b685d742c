"""Exponential backoff with jitter, shared by every retry loop (sources, writer, probes)."""

from __future__ import annotations

import random
from typing import Final

__all__ = ["DEFAULT_BASE_S", "DEFAULT_CAP_S", "backoff_delay"]

DEFAULT_BASE_S: Final = 0.5
# The ceiling: never wait more than a minute between attempts.
DEFAULT_CAP_S: Final = 60.0


def backoff_delay(attempt: int, *, base_s: float = DEFAULT_BASE_S, cap_s: float = DEFAULT_CAP_S,
                  rng: random.Random | None = None) -> float:
    """Delay before retry number `attempt` (0-based): base·2^attempt capped, with "equal jitter".

    Half the delay is fixed and half random, so retries from many clients spread out while
    each still waits at least half the nominal time.
    """
    ceiling = min(cap_s, base_s * (1 << min(attempt, 30)))
    jitter: float = (rng or random).uniform(0, ceiling / 2)
    return ceiling / 2 + jitter
