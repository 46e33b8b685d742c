"""The API application: every blueprint, hook and error handler, assembled in one place.

    create_app(config, db, resolver, writes=…) -> QuartTrio
        /xrpc/<nsid>           the XRPC queries of community, feed, comment, post, actor,
                               aggregator (api/xrpc.py dispatches; one module per NSID group),
                               and the procedures: community_write, post_write, blob (through
                               the PDS) and client_writes (answered WriteToYourPDS)
        /xrpc/_health          database and ingestion health (api/health.py)
        /.well-known/did.json  this AppView's did:web document (api/wellknown.py)
        /metrics               Prometheus (api/metrics.py)
        /openapi.json          the OpenAPI document generated from the lexicons (api/openapi.py)

Every error leaves as the XRPC envelope `{"error", "message"}` (api/errors.py): our own
XrpcErrors, HTTP errors from routing (404, 405, 413), oversized requests (413: api/limits.py;
431: api/edge.py), an unreachable database (503), and — only for bugs — 500. Every response,
errors included, gets its request id, CORS and rate-limit headers and is counted in the metrics
at the ASGI edge around the app (api/edge.py).
"""

from __future__ import annotations

import logging
from typing import Final

from quart import Response
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from engine.config import Config
from engine.db import Database
from engine.errors import DatabaseError, DatabaseUnavailable
from engine.lexicon import Lexicons, load_default

from . import (actor, aggregator, blob, client_writes, comment, community, community_write, feed, health,
               metrics, openapi, post, post_write, wellknown)
from .auth import DidResolver, ServiceAuthVerifier
from .cursors import CursorCodec
from .edge import Edge
from .errors import (InvalidRequest, MethodNotAllowed, NotFound, PayloadTooLarge, ServiceUnavailable,
                     XrpcError, error_response)
from .limits import CLOSE, refuse_oversized_request
from .ratelimit import RateLimiter
from .shared_answers import SharedAnswers
from .writes import Writes
from .xrpc import OVERALL_BUCKET, XRPC_PREFIX, XRPC_ROUTE, ApiContext, XrpcRouter

__all__ = ["build_router", "create_app"]

LOGGER = logging.getLogger(__name__)
# Queries carry no body; the largest body is a blob upload (api/blob.py). JSON procedure inputs
# have their own, smaller cap (api/xrpc.py JSON_INPUT_MAX_BYTES).
MAX_BODY_BYTES: Final = blob.BLOB_MAX_BYTES
# Postgres errors a value a client chose can still cause after parameter checks (text that
# does not parse as the type it is compared with, a number or date out of range, a search query
# beyond Postgres' limits): the client's fault, answered 400. Any other failure is our bug: 500.
_CLIENT_SQLSTATES: Final = frozenset({"22P02", "22003", "22008", "54000"})


def build_router(config: Config, lexicons: Lexicons | None = None) -> XrpcRouter:
    """Every XRPC query we serve, compiled against the lexicons, with the rate limits."""
    return XrpcRouter(
        (community.queries, feed.queries, comment.queries, post.queries, actor.queries,
         aggregator.queries, community_write.procedures, post_write.procedures, blob.procedures,
         client_writes.procedures),
        lexicons or load_default(),
        limits={OVERALL_BUCKET: config.rate_limit_per_minute,
                comment.COMMENTS_BUCKET: config.rate_limit_comments_per_minute})


def create_app(config: Config, db: Database, resolver: DidResolver, *,
               limiter: RateLimiter | None = None, writes: Writes | None = None,
               shared: SharedAnswers | None = None) -> QuartTrio:
    """The API over `db`, verifying callers' tokens with DID documents from `resolver`.

    Args:
        limiter: the rate-limit state (tests pass one with a fake clock).
        shared: the anonymous answers kept (tests pass one with a fake clock); default:
            kept for ANONYMOUS_CACHE_TTL_S.
        writes: the write path (api/writes.py open_writes); without it the write procedures
            answer 404 MethodNotImplemented.
    """
    app = QuartTrio(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    lexicons = load_default()
    api = ApiContext(
        config=config, db=db, cursors=CursorCodec(config.cursor_secret),
        verifier=ServiceAuthVerifier(resolver, audience=config.service_did,
                                     skip_verify=config.auth_skip_verify),
        limiter=limiter or RateLimiter(),
        shared=shared or SharedAnswers(config.anonymous_cache_ttl_s), writes=writes)
    router = build_router(config, lexicons)

    app.register_blueprint(router.blueprint(api))
    app.register_blueprint(health.blueprint(api))
    app.register_blueprint(wellknown.blueprint(config))
    app.register_blueprint(metrics.blueprint)
    app.register_blueprint(openapi.blueprint(router, lexicons))

    app.before_request(refuse_oversized_request)
    # Request ids, CORS, rate-limit headers, metrics and the header-size limit: at the ASGI edge,
    # for every response (errors too), without Quart hooks (api/edge.py).
    # (Quart documents wrapping asgi_app for middleware; its annotation names only its own type.)
    app.asgi_app = Edge(app.asgi_app,  # type: ignore[method-assign,assignment]
                        routes=[rule.rule for rule in app.url_map.iter_rules() if "<" not in rule.rule],
                        prefixed={XRPC_PREFIX: XRPC_ROUTE})

    app.register_error_handler(XrpcError, _xrpc_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(DatabaseError, _database_error)
    app.register_error_handler(Exception, _unhandled_error)
    return app


async def _xrpc_error(error: XrpcError) -> Response:
    return error_response(error)


async def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    if status == 404:
        return error_response(NotFound("Not found"))
    if status == 405:
        return error_response(MethodNotAllowed(error.description or "Method not allowed"))
    if status == 413:
        return error_response(PayloadTooLarge(f"Request body larger than {MAX_BODY_BYTES} bytes",
                                              headers=CLOSE))
    if status < 500:
        return error_response(InvalidRequest(error.description or "Bad request"))
    return await _unhandled_error(error)


async def _database_error(error: DatabaseError) -> Response:
    if isinstance(error, DatabaseUnavailable):
        LOGGER.warning("database unavailable", extra={"error": str(error)})
        return error_response(ServiceUnavailable("Database unavailable, retry later"))
    sqlstate = getattr(error, "sqlstate", "") or ""
    if sqlstate in _CLIENT_SQLSTATES:
        LOGGER.info("client value refused by Postgres: %s", error, extra={"sqlstate": sqlstate})
        return error_response(InvalidRequest("A parameter value is out of range or malformed"))
    return await _unhandled_error(error)


async def _unhandled_error(error: BaseException) -> Response:
    # The last boundary: a bug. Counted and logged with its traceback; the client learns nothing
    # of the internals.
    metrics.UNHANDLED_ERRORS.inc()
    LOGGER.error("unhandled error", exc_info=error)
    return error_response(XrpcError("Internal server error"))
