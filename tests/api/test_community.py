"""social.coves.community.*: get, list, search, getSubscribers."""

from __future__ import annotations

from typing import Any

import pytest

from engine.db import Database
from tests import factories as f

from .conftest import Client, MakeClient, Seed, get_json
from .keys import KeyResolver
from .world import new_post

GET = "/xrpc/social.coves.community.get"
LIST = "/xrpc/social.coves.community.list"
SEARCH = "/xrpc/social.coves.community.search"
SUBSCRIBERS = "/xrpc/social.coves.community.getSubscribers"
BLOB = {"$type": "blob", "ref": {"$link": f.CID}, "mimeType": "image/png", "size": 1000}


def dids(body: dict[str, Any]) -> list[str]:
    return [item["did"] for item in body["communities"]]


async def walk(client: Client, path: str, items: str, **params: Any) -> list[Any]:
    """Every item of a listing, page by page, following cursors until there is none."""
    out: list[Any] = []
    cursor = None
    for _ in range(100):
        status, body = await get_json(client, path, cursor=cursor, **params)
        assert status == 200, body
        out += body[items]
        cursor = body.get("cursor")
        if cursor is None:
            return out
    raise AssertionError("listing never ended")


async def test_get_by_did_handle_and_bang_name(client: Client, seed: Seed) -> None:
    community = f.did("gaming")
    await seed([f.profile(community, name="gaming", handle="c-gaming.coves.test",
                          displayName="Gaming", description="games", avatar=BLOB,
                          hostedBy="did:web:coves.test")])
    for ref in (community, "c-gaming.coves.test", "C-Gaming.Coves.Test", "!gaming@coves.test"):
        status, body = await get_json(client, GET, community=ref)
        assert status == 200, ref
        assert body["did"] == community and body["handle"] == "c-gaming.coves.test"
    assert body["displayName"] == "Gaming" and body["hostedBy"] == "did:web:coves.test"
    assert body["avatar"] == (f"https://pds.test/xrpc/com.atproto.sync.getBlob?did={community}"
                              f"&cid={f.CID}")


async def test_view_carries_counts_at_top_level_and_in_stats(client: Client, seed: Seed) -> None:
    community = f.did("counted")
    frames = [f.profile(community, name="counted"), new_post(community)[1], new_post(community)[1]]
    frames += [f.subscription(f.did(f"s{n}"), f.tid(), community) for n in range(3)]
    await seed(frames)
    _status, detailed = await get_json(client, GET, community=community)
    counts = {"subscriberCount": 3, "memberCount": 3, "postCount": 2}
    assert detailed["stats"] == counts
    assert {key: detailed[key] for key in counts} == counts
    _status, listed = await get_json(client, LIST)
    assert {key: listed["communities"][0][key] for key in counts} == counts


async def test_images_use_the_cdn_when_configured(make_client: MakeClient, seed: Seed) -> None:
    community = f.did("cdn")
    await seed([f.profile(community, name="cdn", avatar=BLOB)])
    async with make_client(IMAGE_CDN_URL="https://cdn.test/img") as client:
        _status, body = await get_json(client, GET, community=community)
    assert body["avatar"] == f"https://cdn.test/img/{community}/{f.CID}"


async def test_viewer_state_says_subscribed_and_blocked(client: Client, seed: Seed,
                                                        resolver: KeyResolver) -> None:
    community, viewer = f.did("c"), f.did("viewer")
    subscription = f.tid()
    await seed([f.profile(community, name="c"), f.subscription(viewer, subscription, community)])
    headers = resolver.bearer(viewer, "social.coves.community.get")
    _status, body = await get_json(client, GET, community=community, headers=headers)
    assert body["viewer"] == {"subscribed": True, "blocked": False,
                              "subscriptionUri": f.uri(viewer, f.SUBSCRIPTION, subscription)}
    await seed([f.block(viewer, f.tid(), community)])
    headers = resolver.bearer(viewer, "social.coves.community.get")
    _status, body = await get_json(client, GET, community=community, headers=headers)
    assert body["viewer"]["blocked"] is True


@pytest.mark.parametrize("case", ["unknown", "deleted", "hidden", "private"])
async def test_get_answers_404_for_what_does_not_exist_for_the_caller(
        client: Client, seed: Seed, case: str) -> None:
    community = f.did("c")
    frames = {"unknown": [],
              "deleted": [f.profile(community, name="c"), f.profile(community, operation="delete")],
              "hidden": [f.profile(community, name="c"), f.account(community, False, "takendown")],
              "private": [f.profile(community, name="c", visibility="private")]}[case]
    await seed(frames)
    status, body = await get_json(client, GET, community=community)
    assert (status, body["error"]) == (404, "CommunityNotFound")


async def test_unverified_host_hides_the_community_unless_skipped(
        make_client: MakeClient, seed: Seed, db: Database) -> None:
    community = f.did("c")
    await seed([f.profile(community, name="c")])
    async with make_client(SKIP_DID_WEB_VERIFICATION="false") as strict:
        assert (await get_json(strict, GET, community=community))[0] == 404
        # what the identity branch's host verifier records once hostedBy checks out
        await db.execute("UPDATE communities SET host_ok = true WHERE did = $1", community)
        assert (await get_json(strict, GET, community=community))[0] == 200


async def _listed_world(seed: Seed) -> dict[str, str]:
    names = {"alpha": 5, "bravo": 1, "charlie": 9, "delta": 3, "echo": 0, "foxtrot": 7}
    communities = {name: f.did(name) for name in names}
    frames = []
    for index, (name, subscribers) in enumerate(names.items()):
        frames.append(f.profile(communities[name], name=name,
                                createdAt=f"2026-0{index + 1}-01T00:00:00Z"))
        frames += [f.subscription(f.did(f"{name}{n}"), f.tid(), communities[name])
                   for n in range(subscribers)]
    frames.append(new_post(communities["delta"], createdAt="2026-10-01T00:00:00Z")[1])
    frames.append(new_post(communities["bravo"], createdAt="2026-09-01T00:00:00Z")[1])
    await seed(frames)
    return communities


@pytest.mark.parametrize(("sort", "order"), [
    ("popular", ["charlie", "foxtrot", "alpha", "delta", "bravo", "echo"]),
    ("new", ["foxtrot", "echo", "delta", "charlie", "bravo", "alpha"]),
    ("alphabetical", ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]),
    ("active", ["delta", "bravo"])])
async def test_list_sorts_and_pages_without_gaps(client: Client, seed: Seed, sort: str,
                                                 order: list[str]) -> None:
    communities = await _listed_world(seed)
    listed = [item["did"] for item in await walk(client, LIST, "communities", sort=sort, limit=2)]
    assert len(listed) == len(set(listed)) == 6
    assert listed[:len(order)] == [communities[name] for name in order]


async def test_list_leaves_out_unlisted_private_and_blocked_but_keeps_own_subscriptions(
        client: Client, seed: Seed, resolver: KeyResolver) -> None:
    viewer = f.did("viewer")
    public, unlisted, private, mine, blocked = (f.did(n) for n in ("pub", "unl", "priv", "mine", "blk"))
    await seed([f.profile(public, name="pub"), f.profile(unlisted, name="unl", visibility="unlisted"),
                f.profile(private, name="priv", visibility="private"),
                f.profile(mine, name="mine", visibility="private"), f.profile(blocked, name="blk"),
                f.subscription(viewer, f.tid(), mine), f.block(viewer, f.tid(), blocked)])
    _status, anonymous = await get_json(client, LIST)
    assert sorted(dids(anonymous)) == sorted([public, blocked])
    headers = resolver.bearer(viewer, "social.coves.community.list")
    _status, body = await get_json(client, LIST, headers=headers)
    assert sorted(dids(body)) == sorted([public, mine])
    headers = resolver.bearer(viewer, "social.coves.community.list")
    _status, body = await get_json(client, LIST, headers=headers, visibility="private")
    assert dids(body) == [mine]
    headers = resolver.bearer(viewer, "social.coves.community.list")
    _status, body = await get_json(client, LIST, headers=headers, subscribed="true")
    assert dids(body) == [mine]


async def test_search_ranks_closer_names_first(client: Client, seed: Seed) -> None:
    exact, prefix, inside, described, other = (f.did(n) for n in ("e", "p", "i", "d", "o"))
    await seed([f.profile(exact, name="cats"), f.profile(prefix, name="catsanddogs"),
                f.profile(inside, name="bobcats"),
                f.profile(described, name="felines", description="all about cats"),
                f.profile(other, name="dogs")])
    _status, body = await get_json(client, SEARCH, q="cats")
    assert dids(body)[:3] == [exact, prefix, inside]
    assert set(dids(body)) == {exact, prefix, inside, described}


async def test_search_pages_and_needs_q(client: Client, seed: Seed) -> None:
    await seed([f.profile(f.did(f"c{n}"), name=f"club{n}") for n in range(7)])
    found = await walk(client, SEARCH, "communities", q="club", limit=3)
    assert len({item["did"] for item in found}) == len(found) == 7
    status, body = await get_json(client, SEARCH)
    assert (status, body["error"]) == (400, "InvalidRequest")


async def test_subscribers_newest_first_without_hidden_accounts(client: Client, seed: Seed) -> None:
    community = f.did("c")
    users = [f.did(f"user{n}") for n in range(5)]
    frames = [f.profile(community, name="c")]
    frames += [f.subscription(user, f.tid(), community, createdAt=f"2026-0{n + 1}-01T00:00:00Z")
               for n, user in enumerate(users)]
    frames += [f.identity(users[4], "five.test"), f.account(users[0], False, "deactivated")]
    await seed(frames)
    listed = await walk(client, SUBSCRIBERS, "subscribers", community=community, limit=2)
    assert [item["did"] for item in listed] == users[:0:-1]
    assert listed[0]["handle"] == "five.test" and listed[0]["subscribedAt"].startswith("2026-05-01")


async def test_subscribers_of_unknown_community_is_404(client: Client) -> None:
    status, body = await get_json(client, SUBSCRIBERS, community=f.did("none"))
    assert (status, body["error"]) == (404, "CommunityNotFound")
