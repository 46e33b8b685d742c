"""Errors of the XRPC API and their one renderer: `{"error": "Name", "message": "…"}`.

    XrpcError                    (status, error, message): every error a client sees
    ├── InvalidRequest           400  a parameter is missing, malformed or out of range
    │   └── InvalidCursor        400  a cursor that we did not sign, or for another listing
    ├── AuthenticationRequired   401  the method needs a service-auth token and none came
    ├── InvalidToken             401  the token is malformed, unsigned, forged or not for us
    │   └── ExpiredToken         401  the token was valid once, or is not valid yet
    ├── Forbidden                403  authenticated, but not allowed
    ├── NotFound                 404  the subject (post, community, actor…) does not exist for you
    ├── MethodNotImplemented     404  no such XRPC method here
    ├── MethodNotAllowed         405  the method exists, but not for this HTTP method
    ├── Conflict                 409  the write lost a race (NameTaken, InvalidSwap)
    ├── PayloadTooLarge          413  the request body is too big
    ├── RequestHeaderFieldsTooLarge 431  the request's header fields are too big
    ├── RateLimitExceeded        429  the client used its budget; carries the rate-limit headers
    ├── UpstreamFailure          502  a service we depend on failed (the PDS answered 5xx)
    └── ServiceUnavailable       503  Postgres is unreachable or the service is shutting down

Client faults are 4xx and carry what was wrong; 5xx never describe internals.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from quart import Response

__all__ = [
    "AuthenticationRequired", "ExpiredToken", "Forbidden", "InvalidCursor", "InvalidRequest",
    "Conflict", "InvalidToken", "MethodNotAllowed", "MethodNotImplemented", "NotFound",
    "PayloadTooLarge", "RateLimitExceeded", "RequestHeaderFieldsTooLarge", "ServiceUnavailable",
    "UpstreamFailure", "XrpcError", "envelope", "error_response",
]


class XrpcError(Exception):
    """An error answered to the client with `status` and the XRPC error envelope.

    Args:
        message: human-readable detail (shown to the client).
        error: the envelope's `error` name; defaults to the class's ERROR.
        headers: extra response headers (e.g. Retry-After).
    """

    STATUS: int = 500
    ERROR: str = "InternalServerError"

    def __init__(self, message: str, *, error: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.error = error or self.ERROR
        self.headers = dict(headers or {})

    @property
    def status(self) -> int:
        return self.STATUS


class InvalidRequest(XrpcError):
    """A parameter is missing, malformed or out of range (named in the message)."""

    STATUS, ERROR = 400, "InvalidRequest"


class InvalidCursor(InvalidRequest):
    """The cursor was not issued by us, was altered, or belongs to another listing or sort."""

    ERROR = "InvalidCursor"


class AuthenticationRequired(XrpcError):
    """The method needs a service-auth token and the request carried none."""

    STATUS, ERROR = 401, "AuthenticationRequired"


class InvalidToken(XrpcError):
    """The token is malformed, not signed by its issuer's key, or not meant for this call."""

    STATUS, ERROR = 401, "InvalidToken"


class ExpiredToken(InvalidToken):
    """The token's `exp` has passed (or its `nbf`/`iat` lies in the future)."""

    ERROR = "ExpiredToken"


class Forbidden(XrpcError):
    """Authenticated, but the caller may not do this."""

    STATUS, ERROR = 403, "Forbidden"


class NotFound(XrpcError):
    """The subject does not exist, or is not visible to this caller."""

    STATUS, ERROR = 404, "NotFound"


class MethodNotImplemented(XrpcError):
    """No XRPC method with this NSID is served here."""

    STATUS, ERROR = 404, "MethodNotImplemented"


class MethodNotAllowed(XrpcError):
    """The method exists but not for this HTTP method; `Allow` lists the ones it takes."""

    STATUS, ERROR = 405, "MethodNotAllowed"


class Conflict(XrpcError):
    """The write lost a race: the name was taken, or the record changed since it was read."""

    STATUS, ERROR = 409, "Conflict"


class PayloadTooLarge(XrpcError):
    """The request body is larger than the method accepts."""

    STATUS, ERROR = 413, "PayloadTooLarge"


class RequestHeaderFieldsTooLarge(XrpcError):
    """The request's header fields are larger than we accept."""

    STATUS, ERROR = 431, "RequestHeaderFieldsTooLarge"


class RateLimitExceeded(XrpcError):
    """The client spent its request budget; headers say when it refills."""

    STATUS, ERROR = 429, "RateLimitExceeded"


class UpstreamFailure(XrpcError):
    """A service we depend on failed to answer."""

    STATUS, ERROR = 502, "UpstreamFailure"


class ServiceUnavailable(XrpcError):
    """We cannot answer now (database unreachable, shutting down); retry later."""

    STATUS, ERROR = 503, "ServiceUnavailable"


def envelope(error: XrpcError) -> bytes:
    """The XRPC error envelope `{"error", "message"}` of `error`."""
    return orjson.dumps({"error": error.error, "message": error.message})


def error_response(error: XrpcError) -> Response:
    """Render any XrpcError as the XRPC envelope with its status and headers."""
    return Response(envelope(error), status=error.status, headers=error.headers,
                    content_type="application/json")
