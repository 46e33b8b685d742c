"""social.coves.aggregator.*: getServices, getAuthorizations, listForCommunity."""

from __future__ import annotations

from typing import Any

from tests import factories as f

from .conftest import Client, Seed, get_json
from .world import new_post

SERVICE = "social.coves.aggregator.service"
AUTHORIZATION = "social.coves.aggregator.authorization"
SERVICES = "/xrpc/social.coves.aggregator.getServices"
AUTHORIZATIONS = "/xrpc/social.coves.aggregator.getAuthorizations"
FOR_COMMUNITY = "/xrpc/social.coves.aggregator.listForCommunity"


def service(did: str, name: str, **extra: Any) -> bytes:
    return f.commit(did, SERVICE, "self", record={"did": did, "displayName": name,
                                                  "createdAt": "2026-01-01T00:00:00Z", **extra})


def authorization(community: str, aggregator: str, *, enabled: bool = True,
                  created: str = "2026-01-01T00:00:00Z", **extra: Any) -> bytes:
    return f.commit(community, AUTHORIZATION, f.tid(), record={
        "aggregatorDid": aggregator, "communityDid": community, "enabled": enabled,
        "createdBy": f.did("mod"), "createdAt": created, **extra})


async def test_services_in_request_order_with_detailed_stats(client: Client, seed: Seed) -> None:
    bot, other, community = f.did("bot"), f.did("other"), f.did("c")
    await seed([service(bot, "News Bot", configSchema={"type": "object", "default": None}),
                service(other, "Other"), f.profile(community, name="c"),
                authorization(community, bot), new_post(community, author=bot)[1]])
    path = f"{SERVICES}?dids={other}&dids={f.did('unknown')}&dids={bot}&detailed=true"
    _status, body = await get_json(client, path)
    assert [view["did"] for view in body["views"]] == [other, bot]
    news = body["views"][1]
    assert news["$type"] == "social.coves.aggregator.defs#aggregatorViewDetailed"
    assert news["stats"] == {"communitiesUsing": 1, "postsCreated": 1}
    assert news["configSchema"] == {"type": "object", "default": None}
    _status, plain = await get_json(client, f"{SERVICES}?dids={bot}")
    assert "stats" not in plain["views"][0]


async def test_authorizations_of_an_aggregator(client: Client, seed: Seed) -> None:
    bot = f.did("bot")
    communities = [f.did(f"c{n}") for n in range(3)]
    frames = [service(bot, "Bot")]
    for n, community in enumerate(communities):
        frames += [f.profile(community, name=f"c{n}"),
                   authorization(community, bot, enabled=n != 1, created=f"2026-0{n + 1}-01T00:00:00Z",
                                 config={"k": n})]
    await seed(frames)
    _status, body = await get_json(client, AUTHORIZATIONS, aggregatorDid=bot)
    assert [a["communityDid"] for a in body["authorizations"]] == [communities[2], communities[0]]
    assert body["authorizations"][0]["aggregator"]["did"] == bot
    assert body["authorizations"][0]["config"] == {"k": 2}
    _status, body = await get_json(client, AUTHORIZATIONS, aggregatorDid=bot, enabledOnly="false",
                                   limit=2)
    assert len(body["authorizations"]) == 2 and "cursor" in body
    status, body = await get_json(client, AUTHORIZATIONS, aggregatorDid=f.did("nobot"))
    assert (status, body["error"]) == (404, "AggregatorNotFound")


async def test_aggregators_of_a_community(client: Client, seed: Seed) -> None:
    community, on, off = f.did("c"), f.did("on"), f.did("off")
    await seed([f.profile(community, name="c"), service(on, "On"), service(off, "Off"),
                authorization(community, on, created="2026-02-01T00:00:00Z"),
                authorization(community, off, enabled=False, created="2026-01-01T00:00:00Z")])
    _status, body = await get_json(client, FOR_COMMUNITY, community=community)
    assert [(a["aggregatorDid"], a["enabled"]) for a in body["aggregators"]] == [(on, True), (off, False)]
    assert body["aggregators"][0]["communityName"] == "c"
    _status, body = await get_json(client, FOR_COMMUNITY, community=community, enabledOnly="true")
    assert [a["aggregatorDid"] for a in body["aggregators"]] == [on]
    status, body = await get_json(client, FOR_COMMUNITY, community=f.did("none"))
    assert (status, body["error"]) == (404, "CommunityNotFound")
