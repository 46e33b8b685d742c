"""Feeds: a community's posts, the viewer's timeline, discover and all — each by hot, top or new.

Every feed is one statement: select the page (api/views/snapshot.py keeps a walk consistent
while votes move), then hydrate it into feedViewPosts (api/views/post.py). What each feed
draws from:

  community  posts of one readable community (by DID, handle or !name@domain)
  timeline   posts of the communities the viewer subscribes to (private ones too), minus blocked
  discover   posts of public communities, minus the viewer's blocked ones
  all        discover, optionally narrowed to post types (text, image, video, article, microblog)
"""

from __future__ import annotations

from typing import Final

from .community import TARGET
from .keyset import Paged
from .post import feed_items
from .snapshot import RANK_KEYS, RankedSource, ranked_page
from .sql import Query
from .visibility import community_exists, community_public, not_blocked, post_live

__all__ = ["FEEDS", "FEED_SOURCE"]

FEED_SOURCE: Final = RankedSource("posts", "p", joins="JOIN communities AS c ON c.did = p.community_did")

_PUBLIC: Final = f"{post_live('p')} AND {community_public('c')} AND {not_blocked('c')}"
# name → (CTEs before the page, the rows it draws from, whether its subject exists)
_SCOPES: Final = {
    "community": (TARGET + ",", f"{post_live('p')} AND p.community_did = (SELECT did FROM target)",
                  "(SELECT did FROM target) IS NOT NULL"),
    "timeline": ("", f"""{post_live('p')} AND {community_exists('c')} AND {not_blocked('c')}
        AND p.community_did IN (SELECT s.subject FROM subscriptions AS s
                                 WHERE s.did = :viewer::text AND s.deleted_at IS NULL)""", "true"),
    "discover": ("", _PUBLIC, "true"),
    "all": ("", f"""{_PUBLIC}
        AND (:post_types::text[] IS NULL OR coves_post_type(p.embed) = ANY(:post_types::text[]))""",
            "true"),
}


def _statement(ctes: str, page: str, found: str) -> Query:
    return Query(f"""
WITH {ctes}{page},
shown AS (SELECT page.uri, page.k, row_number() OVER (ORDER BY page.k DESC, page.uri DESC) AS ord
            FROM page)
SELECT {found} AS found,
       {feed_items()} AS items,
       (SELECT count(*) FROM page) > :limit AS more,
       (SELECT k FROM shown WHERE ord = :limit) AS last_k,
       (SELECT uri FROM shown WHERE ord = :limit) AS last_tie,
       pg_current_snapshot()::text AS snapshot,
       extract(epoch FROM now())::double precision AS snapshot_at""")


def _feed(scope: str, sort: str) -> Paged:
    ctes, where, found = _SCOPES[scope]
    first, later = ranked_page(FEED_SOURCE, where, sort)
    return Paged(_statement(ctes, first, found), _statement(ctes, later, found))


FEEDS: Final = {(scope, sort): _feed(scope, sort) for scope in _SCOPES for sort in RANK_KEYS}
"""(feed, sort) → statements returning found, items, more, last_k, last_tie, snapshot,
snapshot_at."""
