"""A local Jetstream v1 server for tests and benchmarks.

Serves a buffer of v1 JSON events with Jetstream's subscribe protocol (filters, `cursor` replay,
zstd-with-dictionary compression, `options_update`) over trio-websocket, paced at a chosen rate,
with one-shot faults for reconnect tests. `python -m bench.emulator --help` serves a file.
"""

from __future__ import annotations

import argparse
import enum
import gc
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NoReturn

import orjson
import trio
import trio_websocket
import zstandard

from bench._jetstream_events import BufferedEvent, iter_events, oversize_event
from bench._jetstream_filter import BadRequest, Filter, parse_options_update, parse_subscribe
from bench._pacer import Pacer
from engine.runtime import tune_gc

__all__ = ["EmulatorStats", "Fault", "JetstreamEmulator", "main"]

HANDSHAKE_TIMEOUT_S: Final = 10
CLOSE_TIMEOUT_S: Final = 5
# Jetstream v1 compresses with Go's klauspost/zstd at its default speed, close to zstd level 3.
ZSTD_LEVEL: Final = 3
GARBAGE_FRAME: Final = b"\x00\xffnot json"  # sent as a binary message: neither JSON nor zstd
DEFAULT_OVERSIZE_BYTES: Final = 5 * 2**20
CLOSE_REASON: Final = "emulator fault: CLOSE"
# Frames written per socket send at most: ~550 B each, so up to ~140 KiB per write.
BURST_FRAMES: Final = 256
_OP_TEXT: Final = 0x1
_OP_BINARY: Final = 0x2


class Fault(enum.Enum):
    """A misbehaviour armed for one connection by `JetstreamEmulator.schedule_fault`."""

    ABRUPT_CLOSE = "abrupt_close"  # after N frames: close TCP with no WebSocket close frame
    STALL = "stall"  # after N frames: keep the connection open, send nothing (pings get pongs)
    GARBAGE = "garbage"  # at position N: one non-JSON binary frame, then carry on
    OVERSIZE = "oversize"  # at position N: one JSON event of `oversize_bytes`, then carry on
    CLOSE = "close"  # after N frames: a clean close with code 1011 and a reason


@dataclass
class EmulatorStats:
    """Counters for tests: accepted connections, frames sent, the last connection's query."""

    connections: int = 0
    frames_sent: int = 0
    last_query: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _ArmedFault:
    fault: Fault
    after: int
    oversize_bytes: int


@dataclass(eq=False)
class _Connection:
    ws: trio_websocket.WebSocketConnection
    filter: Filter
    compress: bool
    cursor: int | None
    fault: _ArmedFault | None
    hello: trio.Event | None  # set by the first options_update when requireHello=true
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    sent: int = 0
    last_time_us: int = 0
    abrupt: bool = False  # end by closing TCP, without a close frame
    started_wall_us: int | None = None  # stamp_time: wall clock of the first send
    stamped: int = 0  # stamp_time: events stamped so far


class JetstreamEmulator:
    """Serve Jetstream v1 events to subscribers, as fast as possible or at `rate` events/s each.

    Args:
        events: Jetstream v1 JSON events, one per item, kept byte for byte.
        rate: events/s sent per connection; None sends as fast as the socket takes them.
        zstd_dictionary: the dictionary for `compress=true` (without one, compression is refused).
        max_message_size: the largest message accepted from a client.
        loop: at the end of the buffer, start again from its beginning instead of waiting for
            `publish` (endless replay for benchmarks); a subscriber without cursor then gets the
            whole buffer on every pass.
        stamp_time: send each (uncompressed) event with `time_us` set to the wall-clock time it
            was due at (`rate` given: the connection's start + k / rate for its k-th event, even
            when a slow client makes it go later, as Jetstream stamps an event when it arrives,
            not when the outbox gets to it), else to the time it is sent. The lag benchmark
            measures commit time against it.

    Raises:
        ValueError: an event is not a v1 event (JSON with `did`, `time_us`, commit `collection`).
    """

    def __init__(self, events: Iterable[bytes] = (), *, rate: float | None = None,
                 zstd_dictionary: bytes | None = None, max_message_size: int = 16 * 2**20,
                 loop: bool = False, stamp_time: bool = False) -> None:
        self._events = [BufferedEvent.parse(frame) for frame in events]
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be positive, not {rate}")
        self._rate = rate
        self._compressor = None if zstd_dictionary is None else zstandard.ZstdCompressor(
            level=ZSTD_LEVEL, dict_data=zstandard.ZstdCompressionDict(zstd_dictionary))
        self._max_message_size = max_message_size
        self._loop = loop
        self._stamp_time = stamp_time
        self._faults: deque[_ArmedFault] = deque()
        self._live: set[_Connection] = set()
        self._wakeup = trio.lowlevel.ParkingLot()  # senders waiting for new events or filters
        self._accepted = trio.lowlevel.ParkingLot()  # wait_for_connections callers
        self._url: str | None = None
        self.stats = EmulatorStats()

    @property
    def url(self) -> str:
        """The subscribe URL, `ws://HOST:PORT/subscribe`, once `serve` has started."""
        if self._url is None:
            raise RuntimeError("the emulator is not serving yet")
        return self._url

    def publish(self, frame: bytes) -> None:
        """Append an event to the buffer; live subscribers whose filter passes it receive it."""
        self._events.append(BufferedEvent.parse(frame))
        self._wakeup.unpark_all()

    def schedule_fault(self, fault: Fault, after: int, *,
                       oversize_bytes: int = DEFAULT_OVERSIZE_BYTES) -> None:
        """Arm `fault` for the next connection accepted, once it has sent `after` frames.

        Faults queue: each call arms one later connection, in the order of the calls.
        """
        self._faults.append(_ArmedFault(fault, after, oversize_bytes))

    async def wait_for_connections(self, n: int) -> None:
        """Return once `n` connections in total have been accepted."""
        while self.stats.connections < n:
            await self._accepted.park()

    def close_all(self) -> None:
        """Drop every live connection without a close frame, as a restart would; keep serving."""
        for conn in self._live:
            conn.abrupt = True
            conn.scope.cancel()

    async def serve(self, host: str = "127.0.0.1", port: int = 0, *,
                    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> NoReturn:
        """Accept subscribers until cancelled; `task_status.started(url)` once listening."""
        listeners = await trio.open_tcp_listeners(port, host=host)
        bound_host, bound_port = listeners[0].socket.getsockname()[:2]
        netloc = f"[{bound_host}]" if ":" in bound_host else bound_host
        self._url = f"ws://{netloc}:{bound_port}/subscribe"
        task_status.started(self._url)
        await trio.serve_listeners(self._serve_connection, listeners)

    async def _serve_connection(self, stream: trio.SocketStream) -> None:
        """Run one subscriber from handshake to close.

        Error handling: a bad request gets Jetstream's HTTP status and reason; a client that
        goes away (ConnectionClosed) ends its connection quietly.
        """
        async with stream, trio.open_nursery() as nursery:
            try:
                await self._subscribe(nursery, stream)
            except* trio_websocket.ConnectionClosed:
                pass
            nursery.cancel_scope.cancel()  # the websocket's reader task

    async def _subscribe(self, nursery: trio.Nursery, stream: trio.SocketStream) -> None:
        """Handshake, register the subscriber, stream to it, then close as the ending requires."""
        with trio.move_on_after(HANDSHAKE_TIMEOUT_S):
            request = await trio_websocket.wrap_server_stream(
                nursery, stream, max_message_size=self._max_message_size)
        if request is None:  # handshake timed out
            return
        try:
            query = parse_subscribe(request.path, request.headers)
            if query.compress and self._compressor is None:
                raise BadRequest("compression needs a zstd dictionary; this emulator has none")
        except BadRequest as exc:
            await request.reject(exc.status, body=str(exc).encode())
            return
        ws = await request.accept()
        conn = _Connection(ws, query.filter, query.compress, query.cursor,
                           self._faults.popleft() if self._faults else None,
                           trio.Event() if query.require_hello else None)
        # A subscriber without cursor starts at the live tail, fixed here, before it is counted.
        start = 0 if query.cursor is not None else len(self._events)
        self._live.add(conn)
        self.stats.connections += 1
        self.stats.last_query = query.params
        self._accepted.unpark_all()
        try:
            with conn.scope:
                async with trio.open_nursery() as tasks:
                    tasks.start_soon(self._read_client, conn, tasks.cancel_scope)
                    await self._send_events(conn, start)
                    tasks.cancel_scope.cancel()
        finally:
            self._live.discard(conn)
        if conn.abrupt:
            await trio.aclose_forcefully(stream)
        else:
            with trio.move_on_after(CLOSE_TIMEOUT_S):
                await ws.aclose()

    async def _read_client(self, conn: _Connection, done: trio.CancelScope) -> None:
        """Apply `options_update` messages; end the connection when the client leaves.

        Error handling: a malformed options update closes the connection with its reason, as
        Jetstream does; other message types and binary messages are ignored.
        """
        try:
            while True:
                message = await conn.ws.get_message()
                if isinstance(message, bytes):
                    continue
                try:
                    update = parse_options_update(orjson.loads(message))
                except (orjson.JSONDecodeError, AttributeError, BadRequest) as exc:
                    await conn.ws.aclose(1000, f"bad client message: {exc}"[:120])
                    break
                if update is not None:
                    conn.filter = update
                    if conn.hello is not None:
                        conn.hello.set()
                    self._wakeup.unpark_all()  # a looping sender may now match something
        except trio_websocket.ConnectionClosed:
            pass
        done.cancel()

    async def _send_events(self, conn: _Connection, pos: int) -> None:
        """Send matching events from `pos` on, then live ones, until a fault ends the stream.

        Events go in bursts: every matching event that is due (by the rate) and buffered, up to
        BURST_FRAMES, framed here and written with one `send_all` (see `_send_burst`).
        """
        if conn.hello is not None:
            await conn.hello.wait()
        events, pacer = self._events, Pacer(self._rate)
        compressor = self._compressor if conn.compress else None
        replay_end = pos if conn.cursor is None else len(events)  # cursor applies below this
        cursor = conn.cursor or 0
        may_wrap = True  # in loop mode: sent something since the last wrap, or woke up
        while True:
            if conn.fault is not None and conn.sent >= conn.fault.after:
                if not await self._apply_fault(conn):
                    return
            if pos == len(events):
                if self._loop and may_wrap:
                    pos, replay_end, may_wrap = 0, 0, False
                    await trio.lowlevel.checkpoint()
                else:
                    await self._wakeup.park()
                    pacer.reset()
                    may_wrap = True
                continue
            limit = BURST_FRAMES if conn.fault is None else min(BURST_FRAMES,
                                                                conn.fault.after - conn.sent)
            burst: list[BufferedEvent] = []
            ends: list[int] = []  # position after each burst event
            while pos < len(events) and len(burst) < limit:
                event = events[pos]
                pos += 1
                if not conn.filter.wants(event.did, event.collection):
                    continue
                if pos <= replay_end and event.time_us < cursor:
                    continue
                burst.append(event)
                ends.append(pos)
            if not burst:
                continue
            granted = await pacer.grant(len(burst))
            if granted < len(burst):
                burst, pos = burst[:granted], ends[granted - 1]
            await self._send_burst(conn, burst, compressor)
            conn.last_time_us = burst[-1].time_us
            may_wrap = True

    async def _apply_fault(self, conn: _Connection) -> bool:
        """Carry out the connection's armed fault; return whether to go on sending."""
        assert conn.fault is not None
        armed, conn.fault = conn.fault, None
        if armed.fault is Fault.ABRUPT_CLOSE:
            conn.abrupt = True
            return False
        if armed.fault is Fault.STALL:
            await trio.sleep_forever()
        if armed.fault is Fault.CLOSE:
            await conn.ws.aclose(1011, CLOSE_REASON)
            return False
        if armed.fault is Fault.GARBAGE:
            await self._send(conn, GARBAGE_FRAME)
        else:
            oversize = oversize_event(armed.oversize_bytes, conn.last_time_us)
            await self._send(conn, oversize.message(self._compressor if conn.compress else None))
        return True

    async def _send(self, conn: _Connection, payload: str | bytes) -> None:
        """Send one message and count it."""
        await conn.ws.send_message(payload)
        conn.sent += 1
        self.stats.frames_sent += 1

    async def _send_burst(self, conn: _Connection, burst: list[BufferedEvent],
                          compressor: zstandard.ZstdCompressor | None) -> None:
        """Send events as whole, unmasked server frames written with one `send_all`, and count them.

        trio-websocket sends one wsproto event per `send_message` (framing, a lock, one socket
        send, two scheduler passes: ~21 µs per frame here, bench/emulator_throughput.py), which
        made the emulator slower than the clients it measures. Complete data frames carry no
        protocol state, so they are framed here and written under the connection's own send lock
        (trio-websocket has no public call for this: `_stream` and `_stream_lock` are private).

        Raises:
            trio_websocket.ConnectionClosed: the connection is closing or the client went away.
        """
        ws = conn.ws
        if ws.closed is not None:
            raise trio_websocket.ConnectionClosed(ws.closed)
        parts: list[bytes] = []
        stamp = self._stamp_time
        if stamp and conn.started_wall_us is None:
            conn.started_wall_us = time.time_ns() // 1000
        for event in burst:
            if compressor is not None:
                payload, opcode = event.compressed(compressor), _OP_BINARY
            else:
                payload = event.stamped(self._due_us(conn)) if stamp else event.raw
                opcode = _OP_TEXT
            parts.append(_frame_header(opcode, len(payload)))
            parts.append(payload)
        async with ws._stream_lock:  # noqa: SLF001 - see the docstring
            try:
                await ws._stream.send_all(b"".join(parts))  # noqa: SLF001
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                raise trio_websocket.ConnectionClosed(
                    trio_websocket.CloseReason(1006, "client went away")) from None
        conn.sent += len(burst)
        self.stats.frames_sent += len(burst)


    def _due_us(self, conn: _Connection) -> int:
        """When the connection's next stamped event was due (see `stamp_time`)."""
        conn.stamped += 1
        if self._rate is None or conn.started_wall_us is None:
            return time.time_ns() // 1000
        return conn.started_wall_us + int((conn.stamped - 1) * 1_000_000 / self._rate)


def _frame_header(opcode: int, length: int) -> bytes:
    """The header of an unmasked, final server frame (RFC 6455 5.2)."""
    if length < 126:
        return bytes((0x80 | opcode, length))
    if length < 65536:
        return bytes((0x80 | opcode, 126)) + length.to_bytes(2, "big")
    return bytes((0x80 | opcode, 127)) + length.to_bytes(8, "big")


def main(argv: Sequence[str] | None = None) -> None:
    """Serve a JSONL file of Jetstream v1 events until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.emulator",
        description="Serve Jetstream v1 events from FILE on ws://HOST:PORT/subscribe. Prints "
                    "'READY <url>' once listening. Subscribers without a cursor get the live tail, "
                    "which is empty unless --loop: connect with cursor=0 to receive the file.")
    parser.add_argument("file", help="JSONL, one v1 event per line; may be whole-file zstd")
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=6008, help="port (default 6008; 0 = any)")
    parser.add_argument("--rate", type=float, help="events/s per connection (default: max)")
    parser.add_argument("--limit", type=int, metavar="N",
                        help="serve only the first N events of FILE (default: all)")
    parser.add_argument("--zstd-dictionary", metavar="PATH", type=Path,
                        help="zstd dictionary for compress=true (Jetstream v1's .zdict)")
    parser.add_argument("--loop", action="store_true",
                        help="replay the file endlessly; subscribers without cursor get it too")
    parser.add_argument("--stamp-time", action="store_true",
                        help="send each event with time_us = the wall clock when it is sent "
                             "(uncompressed only), as Jetstream stamps live events")
    args = parser.parse_args(argv)
    dictionary = args.zstd_dictionary.read_bytes() if args.zstd_dictionary else None
    # The buffer is millions of objects (the suite's overload: 6M events) and no garbage: with the
    # collector on, loading it re-walked it over and over (2M events: 8.1 s, 4.2 s without), and
    # serving walked it again at every full collection. Load without it, then freeze the buffer.
    gc.disable()
    emulator = JetstreamEmulator(iter_events(args.file, args.limit), rate=args.rate,
                                 zstd_dictionary=dictionary, loop=args.loop,
                                 stamp_time=args.stamp_time)
    gc.enable()
    tune_gc()
    try:
        trio.run(_serve_until_interrupted, emulator, args.host, args.port)
    except* KeyboardInterrupt:
        pass


async def _serve_until_interrupted(emulator: JetstreamEmulator, host: str, port: int) -> None:
    async with trio.open_nursery() as nursery:
        url = await nursery.start(emulator.serve, host, port)
        print(f"READY {url}", flush=True)


if __name__ == "__main__":
    main()
