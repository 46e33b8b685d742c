"""social.coves.community.profile → communities (one row per community repo, rkey `self`).

A delete hides the community (reads skip tombstoned communities and their posts); a newer
create restores it. hostedBy is checked against did:web out of band (engine/identity/): the
row records which (hostedBy, handle) passed.
"""

from __future__ import annotations

from typing import Any, Final

from .. import syntax
from ..events import DELETE, Event
from ..tables import Column, RowOp, Table
from . import fields

__all__ = ["COLLECTION", "RECOUNTS", "TABLE", "TABLES", "handle"]

COLLECTION: Final = "social.coves.community.profile"

TABLE: Final = Table(
    name="communities",
    key=("did",),
    columns=(
        Column("did", "text"),
        Column("uri", "text"),
        Column("rkey", "text"),
        Column("rev", 'text COLLATE "C"'),
        Column("cid", "text"),
        Column("handle", "text"),
        Column("name", "text"),
        Column("display_name", "text"),
        Column("description", "text"),
        Column("avatar_cid", "text"),
        Column("banner_cid", "text"),
        Column("created_by", "text"),
        Column("hosted_by", "text"),
        Column("visibility", "text"),
        Column("moderation_type", "text"),
        Column("content_warnings", "text[]"),
        Column("record", "jsonb"),
        Column("created_at", "timestamptz"),
    ),
    actors=("did", "created_by"),
    repo="did",
)
TABLES: Final = (TABLE,)
RECOUNTS: Final = ()


def _handle(record: dict[str, Any]) -> str | None:
    # Not in the lexicon, but Coves writes it; take it only when it is a well-formed handle.
    value = record.get("handle")
    return value.lower() if syntax.is_handle(value) else None


def handle(event: Event) -> list[RowOp]:
    if event.operation == DELETE:
        return [RowOp(TABLE, fields.tombstone(TABLE, did=event.did, uri=event.uri,
                                              rkey=event.rkey, rev=event.rev))]
    record = event.record or {}
    row = (
        event.did, event.uri, event.rkey, event.rev, event.cid,
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
        False,
    )
    return [RowOp(TABLE, row)]
