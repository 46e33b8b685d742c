"""A tiny HTTP/1.1 server on Trio (h11), plain or TLS, for the identity tests.

Each route is a path → Reply (or a function of the request returning one). It records every
request (path, Host header, TLS SNI) so tests can assert what the fetcher sent and where.
"""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Callable
from typing import Any

import h11
import orjson
import trio

__all__ = ["HANG", "Reply", "Seen", "TestServer", "json_reply", "redirect"]


@dataclasses.dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)
    # False: stream the body chunked, without Content-Length (tests the streaming cap).
    content_length: bool = True
    hang: bool = False  # accept the request, never answer
    gate: trio.Event | None = None  # answer only once this is set


HANG = Reply(hang=True)


def json_reply(value: Any, status: int = 200) -> Reply:
    return Reply(status=status, body=orjson.dumps(value))


def redirect(location: str, status: int = 302) -> Reply:
    return Reply(status=status, headers=(("location", location),))


@dataclasses.dataclass(frozen=True)
class Seen:
    path: str
    host: str
    at: float  # trio.current_time() when it arrived


class TestServer:
    """Serve `routes` on 127.0.0.1 (TLS when `ssl_context` is given); unknown paths get 404."""

    __test__ = False  # not a pytest class

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Reply | Callable[[Seen], Reply]] = {}
        self.seen: list[Seen] = []
        self._request_seen = trio.lowlevel.ParkingLot()
        self.connections = 0
        self.port = 0
        self.sni: list[str | None] = []  # the TLS server name each handshake asked for
        self._ssl = ssl_context
        if ssl_context is not None:
            ssl_context.sni_callback = lambda _obj, name, _ctx: self.sni.append(name)

    async def wait_for_requests(self, count: int) -> None:
        """Return once `count` requests have arrived in total."""
        while len(self.seen) < count:
            await self._request_seen.park()

    def paths(self) -> list[str]:
        return [seen.path for seen in self.seen]

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        if self._ssl is not None:
            listeners = [trio.SSLListener(listener, self._ssl, https_compatible=True)
                         for listener in listeners]
        await trio.serve_listeners(self._handle, listeners, task_status=task_status)

    async def _handle(self, stream: trio.abc.Stream) -> None:
        self.connections += 1
        try:
            if isinstance(stream, trio.SSLStream):
                await stream.do_handshake()
            await self._exchange(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
            pass
        finally:
            with trio.move_on_after(1) as scope:
                scope.shield = True
                try:
                    await stream.aclose()
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass

    async def _exchange(self, stream: trio.abc.Stream) -> None:
        connection = h11.Connection(h11.SERVER)
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                if not data:
                    return
                connection.receive_data(data)
                continue
            if isinstance(event, h11.Request):
                break
            if isinstance(event, h11.ConnectionClosed):
                return
        headers = {k.decode().lower(): v.decode() for k, v in event.headers}
        seen = Seen(event.target.decode(), headers.get("host", ""), trio.current_time())
        self.seen.append(seen)
        self._request_seen.unpark_all()
        route = self.routes.get(seen.path.split("?")[0], Reply(status=404, body=b"not found"))
        reply = route(seen) if callable(route) else route
        if reply.hang:
            await trio.sleep_forever()
        if reply.gate is not None:
            await reply.gate.wait()
        out = [(k, v) for k, v in reply.headers]
        if reply.content_length:
            out.append(("content-length", str(len(reply.body))))
        else:
            out.append(("transfer-encoding", "chunked"))
        out.append(("connection", "close"))
        await stream.send_all(connection.send(h11.Response(status_code=reply.status, headers=out)))
        step = 16384
        for start in range(0, len(reply.body), step):
            await stream.send_all(connection.send(h11.Data(data=reply.body[start:start + step])))
        await stream.send_all(connection.send(h11.EndOfMessage()))
