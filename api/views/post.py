"""How a post is shown: the postView, and the reads that list posts without ranking them by
votes: post.get, post.search, actor.getPosts.

A postView follows the lexicon (`social.coves.community.post.get#postView`: author,
community, stats{upvotes, downvotes, score, commentCount}, viewer{vote, voteUri}, record, …)
plus what Coves' server sends and its clients read: `rkey`, `title`, `text` (the content) and
`facets`. Embeds get URLs for their blobs (sql/functions/views.sql coves_embed_view); a post's
blobs live in its community's repo, so on the community's PDS.
"""

from __future__ import annotations

import dataclasses
from typing import Final

from .actor import ACTOR, author_joins, author_view
from .community import TARGET
from .keyset import AFTER, FLOAT, INTEGER, TIME, Paged, SortKey
from .sql import Query
from .visibility import account_visible, community_public, community_readable, not_blocked, post_live

__all__ = ["ACTOR_POSTS", "ACTOR_POSTS_SORT", "GET", "POST_DOCUMENT", "POST_JOINS", "POST_VIEW",
           "SEARCH", "SEARCH_SORTS", "feed_items"]

_COMMUNITY_PDS: Final = "coalesce(ci.pds_endpoint, :pds::text)"
_STATS: Final = ("jsonb_build_object('upvotes', p.upvote_count, 'downvotes', p.downvote_count, "
                 "'score', p.score, 'commentCount', p.comment_count)")

POST_VIEW: Final = f"""coves_with(coves_with(jsonb_strip_nulls(jsonb_build_object(
    'uri', p.uri,
    'cid', p.cid,
    'rkey', p.rkey,
    'author', {author_view("p.author_did")},
    'community', jsonb_build_object(
        'did', p.community_did, 'name', c.name, 'handle', coalesce(ci.handle, c.handle),
        'avatar', coves_image_url(:cdn::text, {_COMMUNITY_PDS}, p.community_did, c.avatar_cid)),
    'title', p.title,
    'text', coalesce(p.content, ''),
    'embed', coves_embed_view(p.embed, :cdn::text, {_COMMUNITY_PDS}, p.community_did),
    'language', p.langs[1],
    'createdAt', coves_iso(p.created_at),
    'indexedAt', coves_iso(p.indexed_at),
    'stats', {_STATS},
    'viewer', CASE WHEN :viewer::text IS NOT NULL
                   THEN jsonb_build_object('vote', myvote.direction, 'voteUri', myvote.uri) END
)), 'facets', p.facets), 'record', p.record)"""
"""postView of row `p`, with POST_JOINS (c, ci, ai, ap, myvote) joined."""

POST_JOINS: Final = f"""
  LEFT JOIN communities AS c ON c.did = p.community_did
  LEFT JOIN identities AS ci ON ci.did = p.community_did
  {author_joins("p.author_did")}
  LEFT JOIN LATERAL (SELECT v.uri, v.direction FROM votes AS v
                      WHERE v.did = :viewer::text AND v.subject_uri = p.uri AND v.deleted_at IS NULL
                      ORDER BY v.rev DESC LIMIT 1) AS myvote ON true"""

# A deleted post, for post.get: where it was and who wrote it, nothing of what it said.
_TOMBSTONE: Final = f"""jsonb_build_object(
    '$type', 'social.coves.community.post.get#postView',
    'uri', p.uri, 'cid', '', 'rkey', p.rkey,
    'author', jsonb_build_object('did', p.author_did, 'handle', coalesce(ai.handle, 'handle.invalid')),
    'community', jsonb_build_object('did', p.community_did, 'name', coalesce(c.name, '')),
    'text', '', 'record', NULL::jsonb, 'isDeleted', true,
    'createdAt', coves_iso(p.first_seen_at), 'indexedAt', coves_iso(p.indexed_at),
    'deletedAt', coves_iso(p.deleted_at), 'stats', {_STATS})"""


def feed_items(shown: str = "shown") -> str:
    """A JSON array of feedViewPost for the rows of CTE `shown(uri, ord)` with ord <= :limit."""
    return f"""coalesce((SELECT json_agg(jsonb_build_object('post', v.view) ORDER BY v.ord) FROM (
           SELECT {shown}.ord, {POST_VIEW} AS view
             FROM {shown} JOIN posts AS p ON p.uri = {shown}.uri
             {POST_JOINS}
            WHERE {shown}.ord <= :limit) AS v), '[]'::json)::text"""


GET: Final = Query(f"""
SELECT coalesce(json_agg(entry ORDER BY ord), '[]'::json)::text AS posts FROM (
    SELECT wanted.ord, CASE
        WHEN p.uri IS NULL OR c.did IS NULL OR p.author_did IS NULL
             OR NOT ({community_readable("c")}) OR NOT ({account_visible("p.author_did")})
            THEN jsonb_build_object('$type', 'social.coves.community.post.get#notFoundPost',
                                    'uri', wanted.uri, 'notFound', true)
        WHEN p.deleted_at IS NOT NULL THEN {_TOMBSTONE}
        WHEN NOT ({not_blocked("c")})
            THEN jsonb_build_object('$type', 'social.coves.community.post.get#blockedPost',
                                    'uri', p.uri, 'blocked', true,
                                    'community', jsonb_build_object('did', c.did, 'name', c.name))
        ELSE jsonb_build_object('$type', 'social.coves.community.post.get#postView') || {POST_VIEW}
        END AS entry
      FROM unnest(:uris::text[]) WITH ORDINALITY AS wanted(uri, ord)
      LEFT JOIN posts AS p ON p.uri = wanted.uri
      {POST_JOINS}
) AS entries""")
"""post.get: `posts`, one entry per requested URI, in request order."""


def _post_listing(where: str, sort: SortKey, *, ctes: str, found: str = "true") -> Paged:
    """A plain keyset listing of posts (no snapshot: search and author pages).

    `ctes` are prepended (each followed by a comma); `found` says whether the subject exists.
    """
    on_page = dataclasses.replace(sort, expr="page.k", tie="page.uri")
    return Paged.keyset(f"""
WITH {ctes}
page AS (
    SELECT p.uri, {sort.expr} AS k
      FROM posts AS p JOIN communities AS c ON c.did = p.community_did
     WHERE {post_live("p")} AND {where} AND {AFTER}
     ORDER BY {sort.order}
     LIMIT :limit + 1
),
shown AS (SELECT page.uri, page.k, row_number() OVER (ORDER BY {on_page.order}) AS ord FROM page)
SELECT {found} AS found,
       {feed_items()} AS items,
       (SELECT count(*) FROM page) > :limit AS more,
       (SELECT k FROM shown WHERE ord = :limit) AS last_k,
       (SELECT uri FROM shown WHERE ord = :limit) AS last_tie""", sort.after())


# post.search: websearch syntax ("quoted phrases", -exclusions, or) over title and content,
# stored with each post (sql/0009: indexed, and ranked without parsing the text again).
POST_DOCUMENT: Final = "p.search_document"
_QUERY: Final = "websearch_to_tsquery('simple', :q::text)"
_SEARCH_FILTERS: Final = f"""
    {POST_DOCUMENT} @@ {_QUERY}
    AND p.created_at >= coalesce(:since::timestamptz, '-infinity'::timestamptz)
    AND (:author_did::text IS NULL OR p.author_did = :author_did::text)
    AND (:author_handle::text IS NULL OR p.author_did = (
            SELECT i.did FROM identities AS i WHERE lower(i.handle) = :author_handle::text
             ORDER BY i.handle_time_us DESC NULLS LAST LIMIT 1))
    AND (:tags::text[] IS NULL OR p.tags && :tags::text[])
    AND (:post_type::text IS NULL OR coves_post_type(p.embed) = :post_type::text)
    AND CASE WHEN :scoped::boolean THEN p.community_did = (SELECT did FROM target)
             ELSE {community_public("c")} AND {not_blocked("c")} END"""
SEARCH_SORTS: Final = {
    "relevance": SortKey("relevance", f"ts_rank_cd({POST_DOCUMENT}, {_QUERY})::double precision",
                         FLOAT, "p.uri"),
    "new": SortKey("new", "p.created_at", TIME, "p.uri"),
    "top": SortKey("top", "p.score", INTEGER, "p.uri"),
}


def _search(sort: SortKey) -> Paged:
    # the optional `community` filter resolves like community.get (CTE `target`)
    return _post_listing(_SEARCH_FILTERS, sort, ctes=TARGET + ",")


SEARCH: Final = {name: _search(sort) for name, sort in SEARCH_SORTS.items()}
"""post.search by sort: items (feedViewPost array), more, last_k, last_tie."""

# actor.getPosts: the author's posts newest first, in communities the viewer may read and has
# not blocked; `posts_with_media` keeps image and video posts.
ACTOR_POSTS_SORT: Final = SortKey("new", "p.created_at", TIME, "p.uri")
ACTOR_POSTS: Final = _post_listing(f"""
    p.author_did = (SELECT did FROM actor)
    AND {community_readable("c")} AND {not_blocked("c")}
    AND (NOT :media_only::boolean OR coves_post_type(p.embed) IN ('image', 'video'))
    AND (NOT :scoped::boolean OR p.community_did = (SELECT did FROM target))""",
                                   ACTOR_POSTS_SORT, ctes=f"{ACTOR}, {TARGET},",
                                   found="(SELECT did FROM actor) IS NOT NULL")
"""actor.getPosts: found (the actor), items (feedViewPost array), more, last_k, last_tie."""
