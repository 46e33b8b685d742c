"""social.coves.aggregator.authorization → aggregator_authorizations.

A community's grant letting an aggregator post into it; lives in the community's repo, so
`record.communityDid` must be that repo.
"""

from __future__ import annotations

from typing import Final

from ..events import DELETE, Event
from ..tables import Column, RowOp
from . import fields

__all__ = ["COLLECTION", "RECOUNTS", "TABLE", "TABLES", "handle"]

COLLECTION: Final = "social.coves.aggregator.authorization"

TABLE: Final = fields.record_table(
    "aggregator_authorizations",
    Column("aggregator_did", fields.IDENTIFIER, immutable=True),
    Column("enabled", "boolean"),
    Column("config", "jsonb"),
    Column("created_by", fields.IDENTIFIER),
    Column("disabled_at", "timestamptz"),
    Column("disabled_by", fields.IDENTIFIER),
    Column("created_at", "timestamptz"),
    repo="community_did",
    actors=("community_did", "aggregator_did"),
)
TABLES: Final = (TABLE,)
RECOUNTS: Final = ()


def handle(event: Event) -> list[RowOp]:
    if event.operation == DELETE:
        return [fields.deleted(TABLE, event)]
    record = event.record or {}
    if record.get("communityDid") != event.did:
        raise fields.wrong_repo("communityDid", record.get("communityDid"), event.did)
    return [fields.live(TABLE, event, fields.text(record, "aggregatorDid"),
                        record.get("enabled") is True, record.get("config"),
                        fields.text(record, "createdBy"), fields.timestamp(record, "disabledAt"),
                        fields.text(record, "disabledBy"), fields.timestamp(record, "createdAt"))]
