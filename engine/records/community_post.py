"""social.coves.community.post → post_records (content) + post_stats (counters, feed keys);
keeps communities.post_count exact.

Posts live in the community's repository: `record.community` must be that repo's DID. The
author must be a DID but need not be known yet (Coves drops such posts; we keep them). Updates
apply (Coves ignores them); deletes leave a tombstone.
"""

from __future__ import annotations

from typing import Final

from ..events import DELETE, Event
from ..tables import Column, Recount, RowOp, Tally
from . import fields

__all__ = ["COLLECTION", "RECOUNTS", "STATS", "TABLE", "TABLES", "handle"]

COLLECTION: Final = "social.coves.community.post"
URI_MARK: Final = f"/{COLLECTION}/"  # how a post URI is told apart from a comment URI

TABLE: Final = fields.record_table(
    "post_records",
    Column("author_did", fields.IDENTIFIER, immutable=True),
    Column("title"),
    Column("content"),
    Column("facets", "jsonb"),
    Column("embed", "jsonb"),
    Column("labels", "text[]"),
    Column("langs", "text[]"),
    Column("tags", "text[]"),
    Column("record", "jsonb"),
    Column("created_at", "timestamptz"),
    repo="community_did",
    actors=("community_did", "author_did"),
)
# The narrow twin the counters and feed keys live in (sql/0005): written with the same rev, so
# both rows always describe the same version of the post.
STATS: Final = fields.stats_table("post_stats", Column("created_at", "timestamptz"), twin=TABLE,
                                  tracked=("community_did",))
TABLES: Final = (TABLE, STATS)
RECOUNTS: Final = (
    Recount(target="communities", target_key="did", columns=("post_count",),
            source="post_stats", source_fk="community_did",
            tally=Tally.rows("uri", "post_count", owner_is_key=True)),
)


def handle(event: Event) -> list[RowOp]:
    if event.operation == DELETE:
        return [fields.deleted(TABLE, event), fields.twin_row(STATS, event, deleted=True)]
    record = event.record or {}
    community = record.get("community")
    if community != event.did:
        raise fields.wrong_repo("community", community, event.did)
    created_at = fields.timestamp(record, "createdAt")
    row = fields.live(
        TABLE, event,
        fields.text(record, "author"),
        fields.text(record, "title"),
        fields.text(record, "content"),
        record.get("facets"),
        record.get("embed"),
        fields.self_labels(record),
        fields.strings(record, "langs"),
        fields.strings(record, "tags"),
        record,
        created_at,
    )
    return [row, fields.twin_row(STATS, event, created_at)]
