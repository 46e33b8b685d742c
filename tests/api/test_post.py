"""social.coves.community.post.get and .search; how posts are shown (embeds, blob URLs)."""

from __future__ import annotations

from typing import Any

import pytest

from engine.db import Database
from tests import factories as f

from .conftest import Client, MakeClient, Seed, get_json
from .keys import KeyResolver
from .world import ago, new_post, rkey_of, vote_frames

GET = "/xrpc/social.coves.community.post.get"
SEARCH = "/xrpc/social.coves.community.post.search"
BLOB = {"$type": "blob", "ref": {"$link": f.CID}, "mimeType": "image/jpeg", "size": 1000}
FEED_ALL = "/xrpc/social.coves.feed.getAll"


def query(uris: list[str]) -> str:
    return GET + "?" + "&".join(f"uris={uri}" for uri in uris)


async def test_get_answers_in_request_order_with_placeholders(client: Client, seed: Seed,
                                                               resolver: KeyResolver) -> None:
    community, blocked_community, viewer = f.did("c"), f.did("b"), f.did("viewer")
    live, live_frame = new_post(community, title="live")
    deleted, deleted_frame = new_post(community)
    blocked, blocked_frame = new_post(blocked_community)
    missing = f.uri(community, f.POST, f.tid())
    await seed([f.profile(community, name="c"), f.profile(blocked_community, name="b"),
                live_frame, deleted_frame, blocked_frame,
                f.post(community, rkey_of(deleted), operation="delete"),
                f.block(viewer, f.tid(), blocked_community)])
    response = await client.get(query([missing, blocked, deleted, live]),
                                headers=resolver.bearer(viewer, "social.coves.community.post.get"))
    posts = (await response.get_json())["posts"]
    assert [p["uri"] for p in posts] == [missing, blocked, deleted, live]
    assert posts[0] == {"$type": "social.coves.community.post.get#notFoundPost", "uri": missing,
                        "notFound": True}
    assert posts[1]["$type"].endswith("#blockedPost") and posts[1]["blocked"] is True
    assert posts[2]["isDeleted"] is True and posts[2]["record"] is None and posts[2]["text"] == ""
    assert posts[3]["$type"].endswith("#postView") and posts[3]["title"] == "live"


async def test_get_hides_private_posts_from_outsiders_and_hidden_authors(
        client: Client, seed: Seed, resolver: KeyResolver) -> None:
    private, public, member, author = f.did("priv"), f.did("pub"), f.did("member"), f.did("author")
    secret, secret_frame = new_post(private)
    withheld, withheld_frame = new_post(public, author=author)
    await seed([f.profile(private, name="priv", visibility="private"), f.profile(public, name="pub"),
                secret_frame, withheld_frame, f.subscription(member, f.tid(), private),
                f.account(author, False, "takendown")])
    _status, anonymous = await get_json(client, query([secret, withheld]))
    assert [p.get("notFound") for p in anonymous["posts"]] == [True, True]
    response = await client.get(query([secret]),
                                headers=resolver.bearer(member, "social.coves.community.post.get"))
    assert (await response.get_json())["posts"][0]["uri"] == secret


async def test_get_takes_at_most_25_uris(client: Client) -> None:
    uris = [f.uri(f.did("c"), f.POST, f.tid()) for _ in range(26)]
    status, body = await get_json(client, query(uris))
    assert (status, body["error"]) == (400, "InvalidRequest")
    status, body = await get_json(client, query(uris[:25]))
    assert status == 200 and len(body["posts"]) == 25


async def test_post_view_shape_for_clients(client: Client, seed: Seed) -> None:
    community, author = f.did("c"), f.did("author")
    uri, frame = new_post(community, author=author, title="T", content="body text",
                          langs=["en"], facets=[])
    await seed([f.profile(community, name="c"), frame, *vote_frames(uri, 2),
                f.identity(author, "author.test")])
    post = (await get_json(client, query([uri])))[1]["posts"][0]
    assert post["rkey"] == rkey_of(uri) and post["text"] == "body text" and post["title"] == "T"
    assert post["author"] == {"did": author, "handle": "author.test"}
    assert post["community"] == {"did": community, "name": "c"}
    assert post["stats"] == {"upvotes": 2, "downvotes": 0, "score": 2, "commentCount": 0}
    assert post["language"] == "en" and post["facets"] == []
    assert post["record"]["$type"] == f.POST and post["cid"] == f.CID


async def test_embeds_keep_their_type_and_gain_urls(make_client: MakeClient, seed: Seed) -> None:
    community = f.did("c")
    images, images_frame = new_post(community, embed={
        "$type": "social.coves.embed.images", "images": [{"image": BLOB, "alt": "a cat"}]})
    link, link_frame = new_post(community, embed={
        "$type": "social.coves.embed.external",
        "external": {"uri": "https://example.com/a", "title": "A", "thumb": BLOB}})
    video, video_frame = new_post(community, embed={
        "$type": "social.coves.embed.video", "video": {**BLOB, "mimeType": "video/mp4"},
        "thumbnail": BLOB})
    await seed([f.profile(community, name="c"), images_frame, link_frame, video_frame])
    pds_blob = f"https://pds.test/xrpc/com.atproto.sync.getBlob?did={community}&cid={f.CID}"
    cdn_image = f"https://cdn.test/{community}/{f.CID}"
    async with make_client(IMAGE_CDN_URL="https://cdn.test") as client:
        posts = (await get_json(client, query([images, link, video])))[1]["posts"]
    image_embed, link_embed, video_embed = (post["embed"] for post in posts)
    assert image_embed["$type"] == "social.coves.embed.images"
    assert image_embed["images"][0]["thumb"] == image_embed["images"][0]["fullsize"] == cdn_image
    assert image_embed["images"][0]["alt"] == "a cat"
    assert link_embed["$type"] == "social.coves.embed.external"
    assert link_embed["external"]["thumb"] == cdn_image
    assert video_embed["url"] == pds_blob and video_embed["thumbnail"] == cdn_image


async def test_blob_urls_use_the_repo_pds_when_known(client: Client, seed: Seed,
                                                     db: Database) -> None:
    community = f.did("c")
    uri, frame = new_post(community, embed={
        "$type": "social.coves.embed.images", "images": [{"image": BLOB}]})
    await seed([f.profile(community, name="c"), frame])
    # what the identity resolver records from the community's DID document
    await db.execute("UPDATE identities SET pds_endpoint = 'https://own-pds.test' WHERE did = $1",
                     community)
    post = (await get_json(client, query([uri])))[1]["posts"][0]
    assert post["embed"]["images"][0]["thumb"].startswith(
        f"https://own-pds.test/xrpc/com.atproto.sync.getBlob?did={community}")


async def _searchable(seed: Seed) -> dict[str, str]:
    community, other = f.did("c"), f.did("o")
    posts: dict[str, str] = {}
    frames = [f.profile(community, name="c"), f.profile(other, name="o")]
    for hours, (title, content, where, score) in enumerate([
            ("Rust borrow checker", "lifetimes explained", community, 5),
            ("Python typing", "the borrow of ideas", community, 1),
            ("Gardening", "tomatoes", community, 9),
            ("Borrow money", "loans", other, 3)]):
        uri, frame = new_post(where, title=title, content=content, tags=[title.split()[0].lower()],
                              createdAt=ago(hours=[2, 5, 1, 9][hours]))
        posts[title] = uri
        frames += [frame, *vote_frames(uri, score)]
    await seed(frames)
    return posts


async def test_search_matches_title_and_content_with_sorts(client: Client, seed: Seed) -> None:
    posts = await _searchable(seed)

    async def titles(**params: Any) -> list[str]:
        _status, body = await get_json(client, SEARCH, **params)
        by_uri = {uri: title for title, uri in posts.items()}
        return [by_uri[item["post"]["uri"]] for item in body["posts"]]

    assert set(await titles(q="borrow")) == {"Rust borrow checker", "Python typing", "Borrow money"}
    assert (await titles(q="borrow", sort="top")) == ["Rust borrow checker", "Borrow money",
                                                      "Python typing"]
    assert (await titles(q="borrow", sort="new")) == ["Rust borrow checker", "Python typing",
                                                      "Borrow money"]
    assert (await titles(q="borrow checker")) == ["Rust borrow checker"]
    assert (await titles(q="borrow -money", community=f.did("c"), sort="top")) == [
        "Rust borrow checker", "Python typing"]
    assert (await titles(q="borrow", tags=["python"])) == ["Python typing"]
    assert (await titles(q="tomatoes")) == ["Gardening"]
    assert (await titles(q="nothing-like-this")) == []


async def test_search_pages_by_relevance(client: Client, seed: Seed) -> None:
    community = f.did("c")
    frames = [f.profile(community, name="c")]
    for n in range(7):
        frames.append(new_post(community, title="word " * (n + 1), content="filler")[1])
    await seed(frames)
    seen, cursor = [], None
    while True:
        _status, body = await get_json(client, SEARCH, q="word", limit=3, cursor=cursor)
        seen += [item["post"]["uri"] for item in body["posts"]]
        cursor = body.get("cursor")
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 7


async def test_search_follows_edits_and_deletes(client: Client, seed: Seed) -> None:
    # The searched document is stored with the post (sql/0009): an edit must replace it.
    community = f.did("c")
    uri, frame = new_post(community, title="Sourdough starter", content="flour water")
    await seed([f.profile(community, name="c"), frame])

    async def found(q: str) -> list[str]:
        _status, body = await get_json(client, SEARCH, q=q)
        return [item["post"]["uri"] for item in body["posts"]]

    assert await found("sourdough") == [uri]
    await seed([f.post(community, rkey_of(uri), title="Rye bread", content="flour water",
                       operation="update")])
    assert (await found("sourdough"), await found("rye")) == ([], [uri])
    await seed([f.post(community, rkey_of(uri), operation="delete")])
    assert (await found("rye"), await found("flour")) == ([], [])


@pytest.mark.parametrize("q", ['"unterminated', "a & | ! b", "(((", "-"])
async def test_search_takes_any_text(client: Client, q: str) -> None:
    status, body = await get_json(client, SEARCH, q=q)
    assert status == 200 and body["posts"] == []


async def test_get_all_text_type_means_no_embed(client: Client, seed: Seed) -> None:
    community = f.did("c")
    text, text_frame = new_post(community)
    image, image_frame = new_post(community, embed={
        "$type": "social.coves.embed.images", "images": [{"image": BLOB}]})
    await seed([f.profile(community, name="c"), text_frame, image_frame])
    _status, body = await get_json(client, FEED_ALL, postType="text")
    assert [item["post"]["uri"] for item in body["feed"]] == [text]
    _status, body = await get_json(client, FEED_ALL, postType="image")
    assert [item["post"]["uri"] for item in body["feed"]] == [image]
