"""How communities are shown, found and listed: community.get, .list, .search, .getSubscribers.

Views carry the counts both at the top level (`subscriberCount`, `memberCount`, `postCount`:
what Coves' server sends and its clients read) and in `stats` (the lexicon). We index no
membership records, so `memberCount` reports the subscriber count.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

from ..params import split_community_name
from .actor import author_joins
from .keyset import AFTER, FLOAT, INTEGER, TEXT, TIME, Paged, SortKey
from .sql import Query
from .visibility import account_visible, community_listed, community_readable

__all__ = ["COMMUNITY_JOINS", "GET", "LIST", "LIST_SORTS", "SEARCH", "SEARCH_SORT", "SUBSCRIBERS",
           "SUBSCRIBERS_SORT", "TARGET", "community_ref_args", "community_view"]

_COUNTS: Final = ("'subscriberCount', c.subscriber_count, 'memberCount', c.subscriber_count, "
                  "'postCount', c.post_count")


def community_view(*, detailed: bool) -> str:
    """communityView (or communityViewDetailed) of row `c`, joined with COMMUNITY_JOINS."""
    fields = [
        "'did', c.did", "'handle', coalesce(ci.handle, c.handle)", "'name', c.name",
        "'displayName', c.display_name", "'description', c.description",
        "'avatar', coves_image_url(:cdn::text, coalesce(ci.pds_endpoint, :pds::text), c.did, c.avatar_cid)",
        "'visibility', c.visibility", _COUNTS, f"'stats', jsonb_build_object({_COUNTS})",
        "'viewer', CASE WHEN :viewer::text IS NOT NULL THEN jsonb_build_object("
        "'subscribed', mysub.uri IS NOT NULL, 'subscriptionUri', mysub.uri, "
        "'blocked', myblock.uri IS NOT NULL, 'blockUri', myblock.uri) END",
    ]
    if detailed:
        fields += [
            "'banner', coves_image_url(:cdn::text, coalesce(ci.pds_endpoint, :pds::text), c.did, c.banner_cid)",
            "'descriptionFacets', c.record -> 'descriptionFacets'",
            "'createdAt', coves_iso(c.created_at)", "'createdBy', c.created_by",
            "'hostedBy', c.hosted_by", "'moderationType', c.moderation_type",
            "'contentWarnings', to_jsonb(c.content_warnings)",
        ]
    return f"jsonb_strip_nulls(jsonb_build_object({', '.join(fields)}))"


COMMUNITY_JOINS: Final = """
  LEFT JOIN identities AS ci ON ci.did = c.did
  LEFT JOIN LATERAL (SELECT s.uri FROM subscriptions AS s
                      WHERE s.did = :viewer::text AND s.subject = c.did AND s.deleted_at IS NULL
                      ORDER BY s.rev DESC LIMIT 1) AS mysub ON true
  LEFT JOIN LATERAL (SELECT b.uri FROM community_blocks AS b
                      WHERE b.did = :viewer::text AND b.subject = c.did AND b.deleted_at IS NULL
                      ORDER BY b.rev DESC LIMIT 1) AS myblock ON true"""


def community_ref_args(ref: str | None) -> dict[str, Any]:
    """`:c_did`, `:c_handle`, `:c_name`, `:c_host` for a community reference (None: no filter).

    A DID matches itself; a handle matches the profile's handle or the resolved one;
    `!name@domain` matches the handle `c-name.domain` or a community named `name` hosted by
    `did:web:domain`.
    """
    args: dict[str, Any] = {"c_did": None, "c_handle": None, "c_name": None, "c_host": None}
    if ref is None:
        return args
    named = split_community_name(ref)
    if named is not None:
        name, domain = named
        args.update(c_handle=f"c-{name}.{domain}", c_name=name, c_host=f"did:web:{domain}")
    elif ref.startswith("did:"):
        args["c_did"] = ref
    else:
        args["c_handle"] = ref.lower()
    return args


TARGET: Final = f"""
target AS (
    SELECT c.did
      FROM (SELECT :c_did::text AS did
            UNION ALL
            SELECT x.did FROM communities AS x WHERE lower(x.handle) = :c_handle::text
            UNION ALL
            SELECT i.did FROM identities AS i WHERE lower(i.handle) = :c_handle::text
            UNION ALL
            SELECT x.did FROM communities AS x
             WHERE lower(x.name) = :c_name::text AND x.hosted_by = :c_host::text
               AND x.deleted_at IS NULL) AS named
      CROSS JOIN LATERAL (SELECT c.did FROM communities AS c
                           WHERE c.did = named.did AND {community_readable("c")}
                          OFFSET 0) AS c
     ORDER BY c.did
     LIMIT 1
)"""
# One branch per way of naming a community, each on its own index: OR-ed together in one WHERE
# they made Postgres filter every community (~9 ms at 10k communities, most of a feed request).
# The named DIDs are few, so each is looked up by primary key (the LATERAL with OFFSET 0 keeps
# the planner from walking the whole primary key in DID order instead, which a generic plan —
# one not made for the parameters' values, see engine/service.py — estimated cheaper: 3.6 ms).
"""CTE `target`: the readable community a reference names (no row: unknown or not for you)."""

GET: Final = Query(f"""
WITH {TARGET}
SELECT {community_view(detailed=True)}::text AS view
  FROM target JOIN communities AS c ON c.did = target.did
  {COMMUNITY_JOINS}""")
"""community.get: one row with the communityViewDetailed, or none."""


def _listing(ranked: str, sort: SortKey) -> Paged:
    """A paged community listing: `ranked` yields (did, k) rows; views hydrated in order."""
    on_ranked = dataclasses.replace(sort, expr="r.k", tie="r.did")
    on_page = dataclasses.replace(sort, expr="page.k", tie="page.did")
    return Paged.keyset(f"""
WITH ranked AS ({ranked}),
page AS (
    SELECT r.did, r.k FROM ranked AS r
     WHERE {AFTER}
     ORDER BY {on_ranked.order}
     LIMIT :limit + 1
),
shown AS (
    SELECT page.*, row_number() OVER (ORDER BY {on_page.order}) AS ord
      FROM page
)
SELECT coalesce((SELECT json_agg(v.view ORDER BY v.ord) FROM (
           SELECT shown.ord, {community_view(detailed=False)} AS view
             FROM shown JOIN communities AS c ON c.did = shown.did
             {COMMUNITY_JOINS}
            WHERE shown.ord <= :limit) AS v), '[]'::json)::text AS items,
       (SELECT count(*) FROM page) > :limit AS more,
       (SELECT k FROM shown WHERE ord = :limit) AS last_k,
       (SELECT did FROM shown WHERE ord = :limit) AS last_tie""",
                 on_ranked.after())


# community.list filters: `visibility` narrows the listed set; `subscribed=true` keeps the
# viewer's subscriptions (anonymous: nothing). `category` and `language` are not indexed.
_LIST_FILTERS: Final = f"""
    {community_listed("c")}
    AND (:visibility::text IS NULL OR c.visibility = :visibility::text)
    AND (:subscribed_only::boolean IS NOT TRUE OR EXISTS (
            SELECT 1 FROM subscriptions AS s WHERE s.did = :viewer::text AND s.subject = c.did
               AND s.deleted_at IS NULL))
    AND NOT EXISTS (SELECT 1 FROM community_blocks AS b WHERE b.did = :viewer::text
                       AND b.subject = c.did AND b.deleted_at IS NULL)"""

LIST_SORTS: Final = {
    "popular": SortKey("popular", "c.subscriber_count", INTEGER, "c.did"),
    # Most recent live post first; communities without posts last (as of 1970). On post_stats,
    # whose (community_did, created_at) index answers each community with one probe: through
    # the `posts` view (a join with post_records) a page took 2.2-2.8 s at 10k communities and
    # 1M posts, against 90-130 ms (bench dataset, 2026-11-26).
    "active": SortKey("active", "coalesce((SELECT max(p.created_at) FROM post_stats AS p WHERE "
                                "p.community_did = c.did AND p.deleted_at IS NULL), 'epoch')",
                      TIME, "c.did"),
    "new": SortKey("new", "c.created_at", TIME, "c.did"),
    "alphabetical": SortKey("alphabetical", "lower(c.name)", TEXT, "c.did", ascending=True),
}
LIST: Final = {name: _listing(f"SELECT c.did, {sort.expr} AS k FROM communities AS c "
                              f"WHERE {_LIST_FILTERS}", sort)
               for name, sort in LIST_SORTS.items()}
"""community.list by sort: items (communityView array), more, last_k, last_tie."""

# Relevance: the best of name and display-name similarity, a description match at half
# weight (sql/functions/search.sql: trigram similarity, or the plain fallback).
_RELEVANCE: Final = ("greatest(coves_text_similarity(c.name, :q::text), "
                     "coves_text_similarity(c.display_name, :q::text), "
                     "0.5 * coves_text_similarity(c.description, :q::text))")
SEARCH_SORT: Final = SortKey("relevance", _RELEVANCE, FLOAT, "c.did")
SEARCH: Final = _listing(f"""
    SELECT c.did, {_RELEVANCE} AS k FROM communities AS c
     WHERE {community_listed("c")}
       AND NOT EXISTS (SELECT 1 FROM community_blocks AS b WHERE b.did = :viewer::text
                          AND b.subject = c.did AND b.deleted_at IS NULL)
       AND (coves_text_matches(c.name, :q::text) OR coves_text_matches(c.display_name, :q::text)
            OR coves_text_matches(c.description, :q::text))""", SEARCH_SORT)
"""community.search: like LIST, ordered by relevance to `:q`."""

SUBSCRIBERS_SORT: Final = SortKey("subscribed", "s.created_at", TIME, "s.uri")
SUBSCRIBERS: Final = Paged.keyset(f"""
WITH {TARGET},
page AS (
    SELECT s.uri, s.did, s.created_at
      FROM subscriptions AS s
     WHERE s.subject = (SELECT did FROM target) AND s.deleted_at IS NULL
       AND {account_visible("s.did")}
       -- one entry per subscriber: a client that wrote two records counts once (OFFSET 0
       -- keeps this a probe per row shown: as a join, Postgres read every subscriber again)
       AND NOT EXISTS (SELECT 1 FROM subscriptions AS s2 WHERE s2.did = s.did
                          AND s2.subject = s.subject AND s2.deleted_at IS NULL AND s2.uri > s.uri
                       OFFSET 0)
       AND {AFTER}
     ORDER BY {SUBSCRIBERS_SORT.order}
     LIMIT :limit + 1
),
shown AS (SELECT page.*, row_number() OVER (ORDER BY page.created_at DESC, page.uri DESC) AS ord
            FROM page)
SELECT (SELECT did FROM target) IS NOT NULL AS found,
       coalesce((SELECT json_agg(jsonb_strip_nulls(jsonb_build_object(
                    'did', shown.did,
                    'handle', coalesce(ai.handle, 'handle.invalid'),
                    'displayName', ap.display_name,
                    'avatar', coves_image_url(:cdn::text, coalesce(ai.pds_endpoint, :pds::text),
                                              shown.did, ap.avatar_cid),
                    'subscribedAt', coves_iso(shown.created_at))) ORDER BY shown.ord)
                   FROM shown {author_joins("shown.did")}
                  WHERE shown.ord <= :limit), '[]'::json)::text AS items,
       (SELECT count(*) FROM page) > :limit AS more,
       (SELECT created_at FROM shown WHERE ord = :limit) AS last_k,
       (SELECT uri FROM shown WHERE ord = :limit) AS last_tie""", SUBSCRIBERS_SORT.after())
"""community.getSubscribers: found, items (subscriberView array), more, last_k, last_tie."""
