"""social.coves.feed.*: getCommunity, getTimeline, getDiscover, getAll (hot | top | new)."""

from __future__ import annotations

from typing import Any

from .errors import NotFound
from .params import COMMUNITY_REF
from .views.community import community_ref_args
from .views.feed import FEEDS
from .views.keyset import page_body
from .views.snapshot import fetch_walk
from .xrpc import Body, Call, Queries

__all__ = ["queries"]

queries = Queries()


async def _feed(call: Call, scope: str, **extra: Any) -> Body:
    params = call.params
    sort = params["sort"]
    args = {**call.view_args(), "limit": params["limit"], **extra}
    row, cursor = await fetch_walk(call.db, FEEDS[(scope, sort)], call.api.cursors,
                                   f"feed.{scope}", sort, params["cursor"], params["timeframe"],
                                   args)
    if not row["found"]:
        raise NotFound(f"Community not found: {params.get('community')}", error="CommunityNotFound")
    return page_body("feed", row["items"], cursor)


# Coves' server routes this as social.coves.communityFeed.getCommunity; its clients call that.
@queries.query("social.coves.feed.getCommunity", aliases=("social.coves.communityFeed.getCommunity",),
               formats={"community": COMMUNITY_REF}, shared=True)
async def get_community_feed(call: Call) -> Body:
    """Posts of one community."""
    return await _feed(call, "community", **community_ref_args(call.params["community"]))


@queries.query("social.coves.feed.getTimeline", auth="required")
async def get_timeline(call: Call) -> Body:
    """Posts of the communities the caller subscribes to."""
    return await _feed(call, "timeline")


@queries.query("social.coves.feed.getDiscover", shared=True)
async def get_discover(call: Call) -> Body:
    """Posts of every public community."""
    return await _feed(call, "discover")


@queries.query("social.coves.feed.getAll", shared=True)
async def get_all(call: Call) -> Body:
    """Posts of every public community, optionally of some post types only."""
    wanted = set(call.params["postTypes"] or ())
    if call.params["postType"] is not None:
        wanted.add(call.params["postType"])
    return await _feed(call, "all", post_types=sorted(wanted) or None)
