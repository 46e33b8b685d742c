"""social.coves.actor.*: getProfile, getPosts, getComments."""

from __future__ import annotations

from .errors import NotFound
from .params import COMMUNITY_REF
from .views import actor as views
from .views.comment import ACTOR_COMMENTS, ACTOR_COMMENTS_SORT
from .views.community import community_ref_args
from .views.keyset import fetch_page, page_body
from .views.post import ACTOR_POSTS, ACTOR_POSTS_SORT
from .xrpc import Body, Call, Queries, RawJson

__all__ = ["queries"]

queries = Queries()


# Coves' server routes this lower-cased; its clients call that spelling.
@queries.query("social.coves.actor.getProfile", aliases=("social.coves.actor.getprofile",),
               shared=True)
async def get_profile(call: Call) -> Body:
    """profileViewDetailed with post, comment and subscription counts."""
    args = {**call.view_args(), **views.actor_args(call.params["actor"])}
    view = await call.db.fetchval(views.PROFILE.text, *views.PROFILE.args(args))
    if view is None:
        raise NotFound(f"Actor not found: {call.params['actor']}", error="ActorNotFound")
    return RawJson(view.encode())


@queries.query("social.coves.actor.getPosts", formats={"community": COMMUNITY_REF}, shared=True)
async def get_actor_posts(call: Call) -> Body:
    """An author's posts, newest first; `filter=posts_with_media` keeps image and video posts."""
    params = call.params
    args = {**call.view_args(), **views.actor_args(params["actor"]),
            **community_ref_args(params["community"]), "limit": params["limit"],
            "media_only": params["filter"] == "posts_with_media",
            "scoped": params["community"] is not None}
    row, cursor = await fetch_page(call.db, ACTOR_POSTS, call.api.cursors, "actor.getPosts",
                                   ACTOR_POSTS_SORT, params["cursor"], args)
    if not row["found"]:
        raise NotFound(f"Actor not found: {params['actor']}")
    return page_body("feed", row["items"], cursor)


@queries.query("social.coves.actor.getComments", formats={"community": COMMUNITY_REF})
async def get_actor_comments(call: Call) -> Body:
    """An actor's comments, newest first, optionally in one community."""
    params = call.params
    args = {**call.view_args(), **views.actor_args(params["actor"]),
            **community_ref_args(params["community"]), "limit": params["limit"],
            "scoped": params["community"] is not None}
    row, cursor = await fetch_page(call.db, ACTOR_COMMENTS, call.api.cursors, "actor.getComments",
                                   ACTOR_COMMENTS_SORT, params["cursor"], args)
    if not row["found"]:
        raise NotFound(f"Actor not found: {params['actor']}")
    return page_body("comments", row["items"], cursor)
