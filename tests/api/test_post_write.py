"""social.coves.community.post.create / update / delete against the reference PDS: the
record in the community's repo with the caller as author, read-after-write through the writer
path (a later firehose copy of the same rev changes nothing), content rules, author checks,
swapRecord, and aggregators' authorization and hourly budget."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from api.optimistic import apply_commit
from engine.db import Database
from engine.reconcile import reconcile
from tests import factories as f

from .conftest import Seed, WriteWorld, get_json
from .test_aggregator import authorization, service
from .test_community_write import create

CREATE = "social.coves.community.post.create"
UPDATE = "social.coves.community.post.update"
DELETE = "social.coves.community.post.delete"
FEED = "/xrpc/social.coves.feed.getCommunity"
EXTERNAL = {"$type": "social.coves.embed.external", "external": {"uri": "https://example.com"}}


async def community(world: WriteWorld, **rules: Any) -> str:
    status, out = await create(world, f.did("creator"), **({"contentRules": rules} if rules else {}))
    assert status == 200, out
    did: str = out["did"]
    return did


async def post(world: WriteWorld, community_did: str, author: str, **fields: Any) -> tuple[int, Any]:
    return await world.call(CREATE, {"community": community_did, "title": "hello", **fields},
                            caller=author)


async def feed(world: WriteWorld, community_did: str) -> list[dict[str, Any]]:
    status, body = await get_json(world.client, FEED, community=community_did, sort="new")
    assert status == 200, body
    return [item["post"] for item in body["feed"]]


async def test_a_created_post_is_in_its_feed_at_once_and_the_firehose_copy_changes_nothing(
        world: WriteWorld, db: Database) -> None:
    c, author = await community(world), f.did("author")
    status, out = await post(world, c, author, content="first words")
    assert status == 200, out
    [shown] = await feed(world, c)
    assert shown["uri"] == out["uri"] and shown["cid"] == out["cid"]
    assert shown["author"]["did"] == author and shown["record"]["author"] == author
    row = await db.fetchrow("SELECT r.rev, s.rev AS stats_rev, c.post_count FROM post_records AS r "
                            "JOIN post_stats AS s USING (uri) JOIN communities AS c "
                            "ON c.did = s.community_did WHERE r.uri = $1", out["uri"])
    assert row["rev"] == row["stats_rev"] and row["post_count"] == 1
    # the firehose delivers the same commit (same rev): the rev gate keeps what is there
    stale = {**shown["record"], "title": "not what the commit said"}
    await apply_commit(world.writes.writer, did=c, collection="social.coves.community.post",
                       rkey=out["uri"].rsplit("/", 1)[1], rev=row["rev"], operation="create",
                       record=stale, cid=out["cid"])
    assert (await feed(world, c))[0]["title"] == "hello"
    assert await reconcile(db) == []


async def test_content_rules_of_the_community_and_ours(world: WriteWorld) -> None:
    author = f.did("author")
    text_only = await community(world, textOnly=True)
    status, out = await post(world, text_only, author, embed=EXTERNAL)
    assert (status, out["error"]) == (400, "ContentRuleViolation")
    links_only = await community(world, allowedEmbedTypes=["external"])
    images = {"$type": "social.coves.embed.images", "images": [{"image": {
        "$type": "blob", "ref": {"$link": "bafkreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"},
        "mimeType": "image/png", "size": 10}}]}
    status, out = await post(world, links_only, author, embed=images)
    assert (status, out["error"]) == (400, "ContentRuleViolation")
    assert (await post(world, links_only, author, embed=EXTERNAL))[0] == 200
    anything = await community(world)
    status, out = await post(world, anything, author, labels={"values": [{"val": "porn"}]})
    assert (status, out["error"]) == (400, "InvalidContent")
    assert (await post(world, anything, author, labels={"values": [{"val": "nsfw"}]}))[0] == 200
    status, out = await post(world, anything, author, title="é" * 301)  # 301 graphemes
    assert (status, out["error"]) == (400, "InvalidRequest") and "title" in out["message"]
    status, out = await post(world, anything, author, title="🇫🇷" * 200)  # 200 graphemes, 1600 bytes
    assert status == 200
    status, out = await world.call(CREATE, {"community": anything}, caller=author)
    assert (status, out["error"]) == (400, "InvalidContent")
    status, out = await post(world, f.did("nowhere"), author)
    assert (status, out["error"]) == (404, "CommunityNotFound")


async def test_only_the_author_edits_or_deletes(world: WriteWorld) -> None:
    c, author = await community(world), f.did("author")
    _, out = await post(world, c, author)
    for nsid in (UPDATE, DELETE):
        status, refused = await world.call(nsid, {"uri": out["uri"], "title": "mine"},
                                           caller=f.did("intruder"))
        assert (status, refused["error"]) == (403, "NotAuthorized")
    status, edited = await world.call(UPDATE, {"uri": out["uri"], "title": "edited"}, caller=author)
    assert status == 200 and edited["cid"] != out["cid"]
    assert [p["title"] for p in await feed(world, c)] == ["edited"]
    assert (await world.call(DELETE, {"uri": out["uri"]}, caller=author))[0] == 200
    assert await feed(world, c) == []
    status, gone = await world.call(DELETE, {"uri": out["uri"]}, caller=author)
    assert (status, gone["error"]) == (404, "PostNotFound")


async def test_a_concurrent_edit_on_the_pds_is_not_overwritten(world: WriteWorld) -> None:
    c, author = await community(world), f.did("author")
    _, out = await post(world, c, author)
    pds = world.writes.pds
    read = pds.get_record

    async def read_then_someone_edits(*args: Any, **kwargs: Any) -> Any:
        current = await read(*args, **kwargs)
        holder = await world.writes.store.find(did=c)
        token = await world.writes.tokens.access_token(holder)
        record = {**current["value"], "title": "their edit"}
        await pds.put_record(world.pds_url, token, c, "social.coves.community.post",
                             out["uri"].rsplit("/", 1)[1], record)
        return current

    pds.get_record = read_then_someone_edits  # type: ignore[method-assign]
    status, refused = await world.call(UPDATE, {"uri": out["uri"], "title": "mine"}, caller=author)
    assert (status, refused["error"]) == (409, "InvalidSwap")
    pds.get_record = read  # type: ignore[method-assign]
    current = await read(world.pds_url, c, "social.coves.community.post", out["uri"].rsplit("/", 1)[1])
    assert current["value"]["title"] == "their edit"


async def test_aggregators_need_an_enabled_authorization_and_keep_to_their_hourly_budget(
        make_write_world: Callable[..., AbstractAsyncContextManager[WriteWorld]],
        seed: Seed) -> None:
    bot, trusted = f.did("newsbot"), f.did("trustedbot")
    async with make_write_world(TRUSTED_AGGREGATORS=trusted) as world:
        c, other = await community(world), await community(world)
        await seed([service(bot, "News"), service(trusted, "Trusted"),
                    authorization(c, bot), authorization(c, trusted),
                    authorization(other, bot, enabled=False)])
        status, out = await post(world, other, bot)
        assert (status, out["error"]) == (403, "NotAuthorized")
        made = [await post(world, c, bot, title=f"news {n}") for n in range(10)]
        assert [status for status, _ in made] == [200] * 10
        status, out = await post(world, c, bot)
        assert (status, out["error"]) == (429, "RateLimitExceeded")
        # editing its own post is not a new post
        status, _ = await world.call(UPDATE, {"uri": made[0][1]["uri"], "title": "corrected"},
                                     caller=bot)
        assert status == 200
        for n in range(12):  # trusted: no budget
            assert (await post(world, c, trusted, title=f"trusted {n}"))[0] == 200
        assert (await post(world, c, f.did("person")))[0] == 200  # people are not aggregators
        world.clock.advance(3600)  # the hour is over
        assert (await post(world, c, bot))[0] == 200
