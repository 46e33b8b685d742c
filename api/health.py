"""`/xrpc/_health`: can we answer, and how far behind the firehose is what we answer from.

200 when Postgres answers and ingestion is fresh; 503 when Postgres does not answer within
DB_TIMEOUT_S, or when the newest live source (Jetstream or a raw firehose; replay files do not
count) committed its last event more than HEALTH_MAX_LAG_S ago. With no live source at all
(`coves api` over a database nobody ingests into, or an engine not started yet) ingestion is
reported as absent and does not fail the check.
"""

from __future__ import annotations

from typing import Any, Final

import orjson
import trio
from quart import Blueprint, Response

from engine.errors import DatabaseError

from .xrpc import ApiContext

__all__ = ["blueprint", "read_health"]

DB_TIMEOUT_S: Final = 2.0
_LATEST_LIVE_CURSOR: Final = """
SELECT source, cursor, event_time_us, coves_iso(updated_at) AS updated_at,
       extract(epoch FROM clock_timestamp())::double precision - event_time_us / 1e6 AS lag_s
  FROM ingest_cursors
 WHERE source = 'jetstream' OR source LIKE 'firehose%'
 ORDER BY updated_at DESC
 LIMIT 1"""


async def read_health(api: ApiContext) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of the health check."""
    row = None
    try:
        with trio.fail_after(DB_TIMEOUT_S):
            rows = await api.db.fetch(_LATEST_LIVE_CURSOR)
        row = rows[0] if rows else None
    except (DatabaseError, trio.TooSlowError) as exc:
        return 503, {"status": "unavailable", "database": "unreachable",
                     "message": type(exc).__name__}
    if row is None:
        return 200, {"status": "ok", "database": "ok", "ingest": None}
    lag_s = row["lag_s"]
    ingest = {"source": row["source"], "cursor": row["cursor"], "updatedAt": row["updated_at"],
              "lagSeconds": round(lag_s, 3) if lag_s is not None else None,
              "maxLagSeconds": api.config.health_max_lag_s}
    if lag_s is None or lag_s > api.config.health_max_lag_s:
        return 503, {"status": "lagging", "database": "ok", "ingest": ingest}
    return 200, {"status": "ok", "database": "ok", "ingest": ingest}


def blueprint(api: ApiContext) -> Blueprint:
    """The health endpoint over `api`'s database."""
    health = Blueprint("health", __name__)

    @health.get("/xrpc/_health")
    async def check() -> Response:
        status, body = await read_health(api)
        return Response(orjson.dumps(body), status=status, content_type="application/json",
                        headers={"Cache-Control": "no-store"})

    return health
