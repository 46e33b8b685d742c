"""How aggregators (posting bots) and their authorizations are shown: aggregator.getServices,
.getAuthorizations, .listForCommunity.

An aggregator's declaration lives in its own repo, an authorization in the granting
community's repo; both disappear with a hidden account or a deleted record.
"""

from __future__ import annotations

from typing import Final

from .community import TARGET
from .keyset import AFTER, TIME, Paged, SortKey
from .sql import Query
from .visibility import account_visible, community_readable

__all__ = ["AUTHORIZATIONS", "AUTHORIZATIONS_SORT", "FOR_COMMUNITY", "SERVICES", "aggregator_view"]


def aggregator_view(a: str = "a", ident: str = "ai", *, detailed: str = "false") -> str:
    """aggregatorView of row `a` (aggregatorViewDetailed, with stats, when `detailed` holds)."""
    return f"""coves_with(jsonb_strip_nulls(jsonb_build_object(
        'did', {a}.did, 'displayName', {a}.display_name, 'description', {a}.description,
        'avatar', coves_image_url(:cdn::text, coalesce({ident}.pds_endpoint, :pds::text),
                                  {a}.did, {a}.avatar_cid),
        'createdAt', coves_iso({a}.created_at), 'maintainer', {a}.maintainer,
        'sourceUrl', {a}.source_url, 'recordUri', {a}.uri,
        'stats', CASE WHEN {detailed} THEN jsonb_build_object(
            'communitiesUsing', (SELECT count(DISTINCT z.community_did)
                                   FROM aggregator_authorizations AS z
                                  WHERE z.aggregator_did = {a}.did AND z.deleted_at IS NULL
                                    AND z.enabled),
            'postsCreated', (SELECT count(*) FROM posts AS p
                              WHERE p.author_did = {a}.did AND p.deleted_at IS NULL)) END
    )), 'configSchema', {a}.config_schema)"""


SERVICES: Final = Query(f"""
SELECT coalesce(json_agg(v.view ORDER BY v.ord), '[]'::json)::text AS views FROM (
    SELECT wanted.ord,
           jsonb_build_object('$type', CASE WHEN :detailed::boolean
                                            THEN 'social.coves.aggregator.defs#aggregatorViewDetailed'
                                            ELSE 'social.coves.aggregator.defs#aggregatorView' END)
           || {aggregator_view(detailed=":detailed::boolean")} AS view
      FROM unnest(:dids::text[]) WITH ORDINALITY AS wanted(did, ord)
      JOIN aggregators AS a ON a.did = wanted.did AND a.deleted_at IS NULL
      LEFT JOIN identities AS ai ON ai.did = a.did
     WHERE {account_visible("a.did")}
) AS v""")
"""aggregator.getServices: `views` for the known, visible aggregators among `:dids`, in order."""

AUTHORIZATIONS_SORT: Final = SortKey("created", "z.created_at", TIME, "z.uri")
_PAGE_ORDER: Final = "page.k DESC, page.uri DESC"


def _authorization_listing(subject: str, where: str, view: str, joins: str) -> Paged:
    return Paged.keyset(f"""
WITH {subject},
page AS (
    SELECT z.uri, z.created_at AS k
      FROM aggregator_authorizations AS z
      JOIN communities AS c ON c.did = z.community_did
      JOIN aggregators AS a ON a.did = z.aggregator_did AND a.deleted_at IS NULL
     WHERE z.deleted_at IS NULL AND {where}
       AND (NOT :enabled_only::boolean OR z.enabled)
       AND {community_readable("c")} AND {account_visible("a.did")}
       AND {AFTER}
     ORDER BY {AUTHORIZATIONS_SORT.order}
     LIMIT :limit + 1
),
shown AS (SELECT page.*, row_number() OVER (ORDER BY {_PAGE_ORDER}) AS ord FROM page)
SELECT (SELECT did FROM subject) IS NOT NULL AS found,
       coalesce((SELECT json_agg(v.view ORDER BY v.ord) FROM (
           SELECT shown.ord, {view} AS view
             FROM shown
             JOIN aggregator_authorizations AS z ON z.uri = shown.uri
             JOIN communities AS c ON c.did = z.community_did
             JOIN aggregators AS a ON a.did = z.aggregator_did
             {joins}
            WHERE shown.ord <= :limit) AS v), '[]'::json)::text AS items,
       (SELECT count(*) FROM page) > :limit AS more,
       (SELECT k FROM shown WHERE ord = :limit) AS last_k,
       (SELECT uri FROM shown WHERE ord = :limit) AS last_tie""", AUTHORIZATIONS_SORT.after())


_COMMUNITY_FIELDS: Final = ("'communityDid', c.did, 'communityName', c.name, "
                            "'communityHandle', coalesce(ci.handle, c.handle)")

AUTHORIZATIONS: Final = _authorization_listing(
    f"""subject AS (SELECT a.did FROM aggregators AS a
                     WHERE a.did = :aggregator::text AND a.deleted_at IS NULL
                       AND {account_visible("a.did")})""",
    "z.aggregator_did = (SELECT did FROM subject)",
    f"""coves_with(jsonb_strip_nulls(jsonb_build_object(
            'aggregator', {aggregator_view()}, 'createdAt', coves_iso(z.created_at),
            'enabled', z.enabled, 'recordUri', z.uri, {_COMMUNITY_FIELDS})), 'config', z.config)""",
    "LEFT JOIN identities AS ai ON ai.did = a.did LEFT JOIN identities AS ci ON ci.did = c.did")
"""aggregator.getAuthorizations: found (the aggregator), items (communityAuthView array), …"""

FOR_COMMUNITY: Final = _authorization_listing(
    f"{TARGET}, subject AS (SELECT did FROM target)",
    "z.community_did = (SELECT did FROM subject)",
    f"""coves_with(jsonb_strip_nulls(jsonb_build_object(
            'aggregatorDid', z.aggregator_did, {_COMMUNITY_FIELDS},
            'createdAt', coves_iso(z.created_at), 'createdBy', z.created_by,
            'disabledAt', coves_iso(z.disabled_at), 'disabledBy', z.disabled_by,
            'enabled', z.enabled, 'recordUri', z.uri)), 'config', z.config)""",
    "LEFT JOIN identities AS ci ON ci.did = c.did")
"""aggregator.listForCommunity: found (the community), items (authorizationView array), …"""
