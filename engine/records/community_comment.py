"""social.coves.community.comment → comment_records (content) + comment_stats (counters, thread
keys); keeps post_stats.comment_count and comment_stats.reply_count exact (live direct
children), in any arrival order.

Threading refs (`reply.root`, `reply.parent`) never change: an update that changes them is
refused (`immutable_field`). A delete keeps the row as a placeholder — content cleared, refs
kept — so the thread still renders; a newer create brings it back.
"""

from __future__ import annotations

from typing import Final

from .. import syntax
from ..events import DELETE, Event
from ..tables import Column, Recount, RowOp, Tally
from . import fields
from .community_post import COLLECTION as POST, URI_MARK as POST_MARK

__all__ = ["COLLECTION", "RECOUNTS", "STATS", "TABLE", "TABLES", "URI_MARK", "handle"]

COLLECTION: Final = "social.coves.community.comment"
URI_MARK: Final = f"/{COLLECTION}/"

TABLE: Final = fields.record_table(
    "comment_records",
    Column("root_uri", fields.IDENTIFIER, immutable=True),
    Column("root_cid", immutable=True),
    Column("parent_uri", fields.IDENTIFIER, immutable=True),
    Column("parent_cid", immutable=True),
    Column("content"),
    Column("facets", "jsonb"),
    Column("embed", "jsonb"),
    Column("labels", "text[]"),
    Column("langs", "text[]"),
    Column("record", "jsonb"),
    Column("created_at", "timestamptz"),
)
# The narrow twin holding counters and thread keys (sql/0005), written with the same rev.
STATS: Final = fields.stats_table(
    "comment_stats",
    Column("root_uri", fields.IDENTIFIER, immutable=True),
    Column("parent_uri", fields.IDENTIFIER, immutable=True),
    Column("created_at", "timestamptz"),
    twin=TABLE,
    tracked=("parent_uri",),
)
TABLES: Final = (TABLE, STATS)
# Live direct children, kept by deltas (engine/tables.py, Tally): a comment costs the same
# under a post with ten comments or ten thousand.
RECOUNTS: Final = (
    Recount(target="post_stats", target_key="uri", columns=("comment_count",),
            source="comment_stats", source_fk="parent_uri",
            tally=Tally.rows("uri", "comment_count", owner_is_key=True), key_contains=POST_MARK),
    Recount(target="comment_stats", target_key="uri", columns=("reply_count",),
            source="comment_stats", source_fk="parent_uri",
            tally=Tally.rows("uri", "reply_count", owner_is_key=True), key_contains=URI_MARK),
)


def handle(event: Event) -> list[RowOp]:
    if event.operation == DELETE:
        return [fields.deleted(TABLE, event), fields.twin_row(STATS, event, deleted=True)]
    record = event.record or {}
    root_uri, root_cid = fields.ref_uri(record, "reply", "root")
    parent_uri, parent_cid = fields.ref_uri(record, "reply", "parent")
    root = syntax.split_at_uri(root_uri)
    if root is None or root[1] != POST:
        raise fields.invalid("reply.root.uri", "must be the at:// URI of a post")
    parent = syntax.split_at_uri(parent_uri)
    if parent is None or parent[1] not in (POST, COLLECTION):
        raise fields.invalid("reply.parent.uri", "must be the at:// URI of a post or comment")
    if parent_uri == event.uri:
        raise fields.invalid("reply.parent.uri", "a comment cannot reply to itself")
    created_at = fields.timestamp(record, "createdAt")
    row = fields.live(
        TABLE, event,
        root_uri, root_cid, parent_uri, parent_cid,
        fields.text(record, "content"),
        record.get("facets"),
        record.get("embed"),
        fields.self_labels(record),
        fields.strings(record, "langs"),
        record,
        created_at,
    )
    return [row, fields.twin_row(STATS, event, root_uri, parent_uri, created_at)]
