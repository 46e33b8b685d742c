"""Raw firehose source: `com.atproto.sync.subscribeRepos` of a PDS or relay, over trio-websocket
(engine/sources/websocket.py).

The cursor is the frame's `seq`, exact and per host (key `firehose:<host[:port]>`), so resuming
needs no rewind: `?cursor=<last seq>` replays what came after it. Collections are filtered here
(the firehose carries every one); frames with nothing wanted still move the cursor. Error frames
(`op: -1`) end the connection and are retried with the shared backoff, like any failure.
"""

from __future__ import annotations

import functools
import logging
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .. import metrics
from ..decode_firehose import ERROR, FirehoseDecoder
from ..errors import RejectedEvent, RejectReason, SourceClosed, SourceRefused
from ..wanted import WantedCollections
from . import Sink
from .reconnect import Reconnector, run_websocket
from .websocket import MessageStream

__all__ = ["FirehoseSource", "MAX_MESSAGE_BYTES", "SUBSCRIBE_PATH", "subscribe_url"]

LOGGER = logging.getLogger(__name__)

SUBSCRIBE_PATH: Final = "/xrpc/com.atproto.sync.subscribeRepos"
# Relay frames are at most ~5 MB (facts.md); the decoder rejects frames over 8 MiB with a reason,
# and anything over 16 MiB closes the connection (1009) and is skipped.
MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024
_MESSAGE_TOO_BIG: Final = 1009
# Labels for the counters: names the spec defines, anything else is "other" (bounded label set).
_KNOWN_ERRORS: Final = frozenset({"FutureCursor", "ConsumerTooSlow"})
_KNOWN_INFO: Final = frozenset({"OutdatedCursor"})


def subscribe_url(base: str, cursor: int | None) -> str:
    """The subscribeRepos URL of `base` (a host, or the full endpoint) with `cursor` set."""
    parts = urlsplit(base)
    path = parts.path.rstrip("/")
    if not path.endswith(SUBSCRIBE_PATH):
        path += SUBSCRIBE_PATH
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "cursor"]
    if cursor is not None:
        query.append(("cursor", str(max(cursor, 0))))
    return urlunsplit(parts._replace(path=path, query=urlencode(query)))


class FirehoseSource:
    """A live subscribeRepos subscription.

    Args:
        url: the PDS or relay (FIREHOSE_URL item): `ws[s]://host[:port]` or the full endpoint.
        collections: wanted collection patterns (JETSTREAM_COLLECTIONS), matched locally.
        idle_timeout_s: reconnect after this long without a frame.
    """

    label = "firehose"

    def __init__(self, url: str, collections: tuple[str, ...], *, idle_timeout_s: float = 60.0,
                 reconnector: Reconnector | None = None) -> None:
        parts = urlsplit(url)
        self.name = f"firehose:{parts.hostname}{f':{parts.port}' if parts.port else ''}"
        self.url = url
        self.idle_timeout_s = idle_timeout_s
        self._decoder = FirehoseDecoder(WantedCollections(collections))
        self._reconnector = reconnector or Reconnector(self.label)
        self.last_seq: int | None = None  # seq of the last frame delivered

    def resume_cursor(self, start: int | None) -> int | None:
        """Where the next connection starts: the last delivered seq, else the committed one."""
        return self.last_seq if self.last_seq is not None else start

    async def run(self, start: int | None, sink: Sink) -> None:
        """Deliver events forever, reconnecting as needed. Ends only by cancellation."""
        self.last_seq = None  # a new run resumes from what was committed, not merely delivered

        def url_for() -> str:
            return subscribe_url(self.url, self.resume_cursor(start))

        async def on_failure(error: BaseException) -> None:
            if isinstance(error, SourceClosed) and error.code == _MESSAGE_TOO_BIG:
                await self._skip_oversize(sink)

        await run_websocket(self.label, url_for, functools.partial(self._read, sink=sink),
                            reconnector=self._reconnector, idle_timeout_s=self.idle_timeout_s,
                            max_message_bytes=MAX_MESSAGE_BYTES, on_failure=on_failure)

    async def _read(self, stream: MessageStream, *, sink: Sink) -> None:
        """Read one connection until it fails.

        Error handling: an undecodable frame becomes a reject (its raw CBOR kept); an op that
        cannot become an event becomes a reject carrying its frame; an error frame raises
        SourceRefused (counted; the loop backs off and reconnects from the last seq).
        """
        decode = self._decoder.decode
        first = True
        while True:
            messages = await stream.receive()
            sink.yielded()  # receive() is a schedule point: the router's count starts again
            for message in messages:
                if isinstance(message, str):
                    text = RejectedEvent(RejectReason.INVALID_FRAME, "text message on a binary stream")
                    await sink.reject(text, message.encode(), None)
                    continue
                try:
                    frame = decode(message)
                except RejectedEvent as rejected:
                    await sink.reject(rejected, message, None)
                    continue
                if frame.type == ERROR:
                    error = frame.name if frame.name in _KNOWN_ERRORS else "other"
                    metrics.FIREHOSE_ERROR_FRAMES.labels(self.label, error).inc()
                    raise SourceRefused(frame.name, frame.message)
                if frame.type == "#info":
                    self._info(frame.name, frame.message)
                    continue
                if first:
                    self._reconnector.healthy()
                    first = False
                for refused, event in frame.rejects:
                    await sink.reject(refused, message, event.cursor, event)
                for event in frame.events:
                    await sink.event(event)
                self.last_seq = frame.seq

    def _info(self, name: str | None, message: str | None) -> None:
        metrics.FIREHOSE_INFO.labels(self.label, name if name in _KNOWN_INFO else "other").inc()
        if name == "OutdatedCursor":
            # The host no longer has events that old: it starts from its oldest. What happened
            # in between is only in the repos themselves: run `coves backfill`.
            LOGGER.warning("firehose cursor too old: events were missed; run `coves backfill`",
                           extra={"source": self.name, "info": message})
        else:
            LOGGER.info("firehose info frame", extra={"source": self.name, "name": name,
                                                      "info": message})

    async def _skip_oversize(self, sink: Sink) -> None:
        # Resuming from the same seq would fetch the same message forever: record it, step past.
        detail = f"message over {MAX_MESSAGE_BYTES} bytes after seq={self.last_seq}"
        LOGGER.error("firehose sent an oversize message; skipping it",
                     extra={"source": self.name, "cursor": self.last_seq})
        await sink.reject(RejectedEvent(RejectReason.OVERSIZE, detail), b"", None)
        if self.last_seq is not None:
            self.last_seq += 1
