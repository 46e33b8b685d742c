"""social.coves.feed.*: sorts, pagination while votes change, scopes, visibility, viewer state."""

from __future__ import annotations

import random
from typing import Any

import pytest


from engine.db import Database
from tests import factories as f

from .conftest import Client, Seed
from .world import ago, new_post, rkey_of, vote_frames, votes

DISCOVER = "/xrpc/social.coves.feed.getDiscover"
COMMUNITY_FEED = "/xrpc/social.coves.feed.getCommunity"
TIMELINE = "/xrpc/social.coves.feed.getTimeline"
ALL = "/xrpc/social.coves.feed.getAll"

# The key each sort ranks by, as the posts table stores it.
SORT_SQL = {"hot": "hot_key DESC, uri DESC", "top": "score DESC, uri DESC",
            "new": "created_at DESC, uri DESC"}


async def get(client: Client, path: str, **params: Any) -> tuple[int, Any]:
    response = await client.get(path, query_string={k: v for k, v in params.items() if v is not None})
    return response.status_code, await response.get_json()


def uris(body: dict[str, Any]) -> list[str]:
    return [item["post"]["uri"] for item in body["feed"]]


async def community_with_posts(seed: Seed, count: int, *, name: str = "walk",
                               rng: random.Random | None = None) -> tuple[str, list[str]]:
    """A community with `count` posts of random scores and creation times in the last day."""
    rng = rng or random.Random(7)
    community = f.did(name)
    frames = [f.profile(community, name=name)]
    posts = []
    for index in range(count):
        uri, frame = new_post(community, createdAt=ago(minutes=rng.randrange(1, 1400)))
        posts.append(uri)
        frames.append(frame)
        frames += vote_frames(uri, rng.randrange(-3, 9)) if index % 5 else []
    await seed(frames)
    return community, posts


async def expected_order(db: Database, sort: str, community: str) -> list[str]:
    return [r["uri"] for r in await db.fetch(
        f"SELECT uri FROM posts WHERE community_did = $1 AND deleted_at IS NULL "
        f"ORDER BY {SORT_SQL[sort]}", community)]


@pytest.mark.parametrize("sort", ["hot", "top", "new"])
@pytest.mark.parametrize("path", [DISCOVER, COMMUNITY_FEED])
async def test_walk_returns_every_post_once_in_first_page_order_while_votes_change(
        client: Client, seed: Seed, db: Database, sort: str, path: str) -> None:
    community, posts = await community_with_posts(seed, 23)
    expected = await expected_order(db, sort, community)
    walked: list[str] = []
    cursor = None
    pages = 0
    while True:
        status, body = await get(client, path, sort=sort, limit=4, cursor=cursor,
                                 community=community if path == COMMUNITY_FEED else None)
        assert status == 200, body
        walked += uris(body)
        pages += 1
        cursor = body.get("cursor")
        if cursor is None:
            break
        # Between pages: sink a post already shown below everything (a plain keyset walk would
        # show it again) and lift the last post not yet shown above everything (a plain walk
        # would skip it).
        remaining = [uri for uri in expected if uri not in walked]
        await seed(vote_frames(walked[-1], -40) + vote_frames(remaining[-1], 60))
    assert pages == 6
    assert len(walked) == len(set(walked)), "a post was returned twice"
    assert walked == expected, "the walk follows the order of its first page"


async def test_walk_keeps_unchanged_posts_when_changed_ones_move_repeatedly(
        client: Client, seed: Seed, db: Database) -> None:
    community, posts = await community_with_posts(seed, 30, rng=random.Random(11))
    expected = await expected_order(db, "hot", community)
    rng = random.Random(3)
    walked: list[str] = []
    cursor = None
    while True:
        _status, body = await get(client, DISCOVER, sort="hot", limit=7, cursor=cursor)
        walked += uris(body)
        cursor = body.get("cursor")
        if cursor is None:
            break
        # the same posts change again and again, up and down
        frames = []
        for uri in rng.sample(posts[:10], 5):
            frames += vote_frames(uri, rng.choice([-25, 25]))
        await seed(frames)
    assert walked == expected


async def test_post_created_during_a_walk_is_shown_at_most_once(
        client: Client, seed: Seed) -> None:
    community, posts = await community_with_posts(seed, 10)
    _status, first = await get(client, DISCOVER, sort="new", limit=5)
    late, frame = new_post(community, createdAt=ago(minutes=2000))  # older than all: sorts last
    await seed([frame])
    _status, second = await get(client, DISCOVER, sort="new", limit=10, cursor=first["cursor"])
    walked = uris(first) + uris(second)
    assert sorted(walked) == sorted(posts + [late])


@pytest.mark.parametrize("sort", ["hot", "top", "new"])
async def test_sorts_order_posts_by_their_key(client: Client, seed: Seed,
                                              db: Database, sort: str) -> None:
    community, _posts = await community_with_posts(seed, 12)
    _status, body = await get(client, COMMUNITY_FEED, community=community, sort=sort,
                              timeframe="all", limit=50)
    assert uris(body) == await expected_order(db, sort, community)
    assert "cursor" not in body


async def test_hot_ranks_a_newer_post_above_an_older_one_with_more_votes(
        client: Client, seed: Seed) -> None:
    community = f.did("hot")
    old, old_frame = new_post(community, createdAt=ago(hours=48))
    new, new_frame = new_post(community, createdAt=ago(hours=1))
    await seed([f.profile(community, name="hot"), old_frame, new_frame,
                *vote_frames(old, 5), *vote_frames(new, 2)])
    _status, body = await get(client, COMMUNITY_FEED, community=community, sort="hot")
    assert uris(body) == [new, old]


@pytest.mark.parametrize(("timeframe", "shown"), [
    ("hour", ["recent"]), ("day", ["recent", "today"]), ("week", ["recent", "today", "lastweek"]),
    ("all", ["recent", "today", "lastweek", "ancient"])])
async def test_top_keeps_posts_inside_the_timeframe(client: Client, seed: Seed,
                                                    timeframe: str, shown: list[str]) -> None:
    community = f.did("top")
    ages = {"recent": {"minutes": 10}, "today": {"hours": 5}, "lastweek": {"days": 6},
            "ancient": {"days": 400}}
    frames = [f.profile(community, name="top")]
    by_title = {}
    for score, (title, age) in enumerate(ages.items(), start=1):
        uri, frame = new_post(community, title=title, createdAt=ago(**age))
        by_title[uri] = title
        frames += [frame, *vote_frames(uri, 10 - score)]
    await seed(frames)
    _status, body = await get(client, COMMUNITY_FEED, community=community, sort="top",
                              timeframe=timeframe)
    assert [by_title[uri] for uri in uris(body)] == shown


async def test_limit_above_the_maximum_is_clamped_and_default_is_15(
        client: Client, seed: Seed) -> None:
    await community_with_posts(seed, 60)
    _status, body = await get(client, DISCOVER, sort="new", limit=500)
    assert len(body["feed"]) == 50 and "cursor" in body
    _status, body = await get(client, DISCOVER, sort="new")
    assert len(body["feed"]) == 15


async def test_community_feed_by_handle_bang_name_and_coves_route(
        client: Client, seed: Seed) -> None:
    community = f.did("named")
    uri, frame = new_post(community)
    await seed([f.profile(community, name="gaming", handle="c-gaming.coves.test",
                          hostedBy="did:web:coves.test"), frame])
    for ref in (community, "c-gaming.coves.test", "!gaming@coves.test"):
        status, body = await get(client, COMMUNITY_FEED, community=ref)
        assert (status, uris(body)) == (200, [uri]), ref
    status, body = await get(client, "/xrpc/social.coves.communityFeed.getCommunity",
                             community="!gaming@coves.test")
    assert (status, uris(body)) == (200, [uri])


async def test_community_feed_of_unknown_community_is_404(client: Client) -> None:
    status, body = await get(client, COMMUNITY_FEED, community=f.did("nobody"))
    assert (status, body["error"]) == (404, "CommunityNotFound")


async def test_deleted_posts_leave_feeds(client: Client, seed: Seed) -> None:
    community = f.did("del")
    kept, kept_frame = new_post(community)
    gone, gone_frame = new_post(community)
    await seed([f.profile(community, name="del"), kept_frame, gone_frame,
                f.post(community, rkey_of(gone), operation="delete")])
    _status, body = await get(client, COMMUNITY_FEED, community=community)
    assert uris(body) == [kept]


async def test_timeline_needs_auth(client: Client) -> None:
    status, body = await get(client, TIMELINE)
    assert (status, body["error"]) == (401, "AuthenticationRequired")


async def test_timeline_shows_subscribed_communities_including_private_minus_blocked(
        client: Client, seed: Seed, resolver: Any) -> None:
    viewer = f.did("viewer")
    public, private, blocked, other = (f.did(n) for n in ("pub", "priv", "blk", "oth"))
    frames = [f.profile(public, name="pub"), f.profile(private, name="priv", visibility="private"),
              f.profile(blocked, name="blk"), f.profile(other, name="oth")]
    posts = {}
    for community in (public, private, blocked, other):
        uri, frame = new_post(community)
        posts[community] = uri
        frames.append(frame)
    for community in (public, private, blocked):
        frames.append(f.subscription(viewer, f.tid(), community))
    frames.append(f.block(viewer, f.tid(), blocked))
    await seed(frames)
    response = await client.get(TIMELINE, headers=resolver.bearer(viewer, "social.coves.feed.getTimeline"))
    body = await response.get_json()
    assert response.status_code == 200
    assert sorted(uris(body)) == sorted([posts[public], posts[private]])


async def test_discover_leaves_out_unlisted_private_blocked_and_hidden(
        client: Client, seed: Seed, resolver: Any) -> None:
    viewer = f.did("viewer")
    public, unlisted, private, blocked = (f.did(n) for n in ("pub", "unl", "priv", "blk"))
    hidden_author = f.did("hiddenauthor")
    frames = [f.profile(public, name="pub"), f.profile(unlisted, name="unl", visibility="unlisted"),
              f.profile(private, name="priv", visibility="private"), f.profile(blocked, name="blk"),
              f.block(viewer, f.tid(), blocked)]
    shown, frame = new_post(public)
    frames.append(frame)
    for community in (unlisted, private, blocked):
        frames.append(new_post(community)[1])
    frames.append(new_post(public, author=hidden_author)[1])
    frames.append(f.account(hidden_author, False, "takendown"))
    await seed(frames)
    response = await client.get(DISCOVER, headers=resolver.bearer(viewer, "social.coves.feed.getDiscover"))
    assert uris(await response.get_json()) == [shown]


async def test_hidden_account_returns_when_reactivated(client: Client,
                                                       seed: Seed) -> None:
    community, author = f.did("c"), f.did("a")
    uri, frame = new_post(community, author=author)
    await seed([f.profile(community, name="c"), frame, f.account(author, False, "suspended")])
    assert uris((await get(client, DISCOVER))[1]) == []
    await seed([f.account(author, True)])
    assert uris((await get(client, DISCOVER))[1]) == [uri]


async def test_unlisted_community_feed_is_reachable_directly(client: Client,
                                                             seed: Seed) -> None:
    community = f.did("unl")
    uri, frame = new_post(community)
    await seed([f.profile(community, name="unl", visibility="unlisted"), frame])
    assert uris((await get(client, COMMUNITY_FEED, community=community))[1]) == [uri]


async def test_private_community_feed_only_for_subscribers(client: Client, seed: Seed,
                                                           resolver: Any) -> None:
    community, member, stranger = f.did("priv"), f.did("member"), f.did("stranger")
    uri, frame = new_post(community)
    await seed([f.profile(community, name="priv", visibility="private"), frame,
                f.subscription(member, f.tid(), community)])
    lxm = "social.coves.feed.getCommunity"
    anonymous = await client.get(COMMUNITY_FEED, query_string={"community": community})
    outsider = await client.get(COMMUNITY_FEED, query_string={"community": community},
                                headers=resolver.bearer(stranger, lxm))
    insider = await client.get(COMMUNITY_FEED, query_string={"community": community},
                               headers=resolver.bearer(member, lxm))
    assert (anonymous.status_code, outsider.status_code, insider.status_code) == (404, 404, 200)
    assert uris(await insider.get_json()) == [uri]


async def test_get_all_filters_post_types(client: Client, seed: Seed) -> None:
    community = f.did("types")
    text, text_frame = new_post(community)
    link, link_frame = new_post(community, embed={
        "$type": "social.coves.embed.external", "external": {"uri": "https://example.com"}})
    await seed([f.profile(community, name="types"), text_frame, link_frame])
    assert uris((await get(client, ALL, postType="article"))[1]) == [link]
    query = "/xrpc/social.coves.feed.getAll?postTypes=text&postTypes=article&sort=new"
    assert sorted(uris(await (await client.get(query)).get_json())) == sorted([text, link])


async def test_viewer_state_carries_own_vote(client: Client, seed: Seed,
                                             resolver: Any) -> None:
    community, viewer = f.did("c"), f.did("viewer")
    uri, frame = new_post(community)
    vote_uri = f.uri(viewer, f.VOTE, f.tid())
    await seed([f.profile(community, name="c"), frame,
                f.vote(viewer, rkey_of(vote_uri), uri, "down")])
    response = await client.get(DISCOVER, headers=resolver.bearer(viewer, "social.coves.feed.getDiscover"))
    post = (await response.get_json())["feed"][0]["post"]
    assert post["viewer"] == {"vote": "down", "voteUri": vote_uri}
    assert post["stats"] == {"upvotes": 0, "downvotes": 1, "score": -1, "commentCount": 0}
    anonymous = (await get(client, DISCOVER))[1]["feed"][0]["post"]
    assert "viewer" not in anonymous


@pytest.mark.parametrize("cursor_of", ["other_sort", "tampered", "garbage"])
async def test_foreign_or_altered_cursor_is_invalid(client: Client, seed: Seed,
                                                    cursor_of: str) -> None:
    await community_with_posts(seed, 6)
    _status, body = await get(client, DISCOVER, sort="hot", limit=2)
    tampered = body["cursor"][:-2] + ("AA" if body["cursor"][-2:] != "AA" else "BB")
    cursor = {"other_sort": body["cursor"], "tampered": tampered,
              "garbage": "not-a-cursor"}[cursor_of]
    status, error = await get(client, DISCOVER, sort="new" if cursor_of == "other_sort" else "hot",
                              cursor=cursor)
    assert (status, error["error"]) == (400, "InvalidCursor")


async def test_votes_of_a_vote_list_are_counted_once_per_voter(client: Client,
                                                               seed: Seed) -> None:
    community = f.did("c")
    uri, frame = new_post(community)
    cast = votes(uri, 3)
    await seed([f.profile(community, name="c"), frame, *(frame for _uri, frame in cast)])
    post = (await get(client, DISCOVER))[1]["feed"][0]["post"]
    assert post["stats"]["upvotes"] == 3


async def test_walk_older_than_the_history_retention_still_pages(
        client: Client, seed: Seed) -> None:
    from api.cursors import CursorCodec

    from .conftest import API_ENV

    community, posts = await community_with_posts(seed, 6)
    _status, first = await get(client, DISCOVER, sort="new", limit=3)
    codec = CursorCodec(API_ENV["CURSOR_SECRET"])
    position = codec.decode("feed.discover:new", first["cursor"])
    stale = codec.encode("feed.discover:new", {**position, "a": 0.0})  # a walk begun in 1970
    status, second = await get(client, DISCOVER, sort="new", limit=3, cursor=stale)
    assert status == 200 and sorted(uris(first) + uris(second)) == sorted(posts)
