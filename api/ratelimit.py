"""Per-client request budgets: fixed one-minute windows, kept in this process's memory.

The client is the peer address — or, when the peer is one of TRUSTED_PROXIES, the address the
proxy reports: the right-most X-Forwarded-For hop that is not itself a trusted proxy, else
X-Real-IP. A header from any other peer is ignored, so a client cannot pick its own key.

One process, one budget: with several API processes behind a load balancer each keeps its own
counts (a client gets N × the limit); the README's deployment notes say how to move the counts
to Redis when that matters.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Final

from cachetools import TTLCache

__all__ = ["Decision", "RateLimiter", "WINDOW_S", "client_address"]

WINDOW_S: Final = 60.0
MAX_TRACKED_CLIENTS: Final = 200_000  # per bucket; ~150 B each. Beyond it the oldest are dropped.

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one hit, with what the RateLimit-* headers report."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: int  # seconds until the window ends

    def headers(self) -> dict[str, str]:
        """RateLimit-Limit/-Remaining/-Reset, plus Retry-After when refused."""
        headers = {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(self.remaining),
                   "RateLimit-Reset": str(self.reset_s)}
        if not self.allowed:
            headers["Retry-After"] = str(self.reset_s)
        return headers


@dataclasses.dataclass(slots=True)
class _Window:
    started: float
    count: int


class RateLimiter:
    """Counts hits per (bucket, client) in fixed windows that start at a client's first hit.

    Args:
        clock: monotonic seconds (tests pass a fake one).
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, TTLCache[str, _Window]] = {}

    def hit(self, bucket: str, client: str, limit: int, *, window_s: float = WINDOW_S) -> Decision:
        """Count one request of `client` against `bucket`'s `limit` per window (a minute unless
        `window_s` says otherwise; one bucket always uses the same window)."""
        windows = self._buckets.get(bucket)
        if windows is None:
            windows = self._buckets[bucket] = TTLCache(MAX_TRACKED_CLIENTS, window_s, timer=self._clock)
        now = self._clock()
        window = windows.get(client)
        if window is None or now - window.started >= window_s:
            window = _Window(now, 0)
            windows[client] = window  # the entry expires with its window
        reset_s = max(1, math.ceil(window.started + window_s - now))
        if window.count >= limit:
            return Decision(False, limit, 0, reset_s)
        window.count += 1
        return Decision(True, limit, limit - window.count, reset_s)


def _address(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def client_address(peer: str | None, headers: Iterable[tuple[str, str]],
                   trusted: Sequence[Network]) -> str:
    """The address requests of this client are counted under (see the module docstring)."""
    if not trusted:  # no proxy to believe: the peer, as the socket reported it
        return peer or "unknown"
    peer_address = _address(peer) if peer else None
    if peer_address is None:
        return peer or "unknown"
    if not any(peer_address in network for network in trusted):
        return str(peer_address)

    def is_trusted(address: Address) -> bool:
        return any(address in network for network in trusted)

    items = list(headers)
    forwarded = [value for name, value in items if name.lower() == "x-forwarded-for"]
    hops = [hop for value in forwarded for hop in value.split(",") if hop.strip()]
    if hops:
        addresses = [_address(hop) for hop in hops]
        for address in reversed(addresses):
            if address is None:
                break  # a hop we cannot read: trust nothing further left
            if not is_trusted(address):
                return str(address)
        else:
            first = addresses[0]
            return str(first) if first is not None else str(peer_address)
    real = [value for name, value in items if name.lower() == "x-real-ip"]
    if real:
        address = _address(real[0])
        if address is not None:
            return str(address)
    return str(peer_address)
