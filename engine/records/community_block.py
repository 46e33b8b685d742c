"""social.coves.community.block → community_blocks: communities a user chose not to see.

Coves' own AppView never requests this collection; we index it and reads honour it.
"""

from __future__ import annotations

from typing import Final

from ..events import DELETE, Event
from ..tables import Column, RowOp, Table
from . import fields

__all__ = ["COLLECTION", "RECOUNTS", "TABLE", "TABLES", "handle"]

COLLECTION: Final = "social.coves.community.block"

TABLE: Final = Table(
    name="community_blocks",
    key=("uri",),
    columns=(
        Column("uri", "text"),
        Column("did", "text"),
        Column("rkey", "text"),
        Column("rev", 'text COLLATE "C"'),
        Column("cid", "text"),
        Column("subject", "text", immutable=True),
        Column("created_at", "timestamptz"),
    ),
    actors=("did", "subject"),
    repo="did",
)
TABLES: Final = (TABLE,)
RECOUNTS: Final = ()


def handle(event: Event) -> list[RowOp]:
    if event.operation == DELETE:
        return [RowOp(TABLE, fields.tombstone(TABLE, uri=event.uri, did=event.did, rkey=event.rkey,
                                              rev=event.rev))]
    record = event.record or {}
    row = (event.uri, event.did, event.rkey, event.rev, event.cid, fields.text(record, "subject"),
           fields.timestamp(record, "createdAt"), False)
    return [RowOp(TABLE, row)]
