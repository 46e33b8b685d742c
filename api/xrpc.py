"""XRPC methods: the `query` and `procedure` decorators, the per-request `Call`, the dispatcher.

Each NSID group module (community.py, feed.py, …) owns a `Queries` and declares its handlers:

    queries = Queries()

    @queries.query("social.coves.community.get", auth="optional")
    async def get_community(call: Call) -> Body: ...

`XrpcRouter` (built in app.py) compiles every declared query against its lexicon — parameter
rules come from the lexicon's `params` def, never from hand-written checks — and serves
`/xrpc/<nsid>`. Per request it: applies the client's rate limits, finds the method (unknown:
404 MethodNotImplemented; wrong HTTP method: 405), parses parameters (400 on bad input),
resolves the caller (auth none | optional | required), runs the handler and renders its body
(a `shared` query's anonymous answer may come from api/shared_answers.py instead, and says
`Cache-Control: public, max-age=<ANONYMOUS_CACHE_TTL_S>` with `Vary: Authorization`, so a CDN may
share it too; every other answer says `no-store`).
A handler parses nothing itself: it calls one view function and returns what it gives.

Procedures (`@queries.procedure(nsid, input="json" | "blob")`) are POST only. Their token is
single-use (a second presentation is 401) and their caller is resolved *before* the body is read (a required token missing is 401 whatever the body), then the
body is read within its cap (JSON: JSON_INPUT_MAX_BYTES, blobs: the app's MAX_CONTENT_LENGTH;
beyond: 413) and a JSON body is checked against the lexicon's `input` schema (400 naming the
field). The handler gets it as `call.input`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Final, Literal

import orjson
from quart import Blueprint, Response, current_app, request

from engine.config import Config
from engine.db import Database
from engine.lexicon import Lexicons, LexiconViolation

from .auth import ServiceAuthVerifier, bearer_token
from .cursors import CursorCodec
from .errors import (AuthenticationRequired, InvalidRequest, MethodNotAllowed, MethodNotImplemented,
                     PayloadTooLarge, RateLimitExceeded)
from .edge import RequestState, request_state
from .metrics import RATE_LIMITED
from .params import Format, ParamSpec
from .ratelimit import RateLimiter, client_address
from .shared_answers import SharedAnswers

__all__ = ["JSON_INPUT_MAX_BYTES", "OVERALL_BUCKET", "XRPC_PREFIX", "XRPC_ROUTE", "ApiContext",
           "AuthMode", "Body", "Call", "InputKind", "Queries", "RawJson", "XrpcRouter"]

AuthMode = Literal["none", "optional", "required"]
InputKind = Literal["none", "json", "blob"]
QUERY_METHODS: Final = ("GET", "HEAD")
ALL_METHODS: Final = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
OVERALL_BUCKET: Final = "overall"
PROCEDURE_METHODS: Final = ("POST",)
# A JSON procedure body: the largest record input (a post's 100 kB content, facets, embed) fits
# many times over; anything larger is not a real client.
JSON_INPUT_MAX_BYTES: Final = 256 * 1024
UNKNOWN_ROUTE: Final = "unknown"
# Answers for a viewer (their votes, their blocks) and answers not declared shared: no cache keeps
# them (a shared anonymous answer says how long it may be kept: _public).
_NOT_KEPT: Final = {"Cache-Control": "no-store"}
XRPC_PREFIX: Final = "/xrpc/"
XRPC_ROUTE: Final = XRPC_PREFIX + "<nsid>"


class RawJson(bytes):
    """A response body already serialised (usually by Postgres): sent as is."""


Body = Mapping[str, Any] | RawJson


@dataclasses.dataclass(frozen=True, slots=True)
class ApiContext:
    """What handlers share: settings, the read pool, and the request-independent services."""

    config: Config
    db: Database
    cursors: CursorCodec
    verifier: ServiceAuthVerifier
    limiter: RateLimiter
    shared: SharedAnswers  # anonymous answers of `shared` methods
    writes: Any = None  # api/writes.py Writes: the write path's services (None: reads only)


@dataclasses.dataclass(frozen=True, slots=True)
class Call:
    """One XRPC call as a handler sees it: checked parameters and the caller."""

    nsid: str
    params: dict[str, Any]
    viewer: str | None
    api: ApiContext
    input: Any = None  # a procedure's checked JSON object, or a blob's bytes
    content_type: str | None = None  # a blob procedure's Content-Type header

    @property
    def db(self) -> Database:
        return self.api.db

    def view_args(self) -> dict[str, Any]:
        """Parameters every view SQL takes: the caller and where blobs are served from."""
        config = self.api.config
        return {"viewer": self.viewer, "pds": config.pds_url, "cdn": config.image_cdn_url,
                "skip_host_check": config.skip_did_web_verification}


Handler = Callable[[Call], Awaitable[Body]]


@dataclasses.dataclass(frozen=True, slots=True)
class QueryDef:
    """A declared query, before it is compiled against the lexicons."""

    nsid: str
    handler: Handler
    auth: AuthMode
    aliases: tuple[str, ...]
    formats: Mapping[str, Format]
    bucket: str | None  # an extra, method-specific rate-limit bucket
    kind: str = "query"  # or "procedure"
    input: InputKind = "none"
    shared: bool = False  # anonymous answers may be shared (api/shared_answers.py)


class Queries:
    """The XRPC queries of one NSID group, collected by the `query` decorator."""

    def __init__(self) -> None:
        self.defs: list[QueryDef] = []

    def query(self, nsid: str, *, auth: AuthMode = "optional", aliases: Iterable[str] = (),
              formats: Mapping[str, Format] | None = None,
              bucket: str | None = None, shared: bool = False) -> Callable[[Handler], Handler]:
        """Declare `nsid` (and its `aliases`, e.g. Coves' drifted routes) as a GET query.

        Args:
            auth: "none" ignores tokens; "optional" verifies one when sent; "required" needs one.
            formats: parameter format overrides (e.g. community references that may be
                `!name@domain`, which the lexicon's at-identifier does not cover).
            bucket: name of a method-specific rate limit (see `XrpcRouter` limits).
            shared: an anonymous answer depends on the parameters alone, so callers without a
                token may share it for ANONYMOUS_CACHE_TTL_S (api/shared_answers.py).
        """

        def register(handler: Handler) -> Handler:
            self.defs.append(QueryDef(nsid, handler, auth, tuple(aliases), dict(formats or {}),
                                      bucket, shared=shared))
            return handler

        return register

    def procedure(self, nsid: str, *, auth: AuthMode = "required", input: InputKind = "json",
                  formats: Mapping[str, Format] | None = None,
                  bucket: str | None = None) -> Callable[[Handler], Handler]:
        """Declare `nsid` as a POST procedure taking a JSON object (checked against the
        lexicon's input schema) or a blob (raw bytes, `call.content_type`)."""

        def register(handler: Handler) -> Handler:
            self.defs.append(QueryDef(nsid, handler, auth, (), dict(formats or {}), bucket,
                                      "procedure", input))
            return handler

        return register


@dataclasses.dataclass(frozen=True, slots=True)
class Method:
    """A query compiled for serving."""

    nsid: str
    handler: Handler
    auth: AuthMode
    params: ParamSpec
    bucket: str | None
    kind: str = "query"
    input: InputKind = "none"
    check_input: Callable[[object], None] | None = None
    shared: bool = False


class XrpcRouter:
    """Every served query by NSID (aliases included), and the `/xrpc/<nsid>` endpoint.

    Args:
        groups: the `Queries` of each NSID group module.
        lexicons: where each method's parameter rules come from.
        limits: requests per minute per client for OVERALL_BUCKET and each method bucket.

    Raises:
        ValueError: a query without a lexicon `query` def, or an NSID declared twice.
    """

    def __init__(self, groups: Iterable[Queries], lexicons: Lexicons,
                 limits: Mapping[str, int]) -> None:
        self.methods: dict[str, Method] = {}
        self.primary: dict[str, Method] = {}  # without aliases (OpenAPI, docs)
        self._limits = dict(limits)
        for group in groups:
            for item in group.defs:
                defn = lexicons.def_for(item.nsid)
                if defn.get("type") != item.kind:
                    raise ValueError(f"{item.nsid} is not a {item.kind} in our lexicons")
                if item.bucket is not None and item.bucket not in self._limits:
                    raise ValueError(f"{item.nsid}: no limit configured for bucket {item.bucket}")
                check = lexicons.input_check(item.nsid) if item.input == "json" else None
                method = Method(item.nsid, item.handler, item.auth,
                                ParamSpec.from_lexicon(defn, item.formats), item.bucket,
                                item.kind, item.input, check, item.shared)
                self.primary[item.nsid] = method
                for name in (item.nsid, *item.aliases):
                    if name in self.methods:
                        raise ValueError(f"XRPC method {name} declared twice")
                    self.methods[name] = method

    def blueprint(self, api: ApiContext) -> Blueprint:
        """The blueprint serving `/xrpc/<nsid>` over `api`."""
        blueprint = Blueprint("xrpc", __name__)

        @blueprint.route(XRPC_ROUTE, methods=ALL_METHODS)
        async def dispatch(nsid: str) -> Response:
            return await self._dispatch(api, nsid)

        return blueprint

    async def _dispatch(self, api: ApiContext, nsid: str) -> Response:
        method = self.methods.get(nsid)
        state = request_state()
        state.route = method.nsid if method is not None else UNKNOWN_ROUTE
        client = client_address(request.remote_addr, request.headers.items(),
                                api.config.trusted_proxies or ())
        self._limit(state, api.limiter, OVERALL_BUCKET, client)
        if method is None:
            raise MethodNotImplemented(f"Method not implemented: {nsid}")
        allowed = QUERY_METHODS if method.kind == "query" else PROCEDURE_METHODS
        if request.method not in allowed:
            raise MethodNotAllowed(f"{nsid} is a {method.kind}: use {allowed[0]}",
                                   headers={"Allow": ", ".join(allowed)})
        if method.bucket is not None:
            self._limit(state, api.limiter, method.bucket, client)
        params = method.params.parse(request.args)
        viewer = await _viewer(api.verifier, method, nsid)
        data = await _read_input(method)
        call = Call(method.nsid, params, viewer, api, data, request.headers.get("Content-Type"))
        ttl_s = api.config.anonymous_cache_ttl_s
        if method.shared and viewer is None:
            # ParamSpec.parse lists every declared parameter in one order: equal calls, equal keys.
            key = method.nsid.encode() + b"?" + orjson.dumps(params)
            payload = await api.shared.answer(key, lambda: _render(method.handler, call))
            caching = _public(ttl_s) if ttl_s >= 1 else _NOT_KEPT
        else:
            payload = await _render(method.handler, call)
            caching = _NOT_KEPT
        if method.kind == "procedure":
            api.shared.clear()  # its author reads it next, maybe logged out
        return Response(payload, content_type="application/json", headers=caching)

    def _limit(self, state: RequestState, limiter: RateLimiter, bucket: str, client: str) -> None:
        decision = limiter.hit(bucket, client, self._limits[bucket])
        state.count_against(decision)  # the edge reports the tightest in RateLimit-* headers
        if not decision.allowed:
            RATE_LIMITED.labels(bucket).inc()
            raise RateLimitExceeded(f"Rate limit exceeded: {decision.limit} requests per minute",
                                    headers=decision.headers())


@functools.cache  # one TTL per process: built once
def _public(ttl_s: float) -> dict[str, str]:
    """A shared anonymous answer: any cache (a CDN in front of several API processes too) may
    keep it for the TTL, as we do — for callers without a token only."""
    return {"Cache-Control": f"public, max-age={int(ttl_s)}", "Vary": "Authorization"}


async def _render(handler: Handler, call: Call) -> bytes:
    body = await handler(call)
    return body if isinstance(body, RawJson) else orjson.dumps(body)


async def _viewer(verifier: ServiceAuthVerifier, method: Method, called: str) -> str | None:
    if method.auth == "none":
        return None
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        if method.auth == "required":
            raise AuthenticationRequired(f"{method.nsid} requires authentication")
        return None
    # A write token is single-use (api/auth.py): a replayed write would repeat its effect.
    return await verifier.verify(token, {method.nsid, called},
                                 single_use=method.kind == "procedure")


async def _read_input(method: Method) -> Any:
    """A procedure's body: bytes for a blob, a lexicon-checked object for JSON, else None."""
    if method.input == "none":
        return None
    cap = JSON_INPUT_MAX_BYTES if method.input == "json" else current_app.config["MAX_CONTENT_LENGTH"]
    declared = request.content_length
    if declared is not None and declared > cap:
        raise PayloadTooLarge(f"Request body larger than {cap} bytes")
    raw = await request.get_data(cache=False, as_text=False)
    if method.input == "blob":
        return raw
    if len(raw) > JSON_INPUT_MAX_BYTES:
        raise PayloadTooLarge(f"JSON input larger than {JSON_INPUT_MAX_BYTES} bytes")
    mime = (request.mimetype or "").lower()
    if mime != "application/json":
        raise InvalidRequest(f"{method.nsid} takes Content-Type application/json, not {mime or 'none'}")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest("Request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidRequest("Request body must be a JSON object")
    if method.check_input is not None:
        try:
            method.check_input(value)
        except LexiconViolation as exc:
            raise InvalidRequest(f"Invalid input: {exc}") from None
    return value

