"""Identity events → identities: a DID's handle changed (or may have); schedule re-resolution.

The firehose carries identity events for the whole network; only DIDs our records mention (rows
of `identities`) are updated. Jetstream's events usually carry no handle: the handle resolver
(engine/identity/identities.py) re-resolves every DID whose `resolve_after` is due.
"""

from __future__ import annotations

from typing import Final

from ..events import Event
from ..tables import Column, RowOp, Table
from .fields import IDENTIFIER

__all__ = ["KINDS", "RECOUNTS", "TABLE", "TABLES", "handle"]

KINDS: Final = ("identity",)

TABLE: Final = Table(
    name="identity_events",  # staging only: the merge updates `identities`
    key=("did",),
    columns=(Column("did", IDENTIFIER), Column("handle", "text"), Column("time_us", "bigint")),
    version="time_us",
    tombstones=False,
    merge="""
WITH incoming AS (SELECT DISTINCT ON (did) did, handle, time_us FROM stage_identity_events
                  ORDER BY did, time_us DESC),
merged AS (UPDATE identities AS t
              SET handle = COALESCE(lower(i.handle), t.handle), handle_time_us = i.time_us,
                  resolve_after = now(), resolve_error = NULL
             FROM incoming AS i
            WHERE t.did = i.did AND (t.handle_time_us IS NULL OR t.handle_time_us < i.time_us)
        RETURNING t.did)
SELECT (SELECT count(*) FROM merged) AS changed, ARRAY(SELECT did FROM merged) AS merged_keys""",
)
TABLES: Final = (TABLE,)
RECOUNTS: Final = ()


def handle(event: Event) -> list[RowOp]:
    return [RowOp(TABLE, (event.did, event.handle, event.time_us))]
