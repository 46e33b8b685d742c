"""social.coves.community.comment.getComments: threads, bounds, placeholders, pages."""

from __future__ import annotations

import random
from typing import Any

import pytest

from api.comment import nest_thread
from api.views.comment import REPLIES_PER_PARENT
from engine.db import Database
from tests import factories as f

from .conftest import Client, Seed, get_json
from .keys import KeyResolver
from .world import ago, new_comment, new_post, rkey_of, vote_frames

COMMENTS = "/xrpc/social.coves.community.comment.getComments"


async def post_with_community(seed: Seed) -> tuple[str, str]:
    community = f.did("c")
    post, frame = new_post(community)
    await seed([f.profile(community, name="c"), frame])
    return community, post


def shape(threads: list[dict[str, Any]]) -> list[Any]:
    """(uri, [children…]) of a thread list, to compare structures."""
    return [(t["comment"]["uri"], shape(t.get("replies", []))) for t in threads]


async def test_thread_nests_replies_under_their_parents(client: Client, seed: Seed) -> None:
    _community, post = await post_with_community(seed)
    a, a_frame = new_comment(f.did("alice"), post, createdAt=ago(minutes=30))
    b, b_frame = new_comment(f.did("bob"), post, createdAt=ago(minutes=20))
    a1, a1_frame = new_comment(f.did("bob"), post, parent=a, createdAt=ago(minutes=10))
    a11, a11_frame = new_comment(f.did("carol"), post, parent=a1, createdAt=ago(minutes=5))
    await seed([a_frame, b_frame, a1_frame, a11_frame])
    status, body = await get_json(client, COMMENTS, post=post, sort="new")
    assert status == 200
    assert body["post"]["uri"] == post and body["post"]["stats"]["commentCount"] == 2
    assert shape(body["comments"]) == [(b, []), (a, [(a1, [(a11, [])])])]
    reply = body["comments"][1]["replies"][0]["comment"]
    assert reply["parent"]["uri"] == a and reply["post"]["uri"] == post
    assert reply["stats"]["replyCount"] == 1 and reply["record"]["content"] == "hi"


async def test_depth_cuts_the_thread_and_says_more_exists(client: Client, seed: Seed) -> None:
    _community, post = await post_with_community(seed)
    chain, frames, parent = [], [], None
    for _ in range(4):
        uri, frame = new_comment(f.did("d"), post, parent=parent)
        chain.append(uri)
        frames.append(frame)
        parent = uri
    await seed(frames)
    _status, body = await get_json(client, COMMENTS, post=post, depth=1)
    top = body["comments"][0]
    assert shape(body["comments"]) == [(chain[0], [(chain[1], [])])]
    assert "hasMore" not in top and top["replies"][0]["hasMore"] is True
    _status, body = await get_json(client, COMMENTS, post=post, depth=0)
    assert body["comments"][0]["hasMore"] is True and "replies" not in body["comments"][0]


async def test_replies_per_parent_are_bounded(client: Client, seed: Seed) -> None:
    _community, post = await post_with_community(seed)
    top, top_frame = new_comment(f.did("t"), post)
    replies = [new_comment(f.did(f"r{n}"), post, parent=top) for n in range(REPLIES_PER_PARENT + 2)]
    await seed([top_frame, *(frame for _uri, frame in replies)])
    _status, body = await get_json(client, COMMENTS, post=post)
    thread = body["comments"][0]
    assert len(thread["replies"]) == REPLIES_PER_PARENT and thread["hasMore"] is True


async def test_deleted_and_hidden_comments_stay_as_placeholders(client: Client, seed: Seed) -> None:
    _community, post = await post_with_community(seed)
    hidden_author = f.did("hidden")
    gone, gone_frame = new_comment(f.did("gone"), post, createdAt=ago(minutes=9))
    under_gone, under_frame = new_comment(f.did("kid"), post, parent=gone, createdAt=ago(minutes=8))
    hidden, hidden_frame = new_comment(hidden_author, post, createdAt=ago(minutes=7))
    await seed([gone_frame, under_frame, hidden_frame,
                f.comment(f.did("gone"), rkey_of(gone), root=post, operation="delete"),
                f.account(hidden_author, False, "suspended")])
    _status, body = await get_json(client, COMMENTS, post=post, sort="new")
    by_uri = {t["comment"]["uri"]: t for t in body["comments"]}
    deleted = by_uri[gone]["comment"]
    assert deleted["isDeleted"] is True and deleted["deletionReason"] == "author"
    assert deleted["record"] is None and deleted["cid"] == "" and "embed" not in deleted
    assert by_uri[gone]["replies"][0]["comment"]["uri"] == under_gone
    withheld = by_uri[hidden]["comment"]
    assert withheld["isDeleted"] is True and withheld["deletionReason"] == "account"
    assert withheld["author"] == {"did": hidden_author, "handle": "handle.invalid"}


@pytest.mark.parametrize("sort", ["hot", "top", "new"])
async def test_top_level_pages_walk_every_comment_once_while_votes_change(
        client: Client, seed: Seed, db: Database, sort: str) -> None:
    _community, post = await post_with_community(seed)
    rng = random.Random(5)
    frames, comments = [], []
    for n in range(13):
        uri, frame = new_comment(f.did(f"u{n}"), post, createdAt=ago(minutes=rng.randrange(1, 900)))
        comments.append(uri)
        frames += [frame, *vote_frames(uri, rng.randrange(-2, 6))]
    await seed(frames)
    key = {"hot": "hot_key", "top": "score", "new": "coalesce(created_at, first_seen_at)"}[sort]
    expected = [r["uri"] for r in await db.fetch(
        f"SELECT uri FROM comments WHERE parent_uri = $1 ORDER BY {key} DESC, uri DESC", post)]
    walked: list[str] = []
    cursor = None
    while True:
        status, body = await get_json(client, COMMENTS, post=post, sort=sort, timeframe="all",
                                      limit=3, cursor=cursor)
        assert status == 200, body
        walked += [t["comment"]["uri"] for t in body["comments"]]
        cursor = body.get("cursor")
        if cursor is None:
            break
        remaining = [uri for uri in expected if uri not in walked]
        await seed(vote_frames(walked[-1], -30) + vote_frames(remaining[-1], 30))
    assert walked == expected


async def test_viewer_sees_own_vote_on_comments(client: Client, seed: Seed,
                                                resolver: KeyResolver) -> None:
    _community, post = await post_with_community(seed)
    viewer = f.did("viewer")
    comment, frame = new_comment(f.did("a"), post)
    vote = f.uri(viewer, f.VOTE, f.tid())
    await seed([frame, f.vote(viewer, rkey_of(vote), comment, "up")])
    headers = resolver.bearer(viewer, "social.coves.community.comment.getComments")
    _status, body = await get_json(client, COMMENTS, post=post, headers=headers)
    assert body["comments"][0]["comment"]["viewer"] == {"vote": "up", "voteUri": vote}
    assert body["comments"][0]["comment"]["stats"]["score"] == 1


@pytest.mark.parametrize("case", ["unknown", "deleted", "private"])
async def test_thread_of_a_post_you_cannot_see_is_404(client: Client, seed: Seed, case: str) -> None:
    community = f.did("c")
    post, frame = new_post(community)
    frames = {"unknown": [f.profile(community, name="c")],
              "deleted": [f.profile(community, name="c"), frame,
                          f.post(community, rkey_of(post), operation="delete")],
              "private": [f.profile(community, name="c", visibility="private"), frame]}[case]
    await seed(frames)
    status, body = await get_json(client, COMMENTS, post=post)
    assert (status, body["error"]) == (404, "NotFound")


def test_nest_thread_orders_siblings_by_rank() -> None:
    nodes = [{"uri": "b", "parent": "p", "depth": 0, "ord": 2, "hasMore": False, "view": {"uri": "b"}},
             {"uri": "b2", "parent": "b", "depth": 1, "ord": 2, "hasMore": True, "view": {"uri": "b2"}},
             {"uri": "a", "parent": "p", "depth": 0, "ord": 1, "hasMore": False, "view": {"uri": "a"}},
             {"uri": "b1", "parent": "b", "depth": 1, "ord": 1, "hasMore": False, "view": {"uri": "b1"}}]
    assert nest_thread(nodes) == [
        {"comment": {"uri": "a"}},
        {"comment": {"uri": "b"}, "replies": [{"comment": {"uri": "b1"}},
                                              {"comment": {"uri": "b2"}, "hasMore": True}]}]
