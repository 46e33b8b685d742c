"""WebSocket transports of the live sources: one small interface, two implementations.

    trio-websocket  trio_websocket: wsproto, a reader task and a message channel, one message per
                    wake-up (~25-30 µs per message on the 2-core VM, ../shared/facts.md)
    sansio          websockets' Sans-I/O `ClientProtocol` driven on a Trio stream by the reading
                    task itself: one `receive_some` of up to RECEIVE_BUFFER_BYTES, every complete
                    frame in it parsed, then all their messages handed over at once (~3.6 µs per
                    message measured in isolation; bench/RESULTS.md has the end-to-end figures)

`open_message_stream(transport, url, …)` connects and yields a `MessageStream`; `receive()`
returns the messages received so far (at least one): `str` for text, `bytes` for binary. Both
transports raise the same errors: `SourceClosed(code, reason)` when the connection ends (1009 when
a message is over `max_message_bytes`, 1006 when TCP closed without a close frame),
`SourceTimeout` after `idle_timeout_s` without data, `SourceRejected` when the handshake fails,
and OSError / trio errors when the host cannot be reached (see `reconnect.failure_of`).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final, Protocol, cast

import trio
import trio_websocket
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.uri import parse_uri

from ..errors import SourceClosed, SourceRejected, SourceTimeout

__all__ = ["CONNECT_TIMEOUT_S", "DISCONNECT_TIMEOUT_S", "MessageStream", "RECEIVE_BUFFER_BYTES",
           "TRANSPORTS", "open_message_stream"]

TRANSPORTS: Final = ("trio-websocket", "sansio")
# Bytes asked for per read. trio-websocket reads 4 KiB per recv by default; at high rates bigger
# reads cut syscalls and scheduler passes: 64 KiB holds ~120 Jetstream events of ~550 B.
RECEIVE_BUFFER_BYTES: Final = 64 * 1024
# Messages buffered between trio-websocket's reader task and ours.
MESSAGE_QUEUE_SIZE: Final = 32
CONNECT_TIMEOUT_S: Final = 10.0
# Closing a dead connection must not wait trio-websocket's default 60 s for a close handshake.
DISCONNECT_TIMEOUT_S: Final = 2.0
_NORMAL_CLOSURE: Final = 1000
_ABNORMAL_CLOSURE: Final = 1006  # RFC 6455 7.4.1: TCP closed with no close frame


class MessageStream(Protocol):
    """One open WebSocket connection, read by one task."""

    async def receive(self) -> list[str | bytes]:
        """The next messages (at least one), in order. A schedule point: other tasks run while
        it waits (trio-websocket's channel, sansio's socket read).

        Raises:
            SourceClosed: the connection ended (after every message before the end was returned).
            SourceTimeout: no data for the idle timeout.
        """


@asynccontextmanager
async def open_message_stream(transport: str, url: str, *, max_message_bytes: int,
                              idle_timeout_s: float) -> AsyncIterator[MessageStream]:
    """Connect to `url` with `transport` ("trio-websocket" or "sansio"); close on exit.

    Raises:
        ValueError: an unknown transport.
        SourceRejected: the server refused the handshake.
        OSError, trio.TooSlowError: the host cannot be reached (within CONNECT_TIMEOUT_S).
    """
    if transport == "trio-websocket":
        async with _open_trio_websocket(url, max_message_bytes, idle_timeout_s) as stream:
            yield stream
    elif transport == "sansio":
        async with _open_sansio(url, max_message_bytes, idle_timeout_s) as sansio:
            yield sansio
    else:
        raise ValueError(f"unknown WebSocket transport {transport!r}; expected one of {TRANSPORTS}")


# ---- trio-websocket ----

class _IdleWatchdog:
    """Cancels a scope when no message arrived for `timeout_s`.

    trio-websocket reads in a task of its own, so the deadline cannot sit on our read: the reader
    bumps `messages` (an integer add, no clock read per message) and this task wakes every quarter
    timeout, so it fires between 1 and 1.25 timeouts of silence.
    """

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.messages = 0
        self.fired = False

    async def run(self, scope: trio.CancelScope) -> None:
        seen = self.messages
        quiet_since = trio.current_time()
        while True:
            await trio.sleep(self.timeout_s / 4)
            now = trio.current_time()
            if self.messages != seen:
                seen, quiet_since = self.messages, now
            elif now - quiet_since >= self.timeout_s:
                self.fired = True
                scope.cancel()
                return


class _TrioWebsocketStream:
    def __init__(self, ws: trio_websocket.WebSocketConnection, watchdog: _IdleWatchdog) -> None:
        self._ws = ws
        self._watchdog = watchdog

    async def receive(self) -> list[str | bytes]:
        try:
            message = await self._ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            reason = exc.reason
            code, text = (reason.code, reason.reason) if reason is not None else (None, None)
            raise SourceClosed(code, text) from exc
        self._watchdog.messages += 1
        return [message]


@asynccontextmanager
async def _open_trio_websocket(url: str, max_message_bytes: int,
                               idle_timeout_s: float) -> AsyncIterator[MessageStream]:
    watchdog = _IdleWatchdog(idle_timeout_s)
    with trio.CancelScope() as idle_scope:
        try:
            async with trio_websocket.open_websocket_url(
                    url, max_message_size=max_message_bytes, message_queue_size=MESSAGE_QUEUE_SIZE,
                    receive_buffer_size=RECEIVE_BUFFER_BYTES, connect_timeout=CONNECT_TIMEOUT_S,
                    disconnect_timeout=DISCONNECT_TIMEOUT_S) as ws:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(watchdog.run, idle_scope)
                    yield _TrioWebsocketStream(ws, watchdog)
                    nursery.cancel_scope.cancel()
        except trio_websocket.ConnectionRejected as exc:
            raise SourceRejected(exc.status_code, f"HTTP {exc.status_code}") from exc
    if watchdog.fired:
        raise SourceTimeout(f"no message for {idle_timeout_s:g} s")


# ---- websockets Sans-I/O on a Trio stream ----

class _SansioStream:
    """Drives a `ClientProtocol`: read, feed, collect messages, send what the protocol owes
    (pongs, the close echo), all in the caller's task."""

    def __init__(self, stream: trio.abc.Stream, protocol: ClientProtocol, idle_timeout_s: float,
                 pending: list[Frame]) -> None:
        self._stream = stream
        self._protocol = protocol
        self._idle_timeout_s = idle_timeout_s
        self._pending = pending  # frames that arrived with the handshake response
        self._fragments: list[bytes] = []
        self._fragmented_text = False

    async def receive(self) -> list[str | bytes]:
        protocol = self._protocol
        messages = self._messages(self._pending)
        self._pending = []
        if messages:  # the frames that came with the handshake: still a schedule point
            await trio.lowlevel.checkpoint()
        while not messages:
            if protocol.state is not State.OPEN:
                raise self._closed()
            # One deadline per read (not per message): the idle watchdog of this transport.
            with trio.move_on_after(self._idle_timeout_s) as idle:
                data = await self._stream.receive_some(RECEIVE_BUFFER_BYTES)
            if idle.cancelled_caught:
                raise SourceTimeout(f"no data for {self._idle_timeout_s:g} s")
            if data:
                protocol.receive_data(data)
            else:
                protocol.receive_eof()
            messages = self._messages(protocol.events_received())
            await self.flush()
        return messages

    def _messages(self, frames: list[Frame] | list[Request | Response | Frame]
                  ) -> list[str | bytes]:
        """Whole messages from frames (reassembling fragments); control frames are the
        protocol's business (it queued the pong or the close echo already)."""
        messages: list[str | bytes] = []
        append = messages.append
        for frame in cast(list[Frame], frames):  # once open, the protocol yields only frames
            opcode = frame.opcode
            data = cast(bytes, frame.data)  # the parser makes bytes
            if frame.fin and not self._fragments:
                if opcode is Opcode.TEXT:
                    append(_text(data))
                elif opcode is Opcode.BINARY:
                    append(data)
            elif opcode is Opcode.TEXT or opcode is Opcode.BINARY or opcode is Opcode.CONT:
                if opcode is not Opcode.CONT:
                    self._fragmented_text = opcode is Opcode.TEXT
                self._fragments.append(data)
                if frame.fin:
                    whole = b"".join(self._fragments)
                    self._fragments = []
                    append(_text(whole) if self._fragmented_text else whole)
        return messages

    def _closed(self) -> SourceClosed:
        protocol = self._protocol
        close = protocol.close_rcvd or protocol.close_sent
        error = SourceClosed(close.code, close.reason) if close is not None \
            else SourceClosed(_ABNORMAL_CLOSURE, "")
        if protocol.parser_exc is not None:
            error.__cause__ = protocol.parser_exc
        return error

    async def flush(self) -> None:
        """Send what the protocol has queued; its end-of-stream marker half-closes nothing
        (a client waits for the server to close TCP; we close it ourselves on exit)."""
        for data in self._protocol.data_to_send():
            if data:
                await self._stream.send_all(data)

    async def aclose(self) -> None:
        """Send a close frame if the connection is still open, then close TCP."""
        with trio.CancelScope(shield=True):
            with trio.move_on_after(DISCONNECT_TIMEOUT_S):
                try:
                    if self._protocol.state is State.OPEN:
                        self._protocol.send_close(_NORMAL_CLOSURE)
                    await self.flush()
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    pass  # the connection is already gone: nothing left to tell the server
            await trio.aclose_forcefully(self._stream)


def _text(data: bytes) -> str | bytes:
    # Invalid UTF-8 in a text message stays bytes: the decoder rejects it as invalid JSON (kept in
    # ingest_rejects) instead of failing the connection, which would fetch it again forever.
    try:
        return data.decode()
    except UnicodeDecodeError:
        return data


@asynccontextmanager
async def _open_sansio(url: str, max_message_bytes: int,
                       idle_timeout_s: float) -> AsyncIterator[MessageStream]:
    uri = parse_uri(url)
    protocol = ClientProtocol(uri, max_size=max_message_bytes)
    with trio.fail_after(CONNECT_TIMEOUT_S):
        stream: trio.abc.Stream = await trio.open_tcp_stream(uri.host, uri.port)
        if uri.secure:
            stream = trio.SSLStream(stream, ssl.create_default_context(), server_hostname=uri.host,
                                    https_compatible=True)
        connection = _SansioStream(stream, protocol, idle_timeout_s, [])
        try:
            protocol.send_request(protocol.connect())
            await connection.flush()
            connection._pending = await _handshake(stream, protocol)
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
    try:
        yield connection
    finally:
        await connection.aclose()


async def _handshake(stream: trio.abc.Stream, protocol: ClientProtocol) -> list[Frame]:
    """Read until the handshake response; return the frames that came with it.

    Raises:
        SourceRejected: a status other than 101, or an invalid response.
    """
    while True:
        data = await stream.receive_some(RECEIVE_BUFFER_BYTES)
        if data:
            protocol.receive_data(data)
        else:
            protocol.receive_eof()
        events = protocol.events_received()
        error = protocol.handshake_exc
        if error is not None:
            if isinstance(error, InvalidStatus):
                status = error.response.status_code
                raise SourceRejected(status, f"HTTP {status}") from error
            raise SourceRejected(None, str(error) or type(error).__name__) from error
        if events:
            assert isinstance(events[0], Response)
            return [event for event in events[1:] if isinstance(event, Frame)]
        if not data:
            raise SourceRejected(None, "connection closed during the handshake")

