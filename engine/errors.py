"""Errors of the firehose engine.

    EngineError
    ├── ConfigError            a setting is missing or malformed (names the variable)
    ├── MigrationError         a migration file is broken or was edited after it was applied
    ├── RejectedEvent          input we refuse; stored in ingest_rejects with a RejectReason
    ├── SourceError            the upstream stream failed; the source reconnects
    │   ├── SourceTimeout      no frame within the idle timeout
    │   ├── SourceClosed       the peer closed the connection (code, reason)
    │   ├── SourceRejected     the server refused the WebSocket handshake (HTTP status, if any)
    │   └── SourceRefused      the peer sent an error frame (firehose `op: -1`: error, message)
    ├── HostError              a PDS or relay failed an XRPC call backfill made (status, error)
    └── DatabaseError          Postgres failed while writing
        ├── DatabaseUnavailable  transient: connection lost, server restarting; retried, trips the breaker
        └── BreakerOpen          the breaker stopped intake until the database answers again

Foreign errors (asyncpg, trio-websocket, orjson) are translated where they enter.
"""

from __future__ import annotations

import enum

__all__ = [
    "BreakerOpen",
    "ConfigError",
    "DatabaseError",
    "DatabaseUnavailable",
    "EngineError",
    "HostError",
    "MigrationError",
    "RejectReason",
    "RejectedEvent",
    "SourceClosed",
    "SourceError",
    "SourceRefused",
    "SourceRejected",
    "SourceTimeout",
]


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""


class ConfigError(EngineError):
    """A setting is missing or malformed. The message names the variable and the accepted form."""


class MigrationError(EngineError):
    """A migration cannot be applied, or an applied one no longer matches its file."""


class RejectReason(enum.StrEnum):
    """Closed set of reasons an event is refused. Used as the `reason` column and metric label."""

    INVALID_JSON = "invalid_json"  # the frame is not JSON (or not UTF-8)
    INVALID_FRAME = "invalid_frame"  # compressed or binary frame that cannot be decoded
    INVALID_SHAPE = "invalid_shape"  # JSON, but not a Jetstream event (missing/mistyped envelope)
    OVERSIZE = "oversize"  # larger than the per-event cap
    INVALID_RECORD = "invalid_record"  # the record breaks its lexicon
    INVALID_RKEY = "invalid_rkey"  # record key not allowed for the collection
    WRONG_REPO = "wrong_repo"  # record claims another repo than the one it lives in
    IMMUTABLE_FIELD = "immutable_field"  # an update tried to change a field that cannot change
    UNVERIFIED_HOST = "unverified_host"  # a community's hostedBy failed did:web verification
    DATABASE_ERROR = "database_error"  # Postgres refused this event's rows (a bug or a data edge)
    HANDLER_ERROR = "handler_error"  # a record handler crashed on this input (a bug; see the log)


class RejectedEvent(EngineError):
    """Raised by decode or a record handler for input we refuse.

    Never escapes the pipeline: the reader turns it into a row of `ingest_rejects`.
    """

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class SourceError(EngineError):
    """The upstream stream failed; the source's reconnect loop handles it."""


class SourceTimeout(SourceError):
    """No frame arrived within the idle timeout."""


class SourceClosed(SourceError):
    """The peer closed the connection, or the connection broke."""

    def __init__(self, code: int | None, reason: str | None) -> None:
        super().__init__(f"connection closed (code={code}, reason={reason!r})")
        self.code = code
        self.reason = reason


class SourceRejected(SourceError):
    """The server refused the WebSocket handshake: an HTTP status other than 101 (`status`), or a
    response that is not a valid handshake (`status` None)."""

    def __init__(self, status: int | None, detail: str) -> None:
        super().__init__(f"handshake refused: {detail}")
        self.status = status
        self.detail = detail


class SourceRefused(SourceError):
    """The peer sent an error frame (e.g. FutureCursor, ConsumerTooSlow) and will close."""

    def __init__(self, error: str | None, message: str | None) -> None:
        super().__init__(f"error frame {error or '(unnamed)'}: {message or ''}".rstrip(": "))
        self.error = error
        self.message = message


class HostError(EngineError):
    """A PDS or relay answered an XRPC call with an error, or could not be reached (status 0).

    `transient` says whether trying again later may help (unreachable, 429, 5xx but 501).
    """

    def __init__(self, method: str, status: int, error: str | None, message: str | None) -> None:
        super().__init__(f"{method}: {f'HTTP {status}' if status else 'unreachable'} "
                         f"{error or ''} {message or ''}".strip())
        self.method = method
        self.status = status
        self.error = error
        self.message = message

    @property
    def transient(self) -> bool:
        return self.status in (0, 429) or (self.status >= 500 and self.status != 501)


class DatabaseError(EngineError):
    """Postgres failed while the engine was using it."""


class DatabaseUnavailable(DatabaseError):
    """Transient failure: the connection dropped or the server is restarting. Retry later."""


class BreakerOpen(DatabaseError):
    """Too many consecutive database failures: intake is paused until a probe succeeds."""
