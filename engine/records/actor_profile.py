"""social.coves.actor.profile → actor_profiles (one per account, rkey `self`).

The lexicon names the text `bio`; Coves' own code writes `description`: both are accepted
(`bio` wins when a record has both).
"""

from __future__ import annotations

from typing import Final

from ..events import DELETE, Event
from ..tables import Column, RowOp, Table
from . import fields

__all__ = ["COLLECTION", "RECOUNTS", "TABLE", "TABLES", "handle"]

COLLECTION: Final = "social.coves.actor.profile"

TABLE: Final = Table(
    name="actor_profiles",
    key=("did",),
    columns=(
        Column("did", "text"),
        Column("uri", "text"),
        Column("rkey", "text"),
        Column("rev", 'text COLLATE "C"'),
        Column("cid", "text"),
        Column("display_name", "text"),
        Column("description", "text"),
        Column("avatar_cid", "text"),
        Column("banner_cid", "text"),
        Column("record", "jsonb"),
        Column("created_at", "timestamptz"),
    ),
    actors=("did",),
    repo="did",
)
TABLES: Final = (TABLE,)
RECOUNTS: Final = ()


def handle(event: Event) -> list[RowOp]:
    if event.operation == DELETE:
        return [RowOp(TABLE, fields.tombstone(TABLE, did=event.did, uri=event.uri, rkey=event.rkey,
                                              rev=event.rev))]
    record = event.record or {}
    bio = fields.text(record, "bio")
    row = (event.did, event.uri, event.rkey, event.rev, event.cid,
           fields.text(record, "displayName"),
           bio if bio is not None else fields.text(record, "description"),
           fields.blob_cid(record, "avatar"), fields.blob_cid(record, "banner"),
           record, fields.timestamp(record, "createdAt"), False)
    return [RowOp(TABLE, row)]
