"""social.coves.aggregator.*: getServices, getAuthorizations, listForCommunity."""

from __future__ import annotations

from .errors import NotFound
from .params import COMMUNITY_REF
from .views import aggregator as views
from .views.community import community_ref_args
from .views.keyset import fetch_page, page_body
from .xrpc import Body, Call, Queries, RawJson

__all__ = ["queries"]

queries = Queries()


@queries.query("social.coves.aggregator.getServices")
async def get_services(call: Call) -> Body:
    """Views of the requested aggregators we know (unknown DIDs are left out)."""
    args = {**call.view_args(), "dids": call.params["dids"], "detailed": call.params["detailed"]}
    views_json = await call.db.fetchval(views.SERVICES.text, *views.SERVICES.args(args))
    return RawJson(b'{"views":' + views_json.encode() + b"}")


@queries.query("social.coves.aggregator.getAuthorizations")
async def get_authorizations(call: Call) -> Body:
    """Communities that authorized an aggregator (enabled ones only, unless enabledOnly=false)."""
    params = call.params
    args = {**call.view_args(), "aggregator": params["aggregatorDid"], "limit": params["limit"],
            "enabled_only": params["enabledOnly"]}
    row, cursor = await fetch_page(call.db, views.AUTHORIZATIONS, call.api.cursors,
                                   "aggregator.getAuthorizations", views.AUTHORIZATIONS_SORT,
                                   params["cursor"], args)
    if not row["found"]:
        raise NotFound(f"Aggregator not found: {params['aggregatorDid']}", error="AggregatorNotFound")
    return page_body("authorizations", row["items"], cursor)


@queries.query("social.coves.aggregator.listForCommunity", formats={"community": COMMUNITY_REF})
async def list_for_community(call: Call) -> Body:
    """Aggregators a community authorized (all, or enabled ones with enabledOnly=true)."""
    params = call.params
    args = {**call.view_args(), **community_ref_args(params["community"]),
            "limit": params["limit"], "enabled_only": params["enabledOnly"]}
    row, cursor = await fetch_page(call.db, views.FOR_COMMUNITY, call.api.cursors,
                                   "aggregator.listForCommunity", views.AUTHORIZATIONS_SORT,
                                   params["cursor"], args)
    if not row["found"]:
        raise NotFound(f"Community not found: {params['community']}", error="CommunityNotFound")
    return page_body("aggregators", row["items"], cursor)
