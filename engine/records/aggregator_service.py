"""social.coves.aggregator.service → aggregators (an aggregator bot's declaration, rkey `self`).

`record.did` must be the repo the record lives in.
"""

from __future__ import annotations

from typing import Final

from ..events import DELETE, Event
from ..tables import Column, RowOp, Table
from . import fields

__all__ = ["COLLECTION", "RECOUNTS", "TABLE", "TABLES", "handle"]

COLLECTION: Final = "social.coves.aggregator.service"

TABLE: Final = Table(
    name="aggregators",
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
        Column("maintainer", "text"),
        Column("source_url", "text"),
        Column("config_schema", "jsonb"),
        Column("record", "jsonb"),
        Column("created_at", "timestamptz"),
    ),
    actors=("did", "maintainer"),
    repo="did",
)
TABLES: Final = (TABLE,)
RECOUNTS: Final = ()


def handle(event: Event) -> list[RowOp]:
    if event.operation == DELETE:
        return [RowOp(TABLE, fields.tombstone(TABLE, did=event.did, uri=event.uri, rkey=event.rkey,
                                              rev=event.rev))]
    record = event.record or {}
    if record.get("did") != event.did:
        raise fields.wrong_repo("did", record.get("did"), event.did)
    row = (event.did, event.uri, event.rkey, event.rev, event.cid,
           fields.text(record, "displayName"), fields.text(record, "description"),
           fields.blob_cid(record, "avatar"), fields.text(record, "maintainer"),
           fields.text(record, "sourceUrl"), record.get("configSchema"), record,
           fields.timestamp(record, "createdAt"), False)
    return [RowOp(TABLE, row)]
