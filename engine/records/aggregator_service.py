"""social.coves.aggregator.service → aggregators (an aggregator bot's declaration, rkey `self`).

`record.did` must be the repo the record lives in.
"""

from __future__ import annotations

from typing import Final

from ..events import DELETE, Event
from ..tables import Column, RowOp
from . import fields

__all__ = ["COLLECTION", "RECOUNTS", "TABLE", "TABLES", "handle"]

COLLECTION: Final = "social.coves.aggregator.service"

TABLE: Final = fields.record_table(
    "aggregators",
    Column("display_name"),
    Column("description"),
    Column("avatar_cid"),
    Column("maintainer", fields.IDENTIFIER),
    Column("source_url"),
    Column("config_schema", "jsonb"),
    Column("record", "jsonb"),
    Column("created_at", "timestamptz"),
    key="did",
    actors=("did", "maintainer"),
)
TABLES: Final = (TABLE,)
RECOUNTS: Final = ()


def handle(event: Event) -> list[RowOp]:
    if event.operation == DELETE:
        return [fields.deleted(TABLE, event)]
    record = event.record or {}
    if record.get("did") != event.did:
        raise fields.wrong_repo("did", record.get("did"), event.did)
    return [fields.live(TABLE, event, fields.text(record, "displayName"),
                        fields.text(record, "description"), fields.blob_cid(record, "avatar"),
                        fields.text(record, "maintainer"), fields.text(record, "sourceUrl"),
                        record.get("configSchema"), record, fields.timestamp(record, "createdAt"))]
