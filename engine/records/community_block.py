"""social.coves.community.block → community_blocks: communities a user chose not to see.

Coves' own AppView never requests this collection; we index it and reads honour it.
"""

from __future__ import annotations

from typing import Final

from ..events import DELETE, Event
from ..tables import Column, RowOp
from . import fields

__all__ = ["COLLECTION", "RECOUNTS", "TABLE", "TABLES", "handle"]

COLLECTION: Final = "social.coves.community.block"

TABLE: Final = fields.record_table(
    "community_blocks",
    Column("subject", fields.IDENTIFIER, immutable=True),
    Column("created_at", "timestamptz"),
    actors=("did", "subject"),
)
TABLES: Final = (TABLE,)
RECOUNTS: Final = ()


def handle(event: Event) -> list[RowOp]:
    if event.operation == DELETE:
        return [fields.deleted(TABLE, event)]
    record = event.record or {}
    return [fields.live(TABLE, event, fields.text(record, "subject"),
                        fields.timestamp(record, "createdAt"))]
