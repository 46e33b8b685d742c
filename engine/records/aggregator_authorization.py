"""social.coves.aggregator.authorization → aggregator_authorizations.

A community's grant letting an aggregator post into it; lives in the community's repo, so
`record.communityDid` must be that repo.
"""

from __future__ import annotations

from typing import Final

from ..events import DELETE, Event
from ..tables import Column, RowOp, Table
from . import fields

__all__ = ["COLLECTION", "RECOUNTS", "TABLE", "TABLES", "handle"]

COLLECTION: Final = "social.coves.aggregator.authorization"

TABLE: Final = Table(
    name="aggregator_authorizations",
    key=("uri",),
    columns=(
        Column("uri", "text"),
        Column("community_did", "text"),
        Column("rkey", "text"),
        Column("rev", 'text COLLATE "C"'),
        Column("cid", "text"),
        Column("aggregator_did", "text", immutable=True),
        Column("enabled", "boolean"),
        Column("config", "jsonb"),
        Column("created_by", "text"),
        Column("disabled_at", "timestamptz"),
        Column("disabled_by", "text"),
        Column("created_at", "timestamptz"),
    ),
    actors=("community_did", "aggregator_did"),
    repo="community_did",
)
TABLES: Final = (TABLE,)
RECOUNTS: Final = ()


def handle(event: Event) -> list[RowOp]:
    if event.operation == DELETE:
        return [RowOp(TABLE, fields.tombstone(TABLE, uri=event.uri, community_did=event.did,
                                              rkey=event.rkey, rev=event.rev))]
    record = event.record or {}
    if record.get("communityDid") != event.did:
        raise fields.wrong_repo("communityDid", record.get("communityDid"), event.did)
    row = (event.uri, event.did, event.rkey, event.rev, event.cid,
           fields.text(record, "aggregatorDid"), record.get("enabled") is True,
           record.get("config"), fields.text(record, "createdBy"),
           fields.timestamp(record, "disabledAt"), fields.text(record, "disabledBy"),
           fields.timestamp(record, "createdAt"), False)
    return [RowOp(TABLE, row)]
