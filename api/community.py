"""social.coves.community.*: get, list, search, getSubscribers."""

from __future__ import annotations

from typing import Final

from .errors import NotFound
from .params import COMMUNITY_REF
from .views import community as views
from .views.keyset import fetch_page, page_body
from .xrpc import Body, Call, Queries, RawJson

__all__ = ["queries"]

queries = Queries()
_COMMUNITY_REF: Final = {"community": COMMUNITY_REF}


@queries.query("social.coves.community.get", formats=_COMMUNITY_REF, shared=True)
async def get_community(call: Call) -> Body:
    """communityViewDetailed of a community named by DID, handle or !name@domain."""
    args = {**call.view_args(), **views.community_ref_args(call.params["community"])}
    view = await call.db.fetchval(views.GET.text, *views.GET.args(args))
    if view is None:
        raise NotFound(f"Community not found: {call.params['community']}", error="CommunityNotFound")
    return RawJson(view.encode())


@queries.query("social.coves.community.list", shared=True)
async def list_communities(call: Call) -> Body:
    """Communities the caller may discover, by popular | active | new | alphabetical."""
    params = call.params
    sort = views.LIST_SORTS[params["sort"]]
    args = {**call.view_args(), "limit": params["limit"], "visibility": params["visibility"],
            "subscribed_only": params["subscribed"]}
    row, cursor = await fetch_page(call.db, views.LIST[sort.name], call.api.cursors,
                                   f"community.list:{sort.name}", sort, params["cursor"], args)
    return page_body("communities", row["items"], cursor)


@queries.query("social.coves.community.search")
async def search_communities(call: Call) -> Body:
    """Communities whose name, display name or description match `q`, most relevant first."""
    params = call.params
    args = {**call.view_args(), "limit": params["limit"], "q": params["q"]}
    row, cursor = await fetch_page(call.db, views.SEARCH, call.api.cursors, "community.search",
                                   views.SEARCH_SORT, params["cursor"], args)
    return page_body("communities", row["items"], cursor)


@queries.query("social.coves.community.getSubscribers", formats=_COMMUNITY_REF)
async def get_subscribers(call: Call) -> Body:
    """A community's subscribers, newest subscription first."""
    params = call.params
    args = {**call.view_args(), **views.community_ref_args(params["community"]),
            "limit": params["limit"]}
    row, cursor = await fetch_page(call.db, views.SUBSCRIBERS, call.api.cursors,
                                   "community.getSubscribers", views.SUBSCRIBERS_SORT,
                                   params["cursor"], args)
    if not row["found"]:
        raise NotFound(f"Community not found: {params['community']}", error="CommunityNotFound")
    return page_body("subscribers", row["items"], cursor)
