"""Both WebSocket transports against a scripted server: fragments, pings, close codes, handshake
refusals and the message size limit come out the same way."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio
from websockets.frames import Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

from engine.errors import SourceClosed, SourceRejected
from engine.sources.reconnect import failure_of
from engine.sources.websocket import TRANSPORTS, open_message_stream

Script = Callable[[trio.SocketStream, ServerProtocol], Awaitable[None]]


async def flush(stream: trio.SocketStream, protocol: ServerProtocol) -> None:
    for data in protocol.data_to_send():
        if data:
            await stream.send_all(data)


async def accept(stream: trio.SocketStream, protocol: ServerProtocol, status: int = 101) -> None:
    """Read the client's handshake and answer it (101, or refuse with `status`)."""
    while not (events := protocol.events_received()):
        protocol.receive_data(await stream.receive_some(65536))
    request = events[0]
    response = protocol.accept(request) if status == 101 else protocol.reject(status, "go away\n")
    protocol.send_response(response)
    await flush(stream, protocol)


async def serve(nursery: trio.Nursery, script: Script) -> str:
    """Serve `script` to every connection; return the ws:// URL."""

    async def handler(stream: trio.SocketStream) -> None:
        async with stream:
            await script(stream, ServerProtocol(max_size=2**20))

    listeners = await nursery.start(trio.serve_tcp, handler, 0)
    host, port = listeners[0].socket.getsockname()[:2]
    return f"ws://{host}:{port}/subscribe"


async def read_until_closed(transport: str, url: str, max_bytes: int = 2**20
                            ) -> tuple[list[str | bytes], SourceClosed]:
    received: list[str | bytes] = []
    with trio.fail_after(10):
        async with open_message_stream(transport, url, max_message_bytes=max_bytes,
                                       idle_timeout_s=10) as stream:
            with pytest.raises(SourceClosed) as closed:
                while True:
                    received += await stream.receive()
    return received, closed.value


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_fragments_are_reassembled_and_the_close_code_comes_through(
        nursery: trio.Nursery, transport: str) -> None:
    async def script(stream: trio.SocketStream, protocol: ServerProtocol) -> None:
        await accept(stream, protocol)
        protocol.send_text(b'{"a":', fin=False)
        protocol.send_continuation(b' "\xc3\xa9"}', fin=True)
        protocol.send_binary(b"\x00\x01", fin=False)
        protocol.send_continuation(b"\x02", fin=True)
        protocol.send_text("solo".encode())
        protocol.send_close(1011, "bye")
        await flush(stream, protocol)
        await stream.receive_some(65536)  # the client's close echo

    url = await serve(nursery, script)
    received, closed = await read_until_closed(transport, url)
    assert received == ['{"a": "é"}', b"\x00\x01\x02", "solo"]
    assert (closed.code, closed.reason) == (1011, "bye")
    assert failure_of(closed)[0] == "closed"  # type: ignore[index]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_ping_is_answered_with_a_pong(nursery: trio.Nursery, transport: str) -> None:
    pongs: list[bytes] = []

    async def script(stream: trio.SocketStream, protocol: ServerProtocol) -> None:
        await accept(stream, protocol)
        protocol.send_ping(b"are you there")
        protocol.send_text(b"after the ping")
        await flush(stream, protocol)
        while not pongs:
            protocol.receive_data(await stream.receive_some(65536))
            pongs.extend(f.data for f in protocol.events_received() if f.opcode is Opcode.PONG)
        protocol.send_close(1000, "")
        await flush(stream, protocol)

    url = await serve(nursery, script)
    received, closed = await read_until_closed(transport, url)
    assert received == ["after the ping"] and pongs == [b"are you there"]
    assert closed.code == 1000


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_tcp_closed_without_a_close_frame_is_code_1006(nursery: trio.Nursery,
                                                             transport: str) -> None:
    async def script(stream: trio.SocketStream, protocol: ServerProtocol) -> None:
        await accept(stream, protocol)
        protocol.send_text(b"last words")
        await flush(stream, protocol)

    url = await serve(nursery, script)
    received, closed = await read_until_closed(transport, url)
    assert received == ["last words"] and closed.code == 1006


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_message_over_the_limit_closes_with_1009_after_the_earlier_ones(
        nursery: trio.Nursery, transport: str) -> None:
    async def script(stream: trio.SocketStream, protocol: ServerProtocol) -> None:
        await accept(stream, protocol)
        protocol.send_text(b"small")
        protocol.send_binary(b"x" * 5000)
        await flush(stream, protocol)
        with trio.move_on_after(5):
            while protocol.state is State.OPEN:
                protocol.receive_data(await stream.receive_some(65536) or b"")
                protocol.events_received()

    url = await serve(nursery, script)
    received, closed = await read_until_closed(transport, url, max_bytes=4096)
    assert received == ["small"] and closed.code == 1009


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_refused_handshake_names_the_status(nursery: trio.Nursery, transport: str) -> None:
    async def script(stream: trio.SocketStream, protocol: ServerProtocol) -> None:
        await accept(stream, protocol, status=400)

    url = await serve(nursery, script)
    with trio.fail_after(10), pytest.raises(BaseException) as raised:
        async with open_message_stream(transport, url, max_message_bytes=2**20, idle_timeout_s=10):
            pass
    assert failure_of(raised.value)[:2] == ("rejected", "HTTP 400")  # type: ignore[index]


async def test_an_unknown_transport_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown WebSocket transport"):
        async with open_message_stream("asyncio", "ws://127.0.0.1:1/", max_message_bytes=1,
                                       idle_timeout_s=1):
            pass
