"""Read-after-write: a record the AppView just wrote to a PDS is indexed at once.

The PDS answers a write with the commit's `rev`. We build the Event the firehose will deliver
for that commit (same repo, collection, rkey, rev, cid, record) and commit it through the
engine's own writer path — record handler → Batch → rev-gated merge → recounts, one transaction
under the writer lock, no cursor. When the firehose event with the same rev arrives, the rev
gate finds nothing newer and changes nothing; a later edit (newer rev) wins as usual.

Error handling: the PDS write already succeeded when this runs, so a failure here (database
down, a version the merge refuses) is logged and counted, never returned to the client: the
firehose brings the same rows moments later.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

import orjson
from prometheus_client import Counter

from engine.batcher import Batch
from engine.db import Database
from engine.errors import DatabaseError, RejectedEvent
from engine.events import COMMIT, Event
from engine.records import DEFAULT_REGISTRY, Registry
from engine.writer import WritePlan, rows_by_table, write_once

__all__ = ["OPTIMISTIC_WRITES", "SOURCE", "apply_commit"]

LOGGER = logging.getLogger(__name__)
SOURCE: Final = "api"  # the batch's source label; it stores no cursor
OPTIMISTIC_WRITES: Final = Counter(
    "coves_api_optimistic_writes_total",
    "Records indexed straight after the API wrote them to a PDS, by outcome (ok, failed).",
    ["outcome"])
_PLANS: dict[int, WritePlan] = {}


def _plan(registry: Registry) -> WritePlan:
    plan = _PLANS.get(id(registry))
    if plan is None:
        plan = _PLANS[id(registry)] = WritePlan(registry.tables, registry.recounts)
    return plan


async def apply_commit(writer: Database, *, did: str, collection: str, rkey: str, rev: str,
                       operation: str, record: dict[str, Any] | None = None,
                       cid: str | None = None, registry: Registry = DEFAULT_REGISTRY) -> bool:
    """Index one acknowledged write as its firehose event would; True when committed.

    Args:
        writer: a database from engine.pipeline.open_writer_database (staging tables).
        operation: create, update or delete.
    """
    time_us = time.time_ns() // 1000
    event = Event(did=did, kind=COMMIT, time_us=time_us, cursor=0, operation=operation,
                  collection=collection, rkey=rkey, rev=rev, cid=cid, record=record,
                  raw=orjson.dumps({"did": did, "collection": collection, "rkey": rkey, "rev": rev}))
    try:
        ops = registry.handle(event)
    except RejectedEvent as exc:  # the firehose copy will land in ingest_rejects
        LOGGER.warning("optimistic row refused by its handler", extra={"uri": event.uri,
                                                                       "error": str(exc)})
        OPTIMISTIC_WRITES.labels("failed").inc()
        return False
    batch = Batch(SOURCE, rows=dict(rows_by_table(ops)), events=[(event, ops)],
                  first_time_us=time_us, last_time_us=time_us, size=1)
    try:
        await write_once(writer, _plan(registry), batch)
    except DatabaseError as exc:
        LOGGER.warning("optimistic row not written; the firehose will bring it",
                       extra={"uri": event.uri, "error": str(exc)})
        OPTIMISTIC_WRITES.labels("failed").inc()
        return False
    OPTIMISTIC_WRITES.labels("ok").inc()
    return True
