"""The API's edge: what every HTTP request and response gets, applied once at the ASGI layer.

    app.asgi_app = Edge(app.asgi_app, routes=…)      (api/app.py)

Per request, on the raw ASGI scope and messages — a few µs, where the same work through Quart's
hooks and werkzeug's header objects cost ~100 µs of a ~220 µs shared answer (bench/RESULTS.md):

* request id: the client's X-Request-Id when sane, else a fresh one (api/request_id.py); log
  lines written while the request is served carry it (engine/logs.py REQUEST_ID);
* header size: fields adding up to more than MAX_HEADER_BYTES are answered 431 with the XRPC
  envelope here, before the app runs (api/limits.py);
* every response gets CORS headers, X-Request-Id, and the RateLimit-* headers of the tightest
  budget the request counted against — unless the app set RateLimit-* itself (a refusal
  reports the budget that refused);
* metrics: each answered request is counted under its route template (api/metrics.py).

The app reaches the request's `RequestState` with `request_state()`: the XRPC dispatcher names
the route there and records its rate-limit decisions.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any, Final, cast

from quart import request

from engine.logs import REQUEST_ID

from . import metrics
from .errors import RequestHeaderFieldsTooLarge, envelope
from .limits import CLOSE, MAX_HEADER_BYTES
from .ratelimit import Decision
from .request_id import HEADER as REQUEST_ID_HEADER
from .request_id import request_id_for

__all__ = ["CORS_HEADERS", "Edge", "RequestState", "request_state", "state_of"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[..., Awaitable[None]]  # Quart's asgi_app (its own, narrower types)

CORS_HEADERS: Final = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, atproto-proxy, atproto-accept-labelers",
    "Access-Control-Allow-Methods": "GET, HEAD, POST, OPTIONS",
    "Access-Control-Expose-Headers": "RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Retry-After",
}


def _raw(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    """Headers as ASGI sends them: lower-case names, bytes."""
    return [(name.lower().encode(), value.encode()) for name, value in headers.items()]


_CORS_RAW: Final = _raw(CORS_HEADERS)
_REQUEST_ID_RAW: Final = REQUEST_ID_HEADER.lower().encode()
_RATE_LIMIT_RAW: Final = b"ratelimit-limit"
_STATE_KEY: Final = "coves.request"
UNMATCHED: Final = "unmatched"


@dataclasses.dataclass(slots=True)
class RequestState:
    """What the app tells the edge about one request."""

    request_id: str
    route: str | None = None  # the route template it is counted under; None: from the path
    rate_limit: Decision | None = None  # the tightest budget it counted against

    def count_against(self, decision: Decision) -> None:
        """Note a budget the request counted against; the tightest one is reported."""
        if self.rate_limit is None or decision.remaining <= self.rate_limit.remaining:
            self.rate_limit = decision


def state_of(scope: Scope) -> RequestState:
    """The state of the request with this ASGI scope (served through the Edge)."""
    state: RequestState = scope[_STATE_KEY]
    return state


def request_state() -> RequestState:
    """The current request's state (inside a request served through the Edge)."""
    return state_of(cast(dict[str, Any], request.scope))


class Edge:
    """ASGI middleware around the Quart app (see the module docstring).

    Args:
        app: the app's own ASGI callable.
        routes: the app's URL rules without variables (`/metrics`, …): a request the app does
            not name a route for is counted under its path when it is one of them, under
            `prefixed` when its path starts with a prefix there, else as UNMATCHED.
        prefixed: {path prefix: route template} for rules with a variable (`/xrpc/<nsid>`).
    """

    def __init__(self, app: AsgiApp, *, routes: Iterable[str] = (),
                 prefixed: dict[str, str] | None = None) -> None:
        self._app = app
        self._routes = frozenset(routes)
        self._prefixed = dict(prefixed or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        offered, size = _read_headers(scope["headers"])
        state = RequestState(request_id_for(offered))
        scope[_STATE_KEY] = state
        status = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers") or ())
                headers += _CORS_RAW
                headers.append((_REQUEST_ID_RAW, state.request_id.encode()))
                if state.rate_limit is not None and \
                        not any(name == _RATE_LIMIT_RAW for name, _ in headers):
                    headers += _raw(state.rate_limit.headers())
                message = {**message, "headers": headers}
            await send(message)

        token = REQUEST_ID.set(state.request_id)  # the app's tasks are spawned within: they see it
        try:
            if size > MAX_HEADER_BYTES:
                await _refuse_headers(send_with_headers, size)
            else:
                await self._app(scope, receive, send_with_headers)
        finally:
            REQUEST_ID.reset(token)
            if status:
                metrics.observe_request(self._route(state, scope["path"]), scope["method"],
                                        status, time.perf_counter() - started)

    def _route(self, state: RequestState, path: str) -> str:
        if state.route is not None:
            return state.route
        if path in self._routes:
            return path
        for prefix, route in self._prefixed.items():
            if path.startswith(prefix):
                return route
        return UNMATCHED


def _read_headers(headers: Iterable[tuple[bytes, bytes]]) -> tuple[bytes | None, int]:
    """The client's request id (if any) and the header fields' size, in one pass."""
    offered = None
    size = 0
    for name, value in headers:
        size += len(name) + len(value) + 4  # "name: value\r\n", as Hypercorn received it
        if name == _REQUEST_ID_RAW:
            offered = value
    return offered, size


async def _refuse_headers(send: Send, size: int) -> None:
    """431 with the XRPC envelope; the connection closes (the rest of the request is unread)."""
    error = RequestHeaderFieldsTooLarge(
        f"Request header fields total {size} bytes; at most {MAX_HEADER_BYTES} are accepted",
        headers=CLOSE)
    body = envelope(error)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += _raw(error.headers)
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
