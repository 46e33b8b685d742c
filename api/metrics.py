"""API metrics and the /metrics endpoint. Names: `coves_api_` prefix, base units, `_total`.

Requests are labelled by route *template* — the NSID for XRPC methods we serve, `unknown` for
other NSIDs, the URL rule (`/.well-known/did.json`) for other routes, `unmatched` otherwise —
never by the raw path, so a scanner cannot grow the label set.
"""

from __future__ import annotations

from typing import Any, Final

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from quart import Blueprint, Response

__all__ = ["AUTH_FAILURES", "AUTH_VERIFICATIONS", "RATE_LIMITED", "REQUESTS", "REQUEST_SECONDS", "UNHANDLED_ERRORS",
           "blueprint", "observe_request"]

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
# The labelled children by (route, method, status): `labels()` costs more than the count itself.
# Bounded as the label sets are (routes are templates, methods a fixed set, statuses few).
_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
async def metrics() -> Response:
    """Prometheus exposition of every metric of this process (engine ones too in `coves run`)."""
    return Response(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request and its duration (called by api/edge.py)."""
    key = (route, method if method in _METHODS else "OTHER", status)
    children = _children.get(key)
    if children is None:
        labels = (key[0], key[1], str(status))
        children = _children[key] = (REQUESTS.labels(*labels), REQUEST_SECONDS.labels(*labels))
    children[0].inc()
    children[1].observe(seconds)
