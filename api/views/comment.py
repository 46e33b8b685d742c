"""How comments are shown: the commentView, threads (comment.getComments) and actor.getComments.

A thread page is one statement: the page of top-level comments (ranked like feeds, so pages
stay consistent while votes move: api/views/snapshot.py), then their replies breadth-first —
at most REPLIES_PER_PARENT per comment, `depth` levels down, THREAD_MAX_COMMENTS in all — each
with its view and whether it has replies not shown (`hasMore`). Python only links the flat rows
into the nested threadViewComments (api/comment.py).

A deleted comment, or one whose author's account is hidden, is a placeholder: `isDeleted`,
no record, content or embed, an author reduced to its DID; its replies keep their place.
"""

from __future__ import annotations

import dataclasses
from typing import Final

from .actor import ACTOR, author_joins, author_view
from .community import TARGET
from .keyset import AFTER, TIME, Paged, SortKey
from .post import POST_JOINS, POST_VIEW
from .snapshot import RANK_KEYS, RankedSource, ranked_page, sort_key
from .sql import Query
from .visibility import account_visible, community_readable, not_blocked, post_live

__all__ = ["ACTOR_COMMENTS", "ACTOR_COMMENTS_SORT", "COMMENT_JOINS", "COMMENT_VIEW",
           "REPLIES_PER_PARENT", "THREAD_MAX_COMMENTS", "THREADS"]

# Replies shown under each comment; the rest are announced by hasMore (clients fetch them by
# asking for the thread again, deeper). Five keeps a 50-comment page of depth 10 readable.
REPLIES_PER_PARENT: Final = 5
# Comments in one response at most (top-level ones always fit: limit ≤ 100). Hydrating a
# comment costs ~20-40 µs in Postgres; 500 keeps the largest answer well under 50 ms.
THREAD_MAX_COMMENTS: Final = 500

COMMENTS: Final = RankedSource(
    "comments", "m", created=lambda column: f"coalesce({column}, m.first_seen_at)")

_STATS: Final = ("jsonb_build_object('upvotes', m.upvote_count, 'downvotes', m.downvote_count, "
                 "'score', m.score, 'replyCount', m.reply_count)")
_POST_REF: Final = "jsonb_build_object('uri', m.root_uri, 'cid', coalesce(m.root_cid, ''))"
_PARENT_REF: Final = ("CASE WHEN m.parent_uri IS DISTINCT FROM m.root_uri THEN jsonb_build_object("
                      "'uri', m.parent_uri, 'cid', coalesce(m.parent_cid, '')) END")
_TIMES: Final = ("'createdAt', coves_iso(coalesce(m.created_at, m.first_seen_at)), "
                 "'indexedAt', coves_iso(m.indexed_at)")

COMMENT_VIEW: Final = f"""CASE
    WHEN m.deleted_at IS NOT NULL OR NOT ({account_visible("m.did")}) THEN coves_with(jsonb_build_object(
        'uri', m.uri, 'cid', '',
        'author', jsonb_build_object('did', m.did, 'handle', 'handle.invalid'),
        'post', {_POST_REF}, {_TIMES}, 'stats', {_STATS},
        'record', NULL::jsonb, 'isDeleted', true,
        'deletionReason', CASE WHEN m.deleted_at IS NOT NULL THEN 'author' ELSE 'account' END),
        'parent', {_PARENT_REF})
    ELSE coves_with(coves_with(jsonb_strip_nulls(jsonb_build_object(
        'uri', m.uri, 'cid', m.cid,
        'author', {author_view("m.did")},
        'post', {_POST_REF},
        'embed', coves_embed_view(m.embed, :cdn::text, coalesce(ai.pds_endpoint, :pds::text), m.did),
        {_TIMES},
        'stats', {_STATS},
        'viewer', CASE WHEN :viewer::text IS NOT NULL
                       THEN jsonb_build_object('vote', myvote.direction, 'voteUri', myvote.uri) END
        )), 'parent', {_PARENT_REF}), 'record', m.record)
    END"""
"""commentView (or its placeholder) of row `m`, with COMMENT_JOINS (ai, ap, myvote)."""

COMMENT_JOINS: Final = f"""
  {author_joins("m.did")}
  LEFT JOIN LATERAL (SELECT v.uri, v.direction FROM votes AS v
                      WHERE v.did = :viewer::text AND v.subject_uri = m.uri AND v.deleted_at IS NULL
                      ORDER BY v.rev DESC LIMIT 1) AS myvote ON true"""

_ROOT: Final = f"""
root AS (
    SELECT p.uri FROM posts AS p JOIN communities AS c ON c.did = p.community_did
     WHERE p.uri = :post::text AND {post_live("p")} AND {community_readable("c")}
)"""


def _thread_statement(page: str, sort: str) -> Query:
    child = sort_key(COMMENTS, sort)
    return Query(f"""
WITH RECURSIVE {_ROOT},{page},
shown AS (SELECT page.uri, page.k, row_number() OVER (ORDER BY page.k DESC, page.uri DESC) AS ord
            FROM page),
tree(uri, parent_uri, depth, ord) AS (
    -- The parent column is an AT-URI as comments.uri is: byte-wise (sql/0012).
    SELECT shown.uri, :post::text COLLATE "C", 0, shown.ord FROM shown WHERE shown.ord <= :limit
    UNION ALL
    SELECT reply.uri, t.uri, t.depth + 1, reply.ord
      FROM tree AS t
      CROSS JOIN LATERAL (
          SELECT m.uri, row_number() OVER (ORDER BY {child.order}) AS ord
            FROM comments AS m
           WHERE m.parent_uri = t.uri
           ORDER BY {child.order}
           LIMIT :replies) AS reply
     WHERE t.depth < :depth
),
capped AS (SELECT tree.* FROM tree LIMIT :max_comments),
shown_replies AS (SELECT capped.parent_uri, count(*) AS n FROM capped GROUP BY capped.parent_uri)
SELECT (SELECT uri FROM root) IS NOT NULL AS found,
       (SELECT ({POST_VIEW})::text FROM posts AS p {POST_JOINS}
         WHERE p.uri = (SELECT uri FROM root)) AS post,
       coalesce((SELECT json_agg(json_build_object(
                    'uri', node.uri, 'parent', node.parent_uri, 'depth', node.depth,
                    'ord', node.ord, 'hasMore', node.has_more, 'view', node.view))
                   FROM (SELECT capped.uri, capped.parent_uri, capped.depth, capped.ord,
                                {COMMENT_VIEW} AS view,
                                (SELECT count(*) FROM comments AS x WHERE x.parent_uri = capped.uri)
                                    > coalesce(shown_replies.n, 0) AS has_more
                           FROM capped JOIN comments AS m ON m.uri = capped.uri
                           {COMMENT_JOINS}
                           LEFT JOIN shown_replies ON shown_replies.parent_uri = capped.uri) AS node),
                '[]'::json)::text AS nodes,
       (SELECT count(*) FROM page) > :limit AS more,
       (SELECT k FROM shown WHERE ord = :limit) AS last_k,
       (SELECT uri FROM shown WHERE ord = :limit) AS last_tie,
       pg_current_snapshot()::text AS snapshot,
       extract(epoch FROM now())::double precision AS snapshot_at""")


def _thread(sort: str) -> Paged:
    first, later = ranked_page(COMMENTS, "m.parent_uri = (SELECT uri FROM root)", sort)
    return Paged(_thread_statement(first, sort), _thread_statement(later, sort))


THREADS: Final = {sort: _thread(sort) for sort in RANK_KEYS}
"""comment.getComments by sort: found, post (postView), nodes (flat thread rows), more,
last_k, last_tie, snapshot, snapshot_at."""

# actor.getComments: the actor's live comments, newest first, on live posts the viewer may read
# in communities not blocked; optionally in one community.
ACTOR_COMMENTS_SORT: Final = SortKey("new", "m.created_at", TIME, "m.uri")
_ON_PAGE: Final = dataclasses.replace(ACTOR_COMMENTS_SORT, expr="page.k", tie="page.uri")
ACTOR_COMMENTS: Final = Paged.keyset(f"""
WITH {ACTOR}, {TARGET},
page AS (
    SELECT m.uri, m.created_at AS k
      FROM comments AS m
      JOIN posts AS p ON p.uri = m.root_uri
      JOIN communities AS c ON c.did = p.community_did
     WHERE m.did = (SELECT did FROM actor) AND m.deleted_at IS NULL
       AND {post_live("p")} AND {community_readable("c")} AND {not_blocked("c")}
       AND (NOT :scoped::boolean OR p.community_did = (SELECT did FROM target))
       AND {AFTER}
     ORDER BY {ACTOR_COMMENTS_SORT.order}
     LIMIT :limit + 1
),
shown AS (SELECT page.uri, page.k, row_number() OVER (ORDER BY {_ON_PAGE.order}) AS ord FROM page)
SELECT (SELECT did FROM actor) IS NOT NULL AS found,
       coalesce((SELECT json_agg(v.view ORDER BY v.ord) FROM (
           SELECT shown.ord, {COMMENT_VIEW} AS view
             FROM shown JOIN comments AS m ON m.uri = shown.uri
             {COMMENT_JOINS}
            WHERE shown.ord <= :limit) AS v), '[]'::json)::text AS items,
       (SELECT count(*) FROM page) > :limit AS more,
       (SELECT k FROM shown WHERE ord = :limit) AS last_k,
       (SELECT uri FROM shown WHERE ord = :limit) AS last_tie""", ACTOR_COMMENTS_SORT.after())
"""actor.getComments: found, items (commentView array), more, last_k, last_tie."""
