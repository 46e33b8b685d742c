"""All engine metrics, grouped by pipeline stage. Names: `coves_` prefix, base units, `_total`.

Labels are small closed sets (source kind, known collection or "other", operation, reason); no
DIDs or URIs. Per-event counts are summed in the batch and added when it commits, so the hot
path does no metric calls.
"""

from __future__ import annotations

import time
from typing import Final

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "BATCH_FLUSH_SECONDS", "BATCH_RETRIES", "BATCH_SIZE", "BREAKER_STATE", "COMMITTED_CURSOR",
    "DB_ERRORS", "DB_POOL_CONNECTIONS", "DB_POOL_WAITING", "DB_QUERY_SECONDS", "DB_SLOW_QUERIES", "EVENTS_APPLIED", "EVENTS_RECEIVED", "EVENTS_REJECTED", "EVENTS_SKIPPED",
    "PENDING_EVENTS", "QUEUE_DEPTH", "RECONNECTS", "SOURCE_CONNECTED", "LagClock",
    "FIREHOSE_ERROR_FRAMES", "FIREHOSE_INFO", "BACKFILL_REPOS", "BACKFILL_REQUESTS",
    # identity
    "HOST_CHECKS", "IDENTITY_CACHE_LOOKUPS", "IDENTITY_DB_ERRORS", "IDENTITY_FETCHES",
    "IDENTITY_RESOLUTIONS",
]

# ---- source ----
EVENTS_RECEIVED: Final = Counter(
    "coves_ingest_events_received_total", "Events read from the source and committed.",
    ["source", "collection", "operation"])
RECONNECTS: Final = Counter(
    "coves_ingest_reconnects_total", "Times a source reconnected, by why.", ["source", "reason"])
SOURCE_CONNECTED: Final = Gauge(
    "coves_ingest_source_connected", "1 while the source has a live connection.", ["source"])

# ---- raw firehose: frames that are not events ----
FIREHOSE_ERROR_FRAMES: Final = Counter(
    "coves_firehose_error_frames_total", "Error frames (op -1) received; each ends the connection.",
    ["source", "error"])  # error: FutureCursor | ConsumerTooSlow | other
FIREHOSE_INFO: Final = Counter(
    "coves_firehose_info_total", "#info frames received.", ["source", "name"])  # OutdatedCursor | other

# ---- backfill ----
BACKFILL_REPOS: Final = Counter(
    "coves_backfill_repos_total", "Repos backfill finished, by outcome.", ["outcome"])  # fetched | failed
BACKFILL_REQUESTS: Final = Counter(
    "coves_backfill_requests_total", "HTTP requests backfill made, by XRPC method and outcome.",
    ["method", "outcome"])  # outcome: ok | retry | error

# ---- handlers ----
EVENTS_APPLIED: Final = Counter(
    "coves_ingest_events_applied_total", "Events whose rows were committed.",
    ["source", "collection", "operation"])
EVENTS_SKIPPED: Final = Counter(
    "coves_ingest_events_skipped_total", "Events deliberately not stored.", ["source", "reason"])
EVENTS_REJECTED: Final = Counter(
    "coves_ingest_events_rejected_total", "Events stored in ingest_rejects.", ["source", "reason"])

# ---- batcher / writer ----
_SIZE_BUCKETS: Final = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000)
BATCH_SIZE: Final = Histogram(
    "coves_ingest_batch_events", "Events per committed batch.", ["source"], buckets=_SIZE_BUCKETS)
BATCH_FLUSH_SECONDS: Final = Histogram(
    "coves_ingest_batch_flush_seconds", "Time to write and commit one batch.", ["source"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
QUEUE_DEPTH: Final = Gauge(
    "coves_ingest_queue_batches", "Batches waiting for the writer.", ["source"])
PENDING_EVENTS: Final = Gauge(
    "coves_ingest_pending_events", "Events read but not yet handed to the writer.", ["source"])
BATCH_RETRIES: Final = Counter(
    "coves_ingest_batch_retries_total", "Batch writes retried after a database failure.", ["source"])
DB_ERRORS: Final = Counter(
    "coves_ingest_database_errors_total", "Database failures seen by the writer, by kind.",
    ["source", "kind"])
BREAKER_STATE: Final = Gauge(
    "coves_breaker_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open.", ["breaker"])
COMMITTED_CURSOR: Final = Gauge(
    "coves_ingest_cursor", "Cursor of the last committed event (time_us, seq or line).", ["source"])


# ---- database ----
DB_QUERY_SECONDS: Final = Histogram(
    "coves_db_query_seconds", "Time of one database call (waiting for a connection included).",
    ["pool"], buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
DB_SLOW_QUERIES: Final = Counter(
    "coves_db_slow_queries_total", "Database calls slower than DB_SLOW_QUERY_MS.", ["pool"])
DB_POOL_CONNECTIONS: Final = Gauge(
    "coves_db_pool_connections", "Connections of a pool by state (open, idle, max).", ["pool", "state"])
DB_POOL_WAITING: Final = Gauge(
    "coves_db_pool_waiting", "Calls waiting for a free connection of the pool.", ["pool"])


# ---- identity (engine/identity: DID resolution, handle and hostedBy checks) ----
IDENTITY_FETCHES: Final = Counter(
    "coves_identity_fetches_total",
    "Remote identity documents fetched, by outcome (ok, refused, timeout, too_large, failed).",
    ["outcome"])
IDENTITY_CACHE_LOOKUPS: Final = Counter(
    "coves_identity_cache_lookups_total",
    "Identity cache lookups by cache (did, host) and result (hit, miss).", ["cache", "result"])
IDENTITY_RESOLUTIONS: Final = Counter(
    "coves_identity_resolutions_total",
    "Identities re-resolved by the handle resolver, by outcome (ok, handle_invalid, failed).",
    ["outcome"])
HOST_CHECKS: Final = Counter(
    "coves_host_checks_total", "Community hostedBy checks written, by outcome (ok, failed, skipped).",
    ["outcome"])
IDENTITY_DB_ERRORS: Final = Counter(
    "coves_identity_database_errors_total",
    "Database failures of the identity tasks (each followed by a backoff), by task.", ["task"])


class LagClock:
    """`coves_ingest_lag_seconds`: now minus the time of the last committed event.

    Computed at scrape time, so a stalled engine shows a growing lag rather than a frozen value.
    """

    GAUGE: Final = Gauge("coves_ingest_lag_seconds",
                         "Seconds between now and the last committed event's time.", ["source"])
    COMMITTED_AT: Final = Gauge("coves_ingest_last_commit_timestamp_seconds",
                                "Unix time of the last committed batch.", ["source"])

    def __init__(self, source: str) -> None:
        self._event_time_s: float | None = None
        self._source = source
        self.GAUGE.labels(source).set_function(self.lag_seconds)

    def lag_seconds(self) -> float:
        if self._event_time_s is None:
            return 0.0
        return max(0.0, time.time() - self._event_time_s)

    def committed(self, event_time_us: int | None) -> None:
        if event_time_us is not None:
            self._event_time_s = event_time_us / 1_000_000
        self.COMMITTED_AT.labels(self._source).set(time.time())
