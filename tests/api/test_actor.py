"""social.coves.actor.*: getProfile (and Coves' lower-case route), getPosts, getComments."""

from __future__ import annotations

from tests import factories as f

from .conftest import Client, Seed, get_json
from .world import ago, new_comment, new_post

PROFILE = "/xrpc/social.coves.actor.getProfile"
POSTS = "/xrpc/social.coves.actor.getPosts"
COMMENTS = "/xrpc/social.coves.actor.getComments"
BLOB = {"$type": "blob", "ref": {"$link": f.CID}, "mimeType": "image/png", "size": 10}


async def test_profile_by_did_or_handle_with_stats(client: Client, seed: Seed) -> None:
    actor, community, other = f.did("actor"), f.did("c"), f.did("o")
    post, post_frame = new_post(community, author=actor)
    await seed([f.profile(community, name="c"), f.profile(other, name="o"), post_frame,
                new_comment(actor, post)[1], new_comment(actor, post)[1],
                f.subscription(actor, f.tid(), community), f.subscription(actor, f.tid(), other),
                f.commit(actor, f.ACTOR_PROFILE, "self", record={
                    "displayName": "Actor", "bio": "hello", "avatar": BLOB,
                    "createdAt": "2026-02-02T00:00:00Z"}),
                f.identity(actor, "Actor.Test")])
    for ref in (actor, "actor.test"):
        status, body = await get_json(client, PROFILE, actor=ref)
        assert status == 200, ref
    assert body["handle"] == "actor.test" and body["displayName"] == "Actor"
    assert body["bio"] == "hello" and body["createdAt"] == "2026-02-02T00:00:00.000Z"
    assert body["avatar"].endswith(f"did={actor}&cid={f.CID}")
    assert body["stats"] == {"postCount": 1, "commentCount": 2, "communityCount": 2}


async def test_coves_lower_case_route_is_served(client: Client, seed: Seed) -> None:
    actor = f.did("actor")
    await seed([f.commit(actor, f.ACTOR_PROFILE, "self", record={"createdAt": "2026-01-01T00:00:00Z"})])
    status, body = await get_json(client, "/xrpc/social.coves.actor.getprofile", actor=actor)
    assert (status, body["did"]) == (200, actor)


async def test_unknown_or_hidden_actor_is_404(client: Client, seed: Seed) -> None:
    hidden = f.did("hidden")
    await seed([f.commit(hidden, f.ACTOR_PROFILE, "self", record={"createdAt": "2026-01-01T00:00:00Z"}),
                f.account(hidden, False, "takendown")])
    for actor in (f.did("nobody"), hidden, "nobody.test"):
        status, body = await get_json(client, PROFILE, actor=actor)
        assert (status, body["error"]) == (404, "ActorNotFound"), actor
    status, body = await get_json(client, POSTS, actor=f.did("nobody"))
    assert (status, body["error"]) == (404, "NotFound")


async def test_posts_newest_first_with_media_and_community_filters(client: Client, seed: Seed) -> None:
    actor, community, other = f.did("actor"), f.did("c"), f.did("o")
    old, old_frame = new_post(community, author=actor, createdAt=ago(days=3))
    media, media_frame = new_post(community, author=actor, createdAt=ago(days=2), embed={
        "$type": "social.coves.embed.images", "images": [{"image": BLOB}]})
    elsewhere, elsewhere_frame = new_post(other, author=actor, createdAt=ago(days=1))
    await seed([f.profile(community, name="c"), f.profile(other, name="o"), old_frame, media_frame,
                elsewhere_frame, new_post(community)[1]])

    async def uris(**params: str) -> list[str]:
        _status, body = await get_json(client, POSTS, actor=actor, **params)
        return [item["post"]["uri"] for item in body["feed"]]

    assert await uris() == [elsewhere, media, old]
    assert await uris(filter="posts_with_media") == [media]
    assert await uris(community=community) == [media, old]
    pages = [await get_json(client, POSTS, actor=actor, limit=2)]
    pages.append(await get_json(client, POSTS, actor=actor, limit=2, cursor=pages[0][1]["cursor"]))
    assert [item["post"]["uri"] for _s, body in pages for item in body["feed"]] == [elsewhere, media, old]
    assert "cursor" not in pages[1][1]


async def test_comments_newest_first_without_deleted(client: Client, seed: Seed) -> None:
    actor, community = f.did("actor"), f.did("c")
    post, post_frame = new_post(community)
    first, first_frame = new_comment(actor, post, createdAt=ago(hours=2))
    second, second_frame = new_comment(actor, post, parent=first, createdAt=ago(hours=1))
    gone, gone_frame = new_comment(actor, post, createdAt=ago(minutes=5))
    await seed([f.profile(community, name="c"), post_frame, first_frame, second_frame, gone_frame,
                f.comment(actor, gone.rsplit("/", 1)[1], root=post, operation="delete")])
    _status, body = await get_json(client, COMMENTS, actor=actor)
    assert [c["uri"] for c in body["comments"]] == [second, first]
    assert body["comments"][0]["parent"]["uri"] == first
