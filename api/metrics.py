"""API metrics and the /metrics endpoint. Names: `coves_api_` prefix, base units, `_total`.

Requests are labelled by route *template* — the NSID for XRPC methods we serve, `unknown` for
other NSIDs, the URL rule (`/.well-known/did.json`) for other routes, `unmatched` otherwise —
never by the raw path, so a scanner cannot grow the label set.
"""

from __future__ import annotations

import time
from typing import Final

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from quart import Blueprint, Response, g, request

__all__ = ["AUTH_FAILURES", "AUTH_VERIFICATIONS", "RATE_LIMITED", "REQUESTS", "REQUEST_SECONDS", "UNHANDLED_ERRORS",
           "blueprint", "observe_request", "set_route", "start_request"]

REQUESTS: Final = Counter(
    "coves_api_requests_total", "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"])
REQUEST_SECONDS: Final = Histogram(
    "coves_api_request_duration_seconds",
    "Time to answer a request, by route template, method and status.",
    ["route", "method", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
AUTH_FAILURES: Final = Counter(
    "coves_api_auth_failures_total", "Service-auth tokens refused, by why.", ["reason"])
AUTH_VERIFICATIONS: Final = Counter(
    "coves_api_auth_verifications_total",
    "Service-auth token checks by outcome: ok, or the reason it was refused.", ["outcome"])
RATE_LIMITED: Final = Counter(
    "coves_api_rate_limited_total", "Requests refused with 429, by limit.", ["bucket"])
UNHANDLED_ERRORS: Final = Counter(
    "coves_api_unhandled_errors_total", "Requests that failed with an unexpected error (500).")

_METHODS: Final = frozenset({"GET", "HEAD", "POST", "OPTIONS", "PUT", "DELETE", "PATCH"})
UNMATCHED: Final = "unmatched"

blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
async def metrics() -> Response:
    """Prometheus exposition of every metric of this process (engine ones too in `coves run`)."""
    return Response(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)


async def start_request() -> None:
    """Note when the request started (before_request hook; async: Quart would run a sync hook
    in a worker thread)."""
    g.started = time.perf_counter()


def set_route(route: str) -> None:
    """Name the route template this request is counted under (the XRPC dispatcher's NSID)."""
    g.route = route


def observe_request(response: Response) -> Response:
    """Count the answered request and its duration (after_request hook)."""
    route = g.get("route")
    if route is None:
        rule = request.url_rule
        route = rule.rule if rule is not None else UNMATCHED
    method = request.method if request.method in _METHODS else "OTHER"
    status = str(response.status_code)
    REQUESTS.labels(route, method, status).inc()
    started = g.get("started")
    if started is not None:
        REQUEST_SECONDS.labels(route, method, status).observe(time.perf_counter() - started)
    return response
