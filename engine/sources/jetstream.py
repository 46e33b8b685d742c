"""Jetstream v1 source: subscribe, decode, deliver, reconnect (over either WebSocket transport).

Resumes from `cursor = last delivered time_us − rewind` (at start: the committed cursor − rewind;
Jetstream's time_us order is not commit order across repos, so we step back and let the rev gate
drop what we already have). Any connection failure — refused, unreachable, abrupt close, a
silent stall caught by the idle watchdog — is logged, counted, and retried with backoff.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..decode import JetstreamDecoder
from ..errors import RejectedEvent, RejectReason, SourceClosed
from . import Sink
from .reconnect import Reconnector, run_websocket
from .websocket import MessageStream

__all__ = ["DEFAULT_TRANSPORT", "JetstreamSource", "MAX_MESSAGE_BYTES"]

LOGGER = logging.getLogger(__name__)

# Jetstream frames carry one record (≤ 1 MiB of CBOR, larger as JSON); the issue asks for ≥ 4 MiB.
# 16 MiB leaves room; decode rejects anything over its own 4 MiB event cap with a reason.
MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024
_MESSAGE_TOO_BIG: Final = 1009
# JETSTREAM_TRANSPORT's default (engine/sources/websocket.py; the choice is measured in
# bench/RESULTS.md).
DEFAULT_TRANSPORT: Final = "trio-websocket"


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


class JetstreamSource:
    """A live Jetstream v1 subscription.

    Args:
        url: the subscribe endpoint (JETSTREAM_URL).
        collections: wantedCollections.
        dictionary: the v1 zstd dictionary; when given, ask for compress=true.
        idle_timeout_s: reconnect after this long without a frame.
        rewind_s: how far before a cursor to resume.
        transport: the WebSocket implementation, "trio-websocket" or "sansio" (JETSTREAM_TRANSPORT).
    """

    label = "jetstream"

    def __init__(self, url: str, collections: tuple[str, ...], *, dictionary: Path | None = None,
                 idle_timeout_s: float = 60.0, rewind_s: float = 5.0,
                 reconnector: Reconnector | None = None,
                 transport: str = DEFAULT_TRANSPORT) -> None:
        self.name = "jetstream"
        self.url = url
        self.collections = collections
        self.compress = dictionary is not None
        self.idle_timeout_s = idle_timeout_s
        self.rewind_us = int(rewind_s * 1_000_000)
        self.transport = transport
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

        def url_for() -> str:
            return subscribe_url(self.url, self.collections, self.resume_cursor(start), self.compress)

        async def on_failure(error: BaseException) -> None:
            if isinstance(error, SourceClosed) and error.code == _MESSAGE_TOO_BIG:
                await self._skip_oversize(sink)

        await run_websocket(self.label, url_for, functools.partial(self._read, sink=sink),
                            reconnector=self._reconnector, idle_timeout_s=self.idle_timeout_s,
                            max_message_bytes=MAX_MESSAGE_BYTES, transport=self.transport,
                            on_failure=on_failure)

    async def _read(self, stream: MessageStream, *, sink: Sink) -> None:
        decode = self._decoder.decode
        deliver = sink.event
        first = True
        while True:
            messages = await stream.receive()
            sink.yielded()  # receive() is a schedule point: the router's count starts again
            for message in messages:
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
                await deliver(event)

    async def _skip_oversize(self, sink: Sink) -> None:
        # The server sent a message over MAX_MESSAGE_BYTES; resuming with the rewind would fetch it
        # again forever. Record it and resume just past the last event we did get.
        detail = f"message over {MAX_MESSAGE_BYTES} bytes after time_us={self.last_cursor}"
        LOGGER.error("jetstream sent an oversize message; skipping it", extra={"cursor": self.last_cursor})
        await sink.reject(RejectedEvent(RejectReason.OVERSIZE, detail), b"", None)
        if self.last_cursor is not None:
            self._skip_past = self.last_cursor + 1
