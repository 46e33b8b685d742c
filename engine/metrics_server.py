"""A minimal Prometheus endpoint on Trio: GET /metrics on METRICS_HOST:METRICS_PORT.

Used by `coves engine`; `coves run` also serves /metrics through the API. Kept tiny on purpose:
one request per connection, nothing but the exposition format.
"""

from __future__ import annotations

import logging
from typing import Final

import trio
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

__all__ = ["serve_metrics"]

LOGGER = logging.getLogger(__name__)
REQUEST_TIMEOUT_S: Final = 5.0
MAX_REQUEST_BYTES: Final = 8192


async def _handle(stream: trio.SocketStream) -> None:
    async with stream:
        with trio.move_on_after(REQUEST_TIMEOUT_S):
            request = b""
            while b"\r\n\r\n" not in request and len(request) < MAX_REQUEST_BYTES:
                chunk = await stream.receive_some(4096)
                if not chunk:
                    return
                request += chunk
            line = request.split(b"\r\n", 1)[0].split()
            if len(line) >= 2 and line[0] == b"GET" and line[1].split(b"?")[0] == b"/metrics":
                body, status, ctype = generate_latest(REGISTRY), b"200 OK", CONTENT_TYPE_LATEST.encode()
            else:
                body, status, ctype = b"not found\n", b"404 Not Found", b"text/plain"
            head = (b"HTTP/1.1 " + status + b"\r\nContent-Type: " + ctype +
                    b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n")
            try:
                await stream.send_all(head + body)
            except trio.BrokenResourceError:
                return


async def serve_metrics(host: str, port: int, *,
                        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve /metrics until cancelled; `task_status.started(port)` once listening."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]
    LOGGER.info("metrics listening", extra={"url": f"http://{host}:{bound}/metrics"})
    task_status.started(bound)
    await trio.serve_listeners(_handle, listeners)
