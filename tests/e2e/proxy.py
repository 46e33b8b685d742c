"""A TCP proxy on 127.0.0.1 that a test can cut and restore, to take a dependency away (a PDS,
its firehose) without stopping it — as asyncpg's test_adversity.py does for Postgres."""

from __future__ import annotations

import trio

__all__ = ["TcpProxy"]


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `host`:`target_port`.

    `cut()` drops every open connection and refuses new ones (the port is closed);
    `restore()` listens again on the same port.
    """

    def __init__(self, host: str, target_port: int) -> None:
        self.host = host
        self.target_port = target_port
        self.port = 0
        self.connections = 0  # accepted so far
        self._nursery: trio.Nursery | None = None
        self._accepting: trio.CancelScope | None = None
        self._open: set[trio.CancelScope] = set()

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; `task_status.started(port)` once listening."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await self.restore()
            task_status.started(self.port)
            await trio.sleep_forever()

    async def restore(self) -> None:
        assert self._nursery is not None
        listeners = await trio.open_tcp_listeners(self.port, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        self._accepting = trio.CancelScope()
        self._nursery.start_soon(self._accept, listeners[0], self._accepting)

    def cut(self) -> None:
        assert self._accepting is not None
        self._accepting.cancel()
        for scope in list(self._open):
            scope.cancel()

    async def _accept(self, listener: trio.SocketListener, scope: trio.CancelScope) -> None:
        assert self._nursery is not None
        with scope:
            async with listener:
                while True:
                    stream = await listener.accept()
                    self.connections += 1
                    self._nursery.start_soon(self._pipe, stream)

    async def _pipe(self, client: trio.SocketStream) -> None:
        scope = trio.CancelScope()
        self._open.add(scope)
        try:
            with scope:
                async with client:
                    try:
                        upstream = await trio.open_tcp_stream(self.host, self.target_port)
                    except OSError:
                        return
                    async with upstream, trio.open_nursery() as nursery:
                        nursery.start_soon(_copy, client, upstream, nursery.cancel_scope)
                        nursery.start_soon(_copy, upstream, client, nursery.cancel_scope)
        finally:
            self._open.discard(scope)


async def _copy(source: trio.SocketStream, sink: trio.SocketStream, done: trio.CancelScope) -> None:
    try:
        while data := await source.receive_some(65536):
            await sink.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    done.cancel()  # one side closed: close both
