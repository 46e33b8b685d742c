"""social.coves.feed.vote → votes; keeps up/down counts, score and hot key of posts and comments
(in post_stats / comment_stats).

At most one vote per (voter, subject) counts: the voter's newest live vote (by rev; two of one
commit: `up` before `down`, so the choice never depends on storage order), so a newer vote
replaces an older one even if the client never deleted it, and deleting it makes an older live
one count again. Votes that arrive before their subject are counted as soon as the subject
arrives (the subject's insert counts them). A batch's votes change the counters by a delta
(engine/tables.py, Tally), so a vote costs the same on a post with ten votes or ten thousand.
"""

from __future__ import annotations

from typing import Final

from .. import syntax
from ..events import DELETE, Event
from ..tables import Column, Recount, RowOp, Tally
from . import fields
from .community_comment import COLLECTION as COMMENT, URI_MARK as COMMENT_MARK
from .community_post import COLLECTION as POST, URI_MARK as POST_MARK

__all__ = ["COLLECTION", "DIRECTIONS", "RECOUNTS", "TABLE", "TABLES", "handle"]

COLLECTION: Final = "social.coves.feed.vote"
DIRECTIONS: Final = frozenset({"up", "down"})

TABLE: Final = fields.record_table(
    "votes",
    Column("subject_uri", fields.IDENTIFIER, immutable=True),
    Column("subject_cid"),
    Column("direction"),
    Column("created_at", "timestamptz"),
    tracked=("subject_uri",),
)
TABLES: Final = (TABLE,)

# Each voter's newest live vote on the subject counts, by direction. A Tally (engine/tables.py):
# the writer applies a batch's votes as deltas per (voter, subject), counts a new post or comment
# at its insert, and recounts a subject in full when its row changed or a voter was purged.
_TALLY: Final = Tally(owner="did", value="direction", counters=(
    ("upvote_count", (("up", 1),)),
    ("downvote_count", (("down", 1),)),
    ("score", (("up", 1), ("down", -1))),
))
# See sql/functions/hot_key.sql; createdAt is capped by when we first saw the record. Set with
# the counters, also when a post or comment row is inserted (tables.merge_sql).
_HOT_KEY: Final = ("hot_key", "coves_hot_key(c.score::integer, "
                              "LEAST(COALESCE(t.created_at, t.first_seen_at), t.first_seen_at))")
_COUNTERS: Final = ("upvote_count", "downvote_count", "score")
RECOUNTS: Final = (
    Recount(target="post_stats", target_key="uri", columns=_COUNTERS, source="votes",
            source_fk="subject_uri", tally=_TALLY, derived=(_HOT_KEY,), key_contains=POST_MARK),
    Recount(target="comment_stats", target_key="uri", columns=_COUNTERS, source="votes",
            source_fk="subject_uri", tally=_TALLY, derived=(_HOT_KEY,), key_contains=COMMENT_MARK),
)


def handle(event: Event) -> list[RowOp]:
    if event.operation == DELETE:
        return [fields.deleted(TABLE, event)]
    record = event.record or {}
    direction = record.get("direction")
    if direction not in DIRECTIONS:
        raise fields.invalid("direction", "must be up or down")
    subject_uri, subject_cid = fields.ref_uri(record, "subject")
    subject = syntax.split_at_uri(subject_uri)
    if subject is None or subject[1] not in (POST, COMMENT):
        raise fields.invalid("subject.uri", "must be the at:// URI of a post or comment")
    return [fields.live(TABLE, event, subject_uri, subject_cid, direction,
                        fields.timestamp(record, "createdAt"))]
