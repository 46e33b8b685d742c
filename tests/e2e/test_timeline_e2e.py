"""Suite 3, a timeline across communities: four communities with posts through the API and
votes from users' own repos; a reader subscribed to two, unsubscribed from one and blocking
another sees exactly the two in new, top and hot order, page by page with no repeat or gap."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.db import Database
from tests.pds.harness import PdsNetwork

from .appview import AppView, User, open_appview
from .forum import NOW, SUBSCRIPTION, VOTE

BLOCK = "social.coves.community.block"
TIMELINE = "social.coves.feed.getTimeline"


async def walk(app: AppView, reader: User, sort: str, limit: int = 3) -> list[dict[str, Any]]:
    """Every timeline page in `sort`, following cursors until there is none."""
    posts: list[dict[str, Any]] = []
    cursor = None
    for _ in range(20):
        status, page = await app.get(TIMELINE, reader, sort=sort, limit=limit, cursor=cursor,
                                     timeframe="all" if sort == "top" else None)
        assert status == 200, page
        assert len(page["feed"]) <= limit
        posts += [item["post"] for item in page["feed"]]
        cursor = page.get("cursor")
        if not cursor:
            return posts
    raise AssertionError("the timeline never ended")


async def test_timeline_across_communities(pds_network_factory: Callable[..., PdsNetwork],
                                           db: Database, database_url: str) -> None:
    network = pds_network_factory(1)
    async with open_appview(network, database_url, db=db) as app:
        creator, reader, *voters = await app.users(6)
        communities = []
        for name in ("one", "two", "gone", "muted"):
            status, out = await app.call(creator, "social.coves.community.create",
                                         {"name": name, "description": name})
            assert status == 200, out
            communities.append(out["did"])
        one, two, gone, muted = communities
        posts: dict[str, list[dict[str, str]]] = {c: [] for c in communities}
        for n in range(4):
            for c in communities:
                status, post = await app.call(voters[n % len(voters)],
                                              "social.coves.community.post.create",
                                              {"community": c, "title": f"post {n}"})
                assert status == 200, post
                posts[c].append(post)
        subscriptions = {c: (await reader.create(SUBSCRIPTION, {"subject": c, "createdAt": NOW}))[0]
                         for c in communities}
        await reader.delete(subscriptions[gone])
        await reader.create(BLOCK, {"subject": muted, "createdAt": NOW})
        # votes: post k of community one gets k up votes, of community two k down votes
        score: dict[str, int] = {}
        for c, direction in ((one, "up"), (two, "down"), (muted, "up")):
            for k, post in enumerate(posts[c]):
                for voter in voters[:k]:
                    await voter.create(VOTE, {"subject": post, "direction": direction,
                                              "createdAt": NOW})
                score[post["uri"]] = k if direction == "up" else -k

        async def settled() -> bool:
            rows = await db.fetch("SELECT uri, score FROM posts WHERE uri = ANY($1)", list(score))
            return len(rows) == len(score) and all(r["score"] == score[r["uri"]] for r in rows) \
                and await db.fetchval("SELECT count(*) FROM community_blocks") == 1 \
                and await db.fetchval("SELECT count(*) FROM subscriptions "
                                      "WHERE deleted_at IS NULL") == 3

        await app.eventually(settled)
        wanted = {p["uri"] for c in (one, two) for p in posts[c]}
        for sort in ("new", "top", "hot"):
            walked = await walk(app, reader, sort)
            uris = [p["uri"] for p in walked]
            assert len(uris) == len(set(uris)) == 8 and set(uris) == wanted, sort
        top = [p["stats"]["score"] for p in await walk(app, reader, "top")]
        assert top == sorted(top, reverse=True) and top[0] == 3 and top[-1] == -3
        new = [p["createdAt"] for p in await walk(app, reader, "new", limit=8)]
        assert new == sorted(new, reverse=True)
        # the blocked community also leaves discovery for the reader, not for others
        _, discover = await app.get("social.coves.feed.getDiscover", reader, limit=50)
        assert muted not in {item["post"]["community"]["did"] for item in discover["feed"]}
        _, anyone = await app.get("social.coves.feed.getDiscover", limit=50)
        assert muted in {item["post"]["community"]["did"] for item in anyone["feed"]}
