"""social.coves.community.subscription → subscriptions; keeps communities.subscriber_count exact.

subscriber_count counts distinct subscribers with a live subscription record, so a user who
(through a client bug) holds two records for one community counts once.
"""

from __future__ import annotations

from typing import Final

from ..events import DELETE, Event
from ..tables import Column, Recount, RowOp, Tally
from . import fields

__all__ = ["COLLECTION", "RECOUNTS", "TABLE", "TABLES", "handle"]

COLLECTION: Final = "social.coves.community.subscription"
DEFAULT_CONTENT_VISIBILITY: Final = 3

TABLE: Final = fields.record_table(
    "subscriptions",
    Column("subject", fields.IDENTIFIER, immutable=True),
    Column("content_visibility", "smallint"),
    Column("created_at", "timestamptz"),
    tracked=("subject",),
    actors=("did", "subject"),
)
TABLES: Final = (TABLE,)
RECOUNTS: Final = (
    Recount(target="communities", target_key="did", columns=("subscriber_count",),
            source="subscriptions", source_fk="subject",
            tally=Tally.rows("did", "subscriber_count")),
)


def handle(event: Event) -> list[RowOp]:
    if event.operation == DELETE:
        return [fields.deleted(TABLE, event)]
    record = event.record or {}
    return [fields.live(TABLE, event, fields.text(record, "subject"),
                        fields.integer(record, "contentVisibility", DEFAULT_CONTENT_VISIBILITY),
                        fields.timestamp(record, "createdAt"))]
