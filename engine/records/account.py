"""Account events → identities.active/status: hide, restore or purge a DID's content.

`active=false` with takendown/suspended/deactivated (or any status) hides everything of that DID
from reads; `active=true` shows it again. `deleted` also purges it: every record in the DID's
repo becomes a tombstone (content cleared, thread refs kept) and the counters it fed are
recounted. Only DIDs our records mention are tracked (the firehose carries every account).
"""

from __future__ import annotations

from typing import Final

from ..events import Event
from ..tables import Column, RowOp, Table
from .fields import IDENTIFIER

__all__ = ["KINDS", "RECOUNTS", "TABLE", "TABLES", "handle"]

KINDS: Final = ("account",)

TABLE: Final = Table(
    name="account_events",  # staging only: the merge updates `identities`
    key=("did",),
    columns=(Column("did", IDENTIFIER), Column("active", "boolean"), Column("status", "text"),
             Column("time_us", "bigint")),
    version="time_us",
    tombstones=False,
    merge="""
WITH incoming AS (SELECT DISTINCT ON (did) did, active, status, time_us FROM stage_account_events
                  ORDER BY did, time_us DESC),
merged AS (UPDATE identities AS t
              SET active = i.active, status = i.status, account_time_us = i.time_us
             FROM incoming AS i
            WHERE t.did = i.did AND (t.account_time_us IS NULL OR t.account_time_us < i.time_us)
        RETURNING t.did, t.status)
SELECT (SELECT count(*) FROM merged) AS changed, ARRAY(SELECT did FROM merged) AS merged_keys,
       ARRAY(SELECT did FROM merged WHERE status = 'deleted') AS purged_repos""",
)
TABLES: Final = (TABLE,)
RECOUNTS: Final = ()


def handle(event: Event) -> list[RowOp]:
    status = event.status if not event.active else None
    return [RowOp(TABLE, (event.did, bool(event.active), status, event.time_us))]
