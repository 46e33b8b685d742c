"""The reconnect policy every live source shares: backoff with jitter, and the
connect → read → classify the failure → back off → reconnect loop (`run_websocket`).

Each source supplies only what differs: the URL of the next connection (its resume cursor) and
how to read one connection's messages. The WebSocket itself (and its idle watchdog) comes from
`websocket.py`, over either transport.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final, NoReturn

import trio
import trio_websocket

from .. import metrics
from ..backoff import backoff_delay
from ..errors import SourceClosed, SourceRefused, SourceRejected, SourceTimeout
from .websocket import MessageStream, open_message_stream

__all__ = ["Reconnector", "RECONNECT_BASE_S", "RECONNECT_CAP_S", "failure_of", "run_websocket"]

LOGGER = logging.getLogger(__name__)
# First retry after ~0.5-1 s, doubling to a 60 s ceiling: fast recovery from a blip, and a
# public Jetstream host that is down for minutes sees one attempt a minute from us, not a storm.
RECONNECT_BASE_S: Final = 1.0
RECONNECT_CAP_S: Final = 60.0

Reader = Callable[[MessageStream], Awaitable[None]]


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


def failure_of(exc: BaseException) -> tuple[str, str, BaseException] | None:
    """(reason, message, the error itself) for a connection failure, looking inside exception
    groups; None if `exc` is not one (then it is a bug: re-raise)."""
    if isinstance(exc, BaseExceptionGroup):
        leaves = [failure_of(e) for e in exc.exceptions]
        return leaves[0] if leaves and all(leaves) else None
    if isinstance(exc, SourceTimeout):
        return "idle", str(exc), exc
    if isinstance(exc, SourceRefused):
        return "error_frame", str(exc), exc
    if isinstance(exc, SourceClosed):
        return "closed", f"code={exc.code} {exc.reason or ''}".strip(), exc
    if isinstance(exc, SourceRejected):
        if exc.status is not None:
            return "rejected", f"HTTP {exc.status}", exc
        return "handshake", exc.detail, exc
    if isinstance(exc, trio_websocket.ConnectionClosed):
        reason = exc.reason
        if reason is None:
            return "closed", "connection closed", exc
        return "closed", f"code={reason.code} {reason.name} {reason.reason or ''}".strip(), exc
    if isinstance(exc, trio_websocket.ConnectionRejected):
        return "rejected", f"HTTP {exc.status_code}", exc
    if isinstance(exc, (trio_websocket.ConnectionTimeout, trio_websocket.DisconnectionTimeout,
                        trio.TooSlowError)):
        return "timeout", type(exc).__name__, exc
    if isinstance(exc, trio_websocket.HandshakeError):
        # trio-websocket reports a refused or unresolvable address as a HandshakeError caused
        # by the OSError; name the real cause.
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, OSError):
            return "unreachable", str(cause) or type(cause).__name__, exc
        return "handshake", str(exc) or type(exc).__name__, exc
    if isinstance(exc, (OSError, trio.BrokenResourceError)):
        return "unreachable", str(exc) or type(exc).__name__, exc
    return None


async def run_websocket(label: str, url_for: Callable[[], str], read: Reader, *,
                        reconnector: Reconnector, idle_timeout_s: float, max_message_bytes: int,
                        transport: str = "trio-websocket",
                        on_failure: Callable[[BaseException], Awaitable[None]] | None = None
                        ) -> NoReturn:
    """Connect to `url_for()`, let `read` consume the connection, and reconnect forever.

    Args:
        label: the source label for logs and metrics.
        url_for: the URL of the next connection (called before each attempt: it carries the
            source's resume cursor).
        read: reads one connection until it fails; calls `reconnector.healthy()` once data flowed.
        transport: "trio-websocket" or "sansio" (`websocket.py`).
        on_failure: called with the failure before the backoff (e.g. to skip an oversize message).

    Error handling: every connection failure (`failure_of`) — refused, unreachable, closed, an
    error frame, a stall caught by the idle watchdog — is logged, counted in
    `coves_ingest_reconnects_total{reason}`, and retried after the reconnector's backoff. Any
    other exception is a bug and propagates.
    """
    connected = metrics.SOURCE_CONNECTED.labels(label)
    while True:
        url = url_for()
        try:
            async with open_message_stream(transport, url, max_message_bytes=max_message_bytes,
                                           idle_timeout_s=idle_timeout_s) as stream:
                LOGGER.info("%s connected", label,
                            extra={"source": label, "url": url, "transport": transport})
                connected.set(1)
                await read(stream)
        except Exception as exc:
            failure = failure_of(exc)
            if failure is None:
                raise
            connected.set(0)
            reason, message, error = failure
            if on_failure is not None:
                await on_failure(error)
            await reconnector.wait(reason, message, url)
