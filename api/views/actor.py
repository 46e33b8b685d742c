"""How actors are shown: the author view inside posts and comments, and actor.getProfile.

An actor is named by DID or handle (the handle we last resolved for it, `identities.handle`);
a DID without a resolved handle shows the handle `handle.invalid`, as atproto AppViews do.
Avatars and banners are blobs in the actor's own repo, so their URLs use the actor's PDS.
"""

from __future__ import annotations

from typing import Any, Final

from .sql import Query
from .visibility import account_visible, community_readable

__all__ = ["ACTOR", "PROFILE", "actor_args", "author_joins", "author_view"]


def author_view(did: str, ident: str = "ai", profile: str = "ap") -> str:
    """`social.coves.community.post.get#authorView` of `did`, from its identity and profile rows."""
    return (f"jsonb_build_object('did', {did}, "
            f"'handle', coalesce({ident}.handle, 'handle.invalid'), "
            f"'displayName', {profile}.display_name, "
            f"'avatar', coves_image_url(:cdn::text, coalesce({ident}.pds_endpoint, :pds::text), "
            f"{did}, {profile}.avatar_cid))")


def author_joins(did: str, ident: str = "ai", profile: str = "ap") -> str:
    """The joins `author_view(did, ident, profile)` reads."""
    return (f"LEFT JOIN identities AS {ident} ON {ident}.did = {did} "
            f"LEFT JOIN actor_profiles AS {profile} ON {profile}.did = {did} "
            f"AND {profile}.deleted_at IS NULL")


def actor_args(actor: str | None) -> dict[str, Any]:
    """`:actor_did`/`:actor_handle` for an at-identifier parameter (None: both NULL)."""
    if actor is None:
        return {"actor_did": None, "actor_handle": None}
    if actor.startswith("did:"):
        return {"actor_did": actor, "actor_handle": None}
    return {"actor_did": None, "actor_handle": actor.lower()}


ACTOR: Final = f"""
actor AS (
    SELECT i.did, i.handle, i.pds_endpoint, i.first_seen_at
      FROM identities AS i
     WHERE (i.did = :actor_did::text OR lower(i.handle) = :actor_handle::text)
       AND {account_visible("i.did")}
     ORDER BY i.did = :actor_did::text DESC, i.handle_time_us DESC NULLS LAST
     LIMIT 1
)"""
"""CTE `actor`: the visible account an at-identifier names (no row: unknown or hidden)."""

PROFILE: Final = Query(f"""
WITH {ACTOR}
SELECT jsonb_strip_nulls(jsonb_build_object(
           'did', a.did,
           'handle', coalesce(a.handle, 'handle.invalid'),
           'displayName', ap.display_name,
           'bio', ap.description,
           'bioFacets', ap.record -> 'bioFacets',
           'avatar', coves_image_url(:cdn::text, coalesce(a.pds_endpoint, :pds::text), a.did, ap.avatar_cid),
           'banner', coves_image_url(:cdn::text, coalesce(a.pds_endpoint, :pds::text), a.did, ap.banner_cid),
           'createdAt', coves_iso(coalesce(ap.created_at, a.first_seen_at)),
           'stats', jsonb_build_object(
               'postCount', (SELECT count(*) FROM posts AS p
                               JOIN communities AS c ON c.did = p.community_did
                              WHERE p.author_did = a.did AND p.deleted_at IS NULL
                                AND {community_readable("c")}),
               'commentCount', (SELECT count(*) FROM comments AS m
                                 WHERE m.did = a.did AND m.deleted_at IS NULL),
               'communityCount', (SELECT count(DISTINCT s.subject) FROM subscriptions AS s
                                   WHERE s.did = a.did AND s.deleted_at IS NULL))
       ))::text AS view
  FROM actor AS a
  LEFT JOIN actor_profiles AS ap ON ap.did = a.did AND ap.deleted_at IS NULL""")
"""actor.getProfile: one row with the profileViewDetailed, or no row (unknown or hidden)."""
