"""social.coves.community.profile → communities (one row per community repo, rkey `self`)."""

from __future__ import annotations

from typing import Final

from ..errors import RejectedEvent, RejectReason
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
        Column("created_by", "text"),
        Column("hosted_by", "text"),
        Column("visibility", "text"),
        Column("record", "jsonb"),
        Column("created_at", "timestamptz"),
    ),
)
TABLES: Final = (TABLE,)
RECOUNTS: Final = ()


def handle(event: Event) -> list[RowOp]:
    if event.rkey != "self":
        raise RejectedEvent(RejectReason.INVALID_RKEY, "a community profile's rkey must be 'self'")
    if event.operation == DELETE:
        return [RowOp(TABLE, fields.tombstone(TABLE, did=event.did, uri=event.uri,
                                              rkey=event.rkey, rev=event.rev))]
    record = event.record or {}
    row = (
        event.did, event.uri, event.rkey, event.rev, event.cid,
        fields.text(record, "handle", max_bytes=253),
        fields.text(record, "name", required=True, max_bytes=64),
        fields.text(record, "displayName", max_bytes=1280),
        fields.text(record, "description", max_bytes=10000),
        fields.did(record, "createdBy", required=True),
        fields.did(record, "hostedBy", required=True),
        fields.text(record, "visibility", max_bytes=64) or "public",
        record,
        fields.timestamp(record, "createdAt", required=True),
        False,
    )
    return [RowOp(TABLE, row)]
