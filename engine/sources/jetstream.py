"""Jetstream v1 source over trio-websocket: subscribe, decode, deliver, reconnect.

Resumes from `cursor = last delivered time_us − rewind` (at start: the committed cursor − rewind;
Jetstream's time_us order is not commit order across repos, so we step back and let the rev gate
drop what we already have). Any connection failure — refused, unreachable, abrupt close, a
silent stall caught by the idle watchdog — is logged, counted, and retried with backoff.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import trio
import trio_websocket

from .. import metrics
from ..decode import JetstreamDecoder
from ..errors import RejectedEvent, RejectReason, SourceTimeout
from . import Sink
from .reconnect import IdleWatchdog, Reconnector

__all__ = ["JetstreamSource", "MAX_MESSAGE_BYTES"]

LOGGER = logging.getLogger(__name__)

# Jetstream frames carry one record (≤ 1 MiB of CBOR, larger as JSON); the issue asks for ≥ 4 MiB.
# 16 MiB leaves room; decode rejects anything over its own 4 MiB event cap with a reason.
MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024
# trio-websocket reads 4 KiB per recv by default; bigger reads cut syscalls at high rates.
RECEIVE_BUFFER_BYTES: Final = 64 * 1024
# Messages buffered between trio-websocket's reader task and ours.
MESSAGE_QUEUE_SIZE: Final = 32
CONNECT_TIMEOUT_S: Final = 10.0
# Closing a dead connection must not wait trio-websocket's default 60 s for a close handshake.
DISCONNECT_TIMEOUT_S: Final = 2.0
_MESSAGE_TOO_BIG: Final = 1009


def subscribe_url(base: str, collections: tuple[str, ...], cursor: int | None,
                  compress: bool) -> str:
    """The subscribe URL with wantedCollections, cursor and compress (keeps other parameters)."""
    parts = urlsplit(base)
    query = [(k, v) for k, v in parse_qsl(parts.query)
             if k not in ("wantedCollections", "cursor", "compress")]
    query += [("wantedCollections", c) for c in collections]
    if cursor is not None:
        query.append(("cursor", str(max(cursor, 0))))
    if compress:
        query.append(("compress", "true"))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _failure(exc: BaseException) -> tuple[str, str, BaseException] | None:
    """(reason, message, the error itself) for a connection failure, looking inside exception
    groups; None if `exc` is not one (then it is a bug: re-raise)."""
    if isinstance(exc, BaseExceptionGroup):
        leaves = [_failure(e) for e in exc.exceptions]
        return leaves[0] if leaves and all(leaves) else None
    if isinstance(exc, SourceTimeout):
        return "idle", str(exc), exc
    if isinstance(exc, trio_websocket.ConnectionClosed):
        reason = exc.reason
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


class JetstreamSource:
    """A live Jetstream v1 subscription.

    Args:
        url: the subscribe endpoint (JETSTREAM_URL).
        collections: wantedCollections.
        dictionary: the v1 zstd dictionary; when given, ask for compress=true.
        idle_timeout_s: reconnect after this long without a frame.
        rewind_s: how far before a cursor to resume.
    """

    label = "jetstream"

    def __init__(self, url: str, collections: tuple[str, ...], *, dictionary: Path | None = None,
                 idle_timeout_s: float = 60.0, rewind_s: float = 5.0,
                 reconnector: Reconnector | None = None) -> None:
        self.name = "jetstream"
        self.url = url
        self.collections = collections
        self.compress = dictionary is not None
        self.idle_timeout_s = idle_timeout_s
        self.rewind_us = int(rewind_s * 1_000_000)
        self._decoder = JetstreamDecoder(dictionary)
        self._reconnector = reconnector or Reconnector(self.label)
        self.last_cursor: int | None = None  # time_us of the last event delivered
        self._skip_past: int | None = None  # resume exactly here once (after an oversize message)

    def resume_cursor(self, start: int | None) -> int | None:
        """Where the next connection starts: the last delivered (or committed) time_us − rewind."""
        if self._skip_past is not None:
            cursor, self._skip_past = self._skip_past, None
            return cursor
        position = self.last_cursor if self.last_cursor is not None else start
        return None if position is None else max(position - self.rewind_us, 0)

    async def run(self, start: int | None, sink: Sink) -> None:
        """Deliver events forever, reconnecting as needed. Ends only by cancellation."""
        # A fresh run starts from the committed cursor, never from what an earlier (torn down)
        # run delivered but did not commit.
        self.last_cursor = None
        self._skip_past = None
        connected = metrics.SOURCE_CONNECTED.labels(self.label)
        while True:
            url = subscribe_url(self.url, self.collections, self.resume_cursor(start), self.compress)
            try:
                await self._connection(url, sink)
            except Exception as exc:
                failure = _failure(exc)
                if failure is None:
                    raise
                connected.set(0)
                reason, message, error = failure
                if isinstance(error, trio_websocket.ConnectionClosed) \
                        and error.reason.code == _MESSAGE_TOO_BIG:
                    await self._skip_oversize(sink)
                await self._reconnector.wait(reason, message, url)

    async def _connection(self, url: str, sink: Sink) -> None:
        watchdog = IdleWatchdog(self.idle_timeout_s)
        with trio.CancelScope() as idle_scope:
            async with trio_websocket.open_websocket_url(
                    url, max_message_size=MAX_MESSAGE_BYTES, message_queue_size=MESSAGE_QUEUE_SIZE,
                    receive_buffer_size=RECEIVE_BUFFER_BYTES, connect_timeout=CONNECT_TIMEOUT_S,
                    disconnect_timeout=DISCONNECT_TIMEOUT_S) as ws:
                LOGGER.info("jetstream connected", extra={"url": url})
                metrics.SOURCE_CONNECTED.labels(self.label).set(1)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(watchdog.run, idle_scope)
                    await self._read(ws, sink, watchdog)
        if watchdog.fired:
            raise SourceTimeout(f"no frame for {self.idle_timeout_s:g} s")

    async def _read(self, ws: trio_websocket.WebSocketConnection, sink: Sink,
                    watchdog: IdleWatchdog) -> None:
        decode = self._decoder.decode
        first = True
        while True:
            message = await ws.get_message()
            watchdog.frames += 1
            try:
                event = decode(message)
            except RejectedEvent as rejected:
                raw = message.encode() if isinstance(message, str) else message
                await sink.reject(rejected, raw, None)
                continue
            if first:
                self._reconnector.healthy()
                first = False
            self.last_cursor = event.cursor
            await sink.event(event)

    async def _skip_oversize(self, sink: Sink) -> None:
        # The server sent a message over MAX_MESSAGE_BYTES; resuming with the rewind would fetch it
        # again forever. Record it and resume just past the last event we did get.
        detail = f"message over {MAX_MESSAGE_BYTES} bytes after time_us={self.last_cursor}"
        LOGGER.error("jetstream sent an oversize message; skipping it", extra={"cursor": self.last_cursor})
        await sink.reject(RejectedEvent(RejectReason.OVERSIZE, detail), b"", None)
        if self.last_cursor is not None:
            self._skip_past = self.last_cursor + 1
