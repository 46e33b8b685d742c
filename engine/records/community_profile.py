"""social.coves.community.profile → communities (one row per community repo, rkey `self`).

A delete hides the community (reads skip tombstoned communities and their posts); a newer
create restores it. hostedBy is checked against did:web out of band (engine/identity/): the
row records which (hostedBy, handle) passed.
"""

from __future__ import annotations

from typing import Any, Final

from .. import syntax
from ..events import DELETE, Event
from ..tables import Column, RowOp
from . import fields

__all__ = ["COLLECTION", "RECOUNTS", "TABLE", "TABLES", "handle"]

COLLECTION: Final = "social.coves.community.profile"

TABLE: Final = fields.record_table(
    "communities",
    Column("handle"),
    Column("name"),
    Column("display_name"),
    Column("description"),
    Column("avatar_cid"),
    Column("banner_cid"),
    Column("created_by", fields.IDENTIFIER),
    Column("hosted_by", fields.IDENTIFIER),
    Column("visibility"),
    Column("moderation_type"),
    Column("content_warnings", "text[]"),
    Column("record", "jsonb"),
    Column("created_at", "timestamptz"),
    key="did",
    actors=("did", "created_by"),
)
TABLES: Final = (TABLE,)
RECOUNTS: Final = ()


def _handle(record: dict[str, Any]) -> str | None:
    # Not in the lexicon, but Coves writes it; take it only when it is a well-formed handle.
    value = record.get("handle")
    return value.lower() if syntax.is_handle(value) else None


def handle(event: Event) -> list[RowOp]:
    if event.operation == DELETE:
        return [fields.deleted(TABLE, event)]
    record = event.record or {}
    return [fields.live(
        TABLE, event,
        _handle(record),
        fields.text(record, "name"),
        fields.text(record, "displayName"),
        fields.text(record, "description"),
        fields.blob_cid(record, "avatar"),
        fields.blob_cid(record, "banner"),
        fields.text(record, "createdBy"),
        fields.text(record, "hostedBy"),
        fields.text(record, "visibility") or "public",
        fields.text(record, "moderationType") or "moderator",
        fields.strings(record, "contentWarnings"),
        record,
        fields.timestamp(record, "createdAt"),
    )]
