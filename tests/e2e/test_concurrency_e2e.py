"""Suite 4, many writers at once: 25 users vote on one post, 25 comment on it, 30 subscribe to
one community, 10 posts through the API at once, and 5 callers race to create the same
community name (exactly one wins); rows and counters are verified exactly in the database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio

from engine.db import Database
from engine.reconcile import reconcile
from tests.pds.harness import PdsNetwork

from .appview import open_appview
from .forum import COMMENT, NOW, SUBSCRIPTION, VOTE


async def all_at_once(jobs: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    results: list[Any] = [None] * len(jobs)

    async def run(index: int) -> None:
        results[index] = await jobs[index]()

    async with trio.open_nursery() as nursery:
        for index in range(len(jobs)):
            nursery.start_soon(run, index)
    return results


async def test_concurrent_writers(pds_network_factory: Callable[..., PdsNetwork], db: Database,
                                  database_url: str) -> None:
    network = pds_network_factory(1)
    async with open_appview(network, database_url, db=db) as app:
        users = await app.users(30)
        owner = users[0]
        status, community = await app.call(owner, "social.coves.community.create",
                                           {"name": "busy", "description": "crowded"})
        assert status == 200
        c = community["did"]
        status, post = await app.call(owner, "social.coves.community.post.create",
                                      {"community": c, "title": "vote here"})
        ref = {"uri": post["uri"], "cid": post["cid"]}

        votes = await all_at_once([lambda u=u: u.create(VOTE, {
            "subject": ref, "direction": "up", "createdAt": NOW}) for u in users[:25]])
        comments = await all_at_once([lambda u=u: u.create(COMMENT, {
            "reply": {"root": ref, "parent": ref}, "content": f"from {u.did}",
            "createdAt": NOW}) for u in users[:25]])
        subscriptions = await all_at_once([lambda u=u: u.create(SUBSCRIPTION, {
            "subject": c, "createdAt": NOW}) for u in users])
        api_posts = await all_at_once([lambda u=u, n=n: app.call(u, "social.coves.community.post.create", {
            "community": c, "title": f"at once {n}"}) for n, u in enumerate(users[:10])])
        assert [status for status, _ in api_posts] == [200] * 10
        race = await all_at_once([lambda u=u: app.call(u, "social.coves.community.create", {
            "name": "samename", "description": "mine"}) for u in users[:5]])

        async def counted() -> bool:
            row = await db.fetchrow("SELECT upvote_count, comment_count FROM posts WHERE uri = $1",
                                    post["uri"])
            subscribers = await db.fetchval("SELECT subscriber_count FROM communities WHERE did = $1", c)
            return (row["upvote_count"], row["comment_count"], subscribers) == (25, 25, 30)

        await app.eventually(counted)
        assert {r["uri"] for r in await db.fetch(
            "SELECT uri FROM votes WHERE subject_uri = $1 AND deleted_at IS NULL", post["uri"])} == \
            {uri for uri, _ in votes}
        assert {r["uri"] for r in await db.fetch(
            "SELECT uri FROM comments WHERE root_uri = $1 AND deleted_at IS NULL", post["uri"])} == \
            {uri for uri, _ in comments}
        assert {r["uri"] for r in await db.fetch(
            "SELECT uri FROM subscriptions WHERE subject = $1 AND deleted_at IS NULL", c)} == \
            {uri for uri, _ in subscriptions}
        assert await db.fetchval("SELECT post_count FROM communities WHERE did = $1", c) == 11
        assert await db.fetchval("SELECT count(*) FROM posts WHERE community_did = $1 "
                                 "AND deleted_at IS NULL", c) == 11
        assert sorted(status for status, _ in race) == [200, 409, 409, 409, 409]
        assert {out["error"] for status, out in race if status == 409} == {"NameTaken"}
        winner = next(out for status, out in race if status == 200)
        rows = await db.fetch("SELECT did, state FROM community_credentials WHERE name = 'samename'")
        assert [tuple(row) for row in rows] == [(winner["did"], "ready")]

        async def one_samename() -> bool:
            return await db.fetchval("SELECT count(*) FROM communities WHERE name = 'samename'") == 1

        await app.eventually(one_samename)
    assert await reconcile(db) == []
