"""social.coves.community.comment → comments; keeps posts.comment_count and
comments.reply_count exact (live direct children), in any arrival order.

Threading refs (`reply.root`, `reply.parent`) never change: an update that changes them is
refused (`immutable_field`). A delete keeps the row as a placeholder — content cleared, refs
kept — so the thread still renders; a newer create brings it back.
"""

from __future__ import annotations

from typing import Final

from .. import syntax
from ..events import DELETE, Event
from ..tables import Column, Recount, RowOp, Table
from . import fields
from .community_post import COLLECTION as POST, URI_MARK as POST_MARK

__all__ = ["COLLECTION", "RECOUNTS", "TABLE", "TABLES", "URI_MARK", "handle"]

COLLECTION: Final = "social.coves.community.comment"
URI_MARK: Final = f"/{COLLECTION}/"

TABLE: Final = Table(
    name="comments",
    key=("uri",),
    columns=(
        Column("uri", "text"),
        Column("did", "text"),
        Column("rkey", "text"),
        Column("rev", 'text COLLATE "C"'),
        Column("cid", "text"),
        Column("root_uri", "text", immutable=True),
        Column("root_cid", "text", immutable=True),
        Column("parent_uri", "text", immutable=True),
        Column("parent_cid", "text", immutable=True),
        Column("content", "text"),
        Column("facets", "jsonb"),
        Column("embed", "jsonb"),
        Column("labels", "text[]"),
        Column("langs", "text[]"),
        Column("record", "jsonb"),
        Column("created_at", "timestamptz"),
    ),
    tracked=("parent_uri",),
    actors=("did",),
    repo="did",
)
TABLES: Final = (TABLE,)
_CHILDREN: Final = ("FROM comments AS c WHERE c.parent_uri = k.key AND c.deleted_at IS NULL")
RECOUNTS: Final = (
    Recount(target="posts", target_key="uri", columns=("comment_count",), source="comments",
            source_fk="parent_uri", query=f"SELECT count(*) AS comment_count {_CHILDREN}",
            key_contains=POST_MARK),
    Recount(target="comments", target_key="uri", columns=("reply_count",), source="comments",
            source_fk="parent_uri", query=f"SELECT count(*) AS reply_count {_CHILDREN}",
            key_contains=URI_MARK),
)


def handle(event: Event) -> list[RowOp]:
    if event.operation == DELETE:
        return [RowOp(TABLE, fields.tombstone(TABLE, uri=event.uri, did=event.did, rkey=event.rkey,
                                              rev=event.rev))]
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
    row = (
        event.uri, event.did, event.rkey, event.rev, event.cid,
        root_uri, root_cid, parent_uri, parent_cid,
        fields.text(record, "content"),
        record.get("facets"),
        record.get("embed"),
        fields.self_labels(record),
        fields.strings(record, "langs"),
        record,
        fields.timestamp(record, "createdAt"),
        False,
    )
    return [RowOp(TABLE, row)]
