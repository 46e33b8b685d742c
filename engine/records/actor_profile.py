"""social.coves.actor.profile → actor_profiles (one per account, rkey `self`).

The lexicon names the text `bio`; Coves' own code writes `description`: both are accepted
(`bio` wins when a record has both).
"""

from __future__ import annotations

from typing import Final

from ..events import DELETE, Event
from ..tables import Column, RowOp
from . import fields

__all__ = ["COLLECTION", "RECOUNTS", "TABLE", "TABLES", "handle"]

COLLECTION: Final = "social.coves.actor.profile"

TABLE: Final = fields.record_table(
    "actor_profiles",
    Column("display_name"),
    Column("description"),
    Column("avatar_cid"),
    Column("banner_cid"),
    Column("record", "jsonb"),
    Column("created_at", "timestamptz"),
    key="did",
)
TABLES: Final = (TABLE,)
RECOUNTS: Final = ()


def handle(event: Event) -> list[RowOp]:
    if event.operation == DELETE:
        return [fields.deleted(TABLE, event)]
    record = event.record or {}
    bio = fields.text(record, "bio")
    return [fields.live(TABLE, event, fields.text(record, "displayName"),
                        bio if bio is not None else fields.text(record, "description"),
                        fields.blob_cid(record, "avatar"), fields.blob_cid(record, "banner"),
                        record, fields.timestamp(record, "createdAt"))]
