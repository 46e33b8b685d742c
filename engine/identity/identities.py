"""One round of the handle resolver: due `identities` rows → DID documents → verified handles.

A row is due when `resolve_after <= now()`: the DID was first mentioned by a record, an
identity event arrived for it (the identity merge sets resolve_after = now()), or an earlier
try failed and its backoff ran out. Each of the three asks for news, so the round always
fetches afresh (`resolve(did, fresh=True)`) — that is how an identity event purges the
resolver cache — and the fresh document refreshes the cache for other users of the resolver.

Written per row:
  * handle: the document's handle once it resolves back to the DID (lower-case), NULL when it
    does not (or the document has none); kept as it was when the check could not finish.
  * pds_endpoint: from the document. resolved_at: when this try ran (success or not).
  * resolve_error: NULL on success, else why. resolve_after: NULL on success, else the retry
    time: RETRY_BASE_S after a first failure, then doubling (the previous delay is
    resolve_after − resolved_at of the previous try) up to RETRY_CAP_S.
  * handle_time_us: the resolution time in µs, so an older identity event replayed later
    (identity.py's merge applies only newer time_us) cannot put back an older handle.
A row that an identity event changed while we resolved it is left alone (its handle_time_us
moved): it is due again and the next round resolves it with the news.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from typing import Any, Final

import asyncpg
import trio

from .. import metrics
from ..db import Database
from .errors import DidResolutionError
from .handles import HandleStatus, HandleVerifier
from .resolver import DidResolver

__all__ = ["RESOLVE_BATCH", "RETRY_BASE_S", "RETRY_CAP_S", "resolve_due_identities"]

# Rows per round, and how many resolve at once: PLC's public directory rate-limits clients,
# and a round's results are written together, so rounds stay small and frequent.
RESOLVE_BATCH: Final = 32
RESOLVE_CONCURRENCY: Final = 8
# A failed resolution is retried after 5 min, then 10, 20, … at most every 6 h: a broken
# handle gets fixed by its owner on human time scales; a directory outage passes sooner.
RETRY_BASE_S: Final = 300.0
RETRY_CAP_S: Final = 6 * 3600.0

_DUE: Final = """
    SELECT did, handle_time_us, resolve_after, resolved_at, resolve_error FROM identities
     WHERE resolve_after <= now() ORDER BY resolve_after, did LIMIT $1"""
# Lock our rows in key order first, the order the writer's merges mostly take them in, so the
# two rarely wait on each other in a cycle. A deadlock that still happens is transient (40P01):
# the writer retries its batch, our loop backs off and retries the round.
_LOCK: Final = "SELECT FROM identities WHERE did = ANY($1::text[]) ORDER BY did FOR UPDATE"
# keep_handle: the handle check could not finish (or the document could not be fetched).
_WRITE: Final = """
    UPDATE identities AS t
       SET handle = CASE WHEN u.keep_handle THEN t.handle ELSE u.handle END,
           pds_endpoint = CASE WHEN u.keep_pds THEN t.pds_endpoint ELSE u.pds_endpoint END,
           handle_time_us = CASE WHEN u.keep_handle THEN t.handle_time_us
                                 ELSE GREATEST(t.handle_time_us, u.time_us) END,
           resolved_at = now(), resolve_error = u.error,
           resolve_after = now() + make_interval(secs => u.retry_s)
      FROM unnest($1::text[], $2::bigint[], $3::bool[], $4::text[], $5::bool[], $6::text[],
                  $7::bigint[], $8::text[], $9::float8[])
           AS u(did, seen_time_us, keep_handle, handle, keep_pds, pds_endpoint, time_us, error, retry_s)
     WHERE t.did = u.did AND t.handle_time_us IS NOT DISTINCT FROM u.seen_time_us"""


@dataclasses.dataclass(frozen=True, slots=True)
class _Result:
    did: str
    seen_time_us: int | None
    keep_handle: bool
    handle: str | None
    keep_pds: bool
    pds_endpoint: str | None
    time_us: int
    error: str | None
    retry_s: float | None  # None: resolved, nothing more to do
    outcome: str  # metric label: ok, handle_invalid, failed


def retry_delay_s(row: Any) -> float:
    """Backoff for a row that failed now: double the previous delay if the last try failed too."""
    if row["resolve_error"] is None or row["resolved_at"] is None or row["resolve_after"] is None:
        return RETRY_BASE_S
    previous: datetime.timedelta = row["resolve_after"] - row["resolved_at"]
    return min(RETRY_CAP_S, max(RETRY_BASE_S, 2 * previous.total_seconds()))


async def _resolve(row: Any, resolver: DidResolver, handles: HandleVerifier) -> _Result:
    # Start from "learnt nothing": every column kept, retried later.
    result = _Result(did=row["did"], seen_time_us=row["handle_time_us"], keep_handle=True,
                     handle=None, keep_pds=True, pds_endpoint=None, time_us=time.time_ns() // 1000,
                     error=None, retry_s=retry_delay_s(row), outcome="failed")
    try:
        document = await resolver.resolve(row["did"], fresh=True)
    except DidResolutionError as exc:
        return dataclasses.replace(result, error=str(exc)[:500])
    result = dataclasses.replace(result, keep_pds=False, pds_endpoint=document.pds_endpoint)
    if document.handle is None:
        return dataclasses.replace(result, keep_handle=False, retry_s=None, outcome="ok")
    check = await handles.verify(document.handle, row["did"], pds_endpoint=document.pds_endpoint)
    if check.ok:
        return dataclasses.replace(result, keep_handle=False, handle=check.handle, retry_s=None,
                                   outcome="ok")
    # A check that could not finish keeps the handle we had; a definite "no" clears it.
    return dataclasses.replace(result, keep_handle=check.status is HandleStatus.ERROR,
                               error=check.detail, outcome="handle_invalid")


async def _write(connection: asyncpg.Connection, results: list[_Result]) -> None:
    columns = list(zip(*[(r.did, r.seen_time_us, r.keep_handle, r.handle, r.keep_pds,
                          r.pds_endpoint, r.time_us, r.error, r.retry_s) for r in results]))
    async with connection.transaction():
        await connection.execute(_LOCK, columns[0])
        await connection.execute(_WRITE, *columns)


async def resolve_due_identities(db: Database, resolver: DidResolver, handles: HandleVerifier, *,
                                 limit: int = RESOLVE_BATCH) -> int:
    """Resolve up to `limit` due identities and write what was learnt; return how many.

    Error handling: resolution problems are written to the rows (resolve_error + retry time);
    DatabaseError propagates to the task loop, which backs off.
    """
    rows = await db.fetch(_DUE, limit)
    if not rows:
        return 0
    results: list[_Result] = []
    limiter = trio.CapacityLimiter(RESOLVE_CONCURRENCY)

    async def resolve_one(row: Any) -> None:
        async with limiter:
            results.append(await _resolve(row, resolver, handles))

    async with trio.open_nursery() as nursery:
        for row in rows:
            nursery.start_soon(resolve_one, row)
    await db.run(_write, results)
    for result in results:
        metrics.IDENTITY_RESOLUTIONS.labels(result.outcome).inc()
    return len(rows)
