"""social.coves.community.comment.getComments: a post's comment thread, one page of it."""

from __future__ import annotations

from typing import Any

import orjson

from .errors import NotFound
from .views.comment import REPLIES_PER_PARENT, THREAD_MAX_COMMENTS, THREADS
from .views.snapshot import fetch_walk
from .xrpc import Body, Call, Queries, RawJson

__all__ = ["COMMENTS_BUCKET", "queries", "nest_thread"]

COMMENTS_BUCKET = "comments"  # its own rate limit: RATE_LIMIT_COMMENTS_PER_MINUTE

queries = Queries()


@queries.query("social.coves.community.comment.getComments", bucket=COMMENTS_BUCKET,
               shared=True)
async def get_comments(call: Call) -> Body:
    """The post's view and a page of its top-level comments with their replies."""
    params = call.params
    args = {**call.view_args(), "post": params["post"], "limit": params["limit"],
            "depth": params["depth"], "replies": REPLIES_PER_PARENT,
            "max_comments": THREAD_MAX_COMMENTS}
    row, cursor = await fetch_walk(call.db, THREADS[params["sort"]], call.api.cursors,
                                   "comment.getComments", params["sort"], params["cursor"],
                                   params["timeframe"], args)
    if not row["found"]:
        raise NotFound(f"Post not found: {params['post']}")
    body: dict[str, Any] = {"post": orjson.Fragment(row["post"]),
                            "comments": nest_thread(orjson.loads(row["nodes"]))}
    if cursor is not None:
        body["cursor"] = cursor
    return RawJson(orjson.dumps(body))


def nest_thread(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """threadViewComments from the flat rows (uri, parent, depth, ord, hasMore, view).

    Siblings keep the order the query ranked them in (`ord`); `replies` appears when a comment
    has replies in this response, `hasMore` when it has replies that are not.
    """
    threads: dict[str, dict[str, Any]] = {}
    children: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    top: list[tuple[int, dict[str, Any]]] = []
    for node in nodes:
        thread: dict[str, Any] = {"comment": node["view"]}
        if node["hasMore"]:
            thread["hasMore"] = True
        threads[node["uri"]] = thread
        siblings = top if node["depth"] == 0 else children.setdefault(node["parent"], [])
        siblings.append((node["ord"], thread))
    for parent, replies in children.items():
        if parent in threads:
            threads[parent]["replies"] = [thread for _ord, thread in sorted(replies, key=_first)]
    return [thread for _ord, thread in sorted(top, key=_first)]


def _first(item: tuple[int, dict[str, Any]]) -> int:
    return item[0]
