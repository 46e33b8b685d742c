"""One round of the host verifier: communities whose hostedBy claim needs a (re)check.

A community is due when what it claims changed since its last check — `host_checked_for`
(the `hostedBy handle` pair checked) differs from its current pair — or when its last check
failed more than RECHECK_FAILED_S ago. Its handle is the profile's `handle`, else the DID's
verified handle from `identities` (the handle resolver's result; while that resolution is
pending the community waits, rather than fail for lack of a handle).

Each verdict is written to the row (host_ok, host_checked_for, host_checked_at, host_detail)
if the profile did not change meanwhile (same rev). A failure is also stored in
ingest_rejects (reason unverified_host), with the profile rebuilt as a Jetstream v1 commit in
`raw`, so operators see it and `coves redrive` can read it; the fingerprint is the writer's
(batcher.reject_row), so repeated failures of one profile version make one row. A pass deletes
that community's unverified_host rejects.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

import asyncpg
import orjson
import trio

from .. import metrics
from ..batcher import reject_row
from ..db import Database
from ..decode import decode_jetstream
from ..errors import RejectedEvent, RejectReason
from ..records.community_profile import COLLECTION
from .hosting import HostCheck, HostVerifier

__all__ = ["CHECK_BATCH", "RECHECK_FAILED_S", "REJECT_SOURCE", "profile_frame",
           "verify_due_communities"]

# Communities per round; fetches inside are paced by the verifier's token bucket (10/s), so
# more parallelism would only queue on it — 4 keeps one slow host from holding up the rest.
CHECK_BATCH: Final = 20
CHECK_CONCURRENCY: Final = 4
# The rule: a failed check is retried after 5 minutes (the invalid-cache lifetime).
RECHECK_FAILED_S: Final = 300.0
REJECT_SOURCE: Final = "host_verifier"
_B32_SORTABLE: Final = "234567abcdefghijklmnopqrstuvwxyz"

# `checked_for` is computed here once and compared/stored as is. The join reads the DID's
# handle only once the resolver has verified it (resolve_after IS NULL); a community without
# its own handle whose DID awaits its first resolution (no error yet) is left for later.
_DUE: Final = """
    SELECT c.did, c.rkey, c.rev, c.cid, c.record, c.hosted_by, h.handle,
           coalesce(c.hosted_by, '') || ' ' || coalesce(h.handle, '') AS checked_for
      FROM communities AS c
      LEFT JOIN identities AS i ON i.did = c.did
     CROSS JOIN LATERAL (SELECT coalesce(c.handle, CASE WHEN i.resolve_after IS NULL
                                                        THEN lower(i.handle) END) AS handle) AS h
     WHERE c.deleted_at IS NULL AND c.record IS NOT NULL
       AND NOT (c.handle IS NULL AND i.resolve_after IS NOT NULL AND i.resolve_error IS NULL)
       AND (c.host_checked_for IS DISTINCT FROM coalesce(c.hosted_by, '') || ' ' || coalesce(h.handle, '')
            OR (NOT c.host_ok AND c.host_checked_at <= now() - make_interval(secs => $2)))
     ORDER BY c.host_checked_at NULLS FIRST, c.did
     LIMIT $1"""
# Lock our rows in key order first, the order the writer's merges mostly take them in, so the
# two rarely wait on each other in a cycle. A deadlock that still happens is transient (40P01):
# the writer retries its batch, our loop backs off and retries the round.
_LOCK: Final = "SELECT FROM communities WHERE did = ANY($1::text[]) ORDER BY did FOR UPDATE"
_WRITE: Final = """
    UPDATE communities AS c
       SET host_ok = u.ok, host_checked_for = u.checked_for, host_checked_at = now(),
           host_detail = u.detail
      FROM unnest($1::text[], $2::text[], $3::bool[], $4::text[], $5::text[])
           AS u(did, rev, ok, checked_for, detail)
     WHERE c.did = u.did AND c.rev = u.rev
 RETURNING c.did"""
# Rejects of a community other than the current one (a pass keeps none: fingerprint NULL).
_DELETE_REJECTS: Final = """
    DELETE FROM ingest_rejects AS r
     USING unnest($1::text[], $2::bytea[]) AS u(did, fingerprint)
     WHERE r.reason = $3 AND r.collection = $4 AND r.did = u.did
       AND r.fingerprint IS DISTINCT FROM u.fingerprint"""
_INSERT_REJECT: Final = """
    INSERT INTO ingest_rejects (fingerprint, reason, detail, source, did, collection, rkey, rev,
                                time_us, cursor, raw, raw_size)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
    ON CONFLICT (fingerprint) DO UPDATE
       SET detail = EXCLUDED.detail, seen_count = ingest_rejects.seen_count + 1,
           last_seen_at = now()"""


@dataclasses.dataclass(frozen=True, slots=True)
class _Verdict:
    row: Any
    check: HostCheck


def _tid_time_us(tid: str) -> int:
    """The microsecond timestamp in a TID (its top 53 bits)."""
    value = 0
    for char in tid:
        value = value * 32 + _B32_SORTABLE.index(char)
    return value >> 10


def profile_frame(row: Any) -> bytes:
    """The profile as a Jetstream v1 commit event, rebuilt from its communities row.

    Deterministic (sorted keys, time_us taken from the rev), so the same profile version always
    gives the same bytes and the same reject fingerprint.
    """
    commit: dict[str, Any] = {"rev": row["rev"], "operation": "create", "collection": COLLECTION,
                              "rkey": row["rkey"], "record": row["record"]}
    if row["cid"] is not None:
        commit["cid"] = row["cid"]
    return orjson.dumps({"did": row["did"], "time_us": _tid_time_us(row["rev"]), "kind": "commit",
                         "commit": commit}, option=orjson.OPT_SORT_KEYS)


def _reject(verdict: _Verdict) -> tuple[Any, ...]:
    raw = profile_frame(verdict.row)
    rejected = RejectedEvent(RejectReason.UNVERIFIED_HOST, verdict.check.detail)
    try:
        event = decode_jetstream(raw)
    except RejectedEvent:
        event = None  # a row that does not rebuild into an event (no cid): keep the raw anyway
    return reject_row(REJECT_SOURCE, rejected, raw, event, None)


async def _write(connection: asyncpg.Connection, verdicts: list[_Verdict]) -> list[str]:
    """Store verdicts and their rejects in one transaction; return the DIDs written."""
    async with connection.transaction():
        await connection.execute(_LOCK, [v.row["did"] for v in verdicts])
        written = {record["did"] for record in await connection.fetch(
            _WRITE, [v.row["did"] for v in verdicts], [v.row["rev"] for v in verdicts],
            [v.check.ok for v in verdicts], [v.row["checked_for"] for v in verdicts],
            [v.check.detail[:1000] for v in verdicts])}
        kept = [v for v in verdicts if v.row["did"] in written]
        failed = {v.row["did"]: _reject(v) for v in kept if not v.check.ok}
        await connection.execute(_DELETE_REJECTS, [v.row["did"] for v in kept],
                                 [failed[v.row["did"]][0] if v.row["did"] in failed else None
                                  for v in kept],
                                 RejectReason.UNVERIFIED_HOST.value, COLLECTION)
        for row in failed.values():
            await connection.execute(_INSERT_REJECT, *row)
    return sorted(written)


async def verify_due_communities(db: Database, hosting: HostVerifier, *,
                                 limit: int = CHECK_BATCH) -> int:
    """Check up to `limit` due communities' hostedBy and write the verdicts; return how many.

    Error handling: remote problems become failed verdicts (with rejects); DatabaseError
    propagates to the task loop, which backs off.
    """
    rows = await db.fetch(_DUE, limit, RECHECK_FAILED_S)
    if not rows:
        return 0
    verdicts: list[_Verdict] = []
    limiter = trio.CapacityLimiter(CHECK_CONCURRENCY)

    async def check_one(row: Any) -> None:
        async with limiter:
            verdicts.append(_Verdict(row, await hosting.verify(row["hosted_by"], row["handle"])))

    async with trio.open_nursery() as nursery:
        for row in rows:
            nursery.start_soon(check_one, row)
    await db.run(_write, verdicts)
    for verdict in verdicts:
        outcome = "skipped" if hosting.skip else "ok" if verdict.check.ok else "failed"
        metrics.HOST_CHECKS.labels(outcome).inc()
    return len(rows)
