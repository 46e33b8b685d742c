"""Suite 1, a user journey end to end: A creates a community through the API, B subscribes
with a record on B's own PDS, A posts through the API, B comments, A replies, both vote; the
counts and both timelines come back right over HTTP."""

from __future__ import annotations

from collections.abc import Callable

from engine.db import Database
from engine.reconcile import reconcile
from tests.pds.harness import PdsNetwork

from .appview import open_appview
from .forum import COMMENT, NOW, SUBSCRIPTION, VOTE


async def test_two_users_journey(pds_network_factory: Callable[..., PdsNetwork], db: Database,
                                 database_url: str) -> None:
    network = pds_network_factory(1)
    async with open_appview(network, database_url, db=db) as app:
        a, b = await app.user("alice"), await app.user("bob")
        status, community = await app.call(a, "social.coves.community.create",
                                           {"name": "journey", "description": "where it starts"})
        assert status == 200, community
        c = community["did"]
        # subscribing is a record in B's own repo; the AppView says so when asked to do it
        status, refused = await app.call(b, "social.coves.community.subscribe", {"community": c})
        assert (status, refused["error"]) == (400, "WriteToYourPDS")
        await b.create(SUBSCRIPTION, {"subject": c, "createdAt": NOW})
        status, post = await app.call(a, "social.coves.community.post.create",
                                      {"community": c, "title": "Welcome", "content": "Say hi"})
        assert status == 200, post
        post_ref = {"uri": post["uri"], "cid": post["cid"]}
        comment_uri, comment_cid = await b.create(COMMENT, {
            "reply": {"root": post_ref, "parent": post_ref}, "content": "hi!", "createdAt": NOW})
        comment_ref = {"uri": comment_uri, "cid": comment_cid}
        reply_uri, reply_cid = await a.create(COMMENT, {
            "reply": {"root": post_ref, "parent": comment_ref}, "content": "welcome, B",
            "createdAt": NOW})
        for voter in (a, b):
            await voter.create(VOTE, {"subject": post_ref, "direction": "up", "createdAt": NOW})
        await b.create(VOTE, {"subject": {"uri": reply_uri, "cid": reply_cid},
                              "direction": "down", "createdAt": NOW})

        async def thread_counted() -> bool:
            status, body = await app.get("social.coves.community.comment.getComments",
                                         post=post["uri"])
            if status != 200 or body["post"]["stats"]["upvotes"] != 2:
                return False
            replies = [r for top in body["comments"] for r in top.get("replies") or ()]
            return len(body["comments"]) == 1 and len(replies) == 1 and \
                replies[0]["comment"]["stats"]["downvotes"] == 1

        await app.eventually(thread_counted, what="the thread and its votes indexed")
        status, thread = await app.get("social.coves.community.comment.getComments", a,
                                       post=post["uri"])
        stats = thread["post"]["stats"]
        assert (stats["upvotes"], stats["downvotes"], stats["score"], stats["commentCount"]) == \
            (2, 0, 2, 1)
        assert thread["post"]["viewer"]["vote"] == "up"
        [top] = thread["comments"]
        assert top["comment"]["uri"] == comment_uri and top["comment"]["stats"]["replyCount"] == 1
        assert top["replies"][0]["comment"]["uri"] == reply_uri

        status, view = await app.get("social.coves.community.get", b, community=c)
        assert status == 200
        assert (view["subscriberCount"], view["postCount"], view["viewer"]["subscribed"]) == \
            (1, 1, True)
        _, timeline_b = await app.get("social.coves.feed.getTimeline", b)
        assert [item["post"]["uri"] for item in timeline_b["feed"]] == [post["uri"]]
        _, timeline_a = await app.get("social.coves.feed.getTimeline", a)
        assert timeline_a["feed"] == []  # A created it but did not subscribe
        status, unauth = await app.get("social.coves.feed.getTimeline")
        assert status == 401
    assert await reconcile(db) == []
    assert await db.fetch("SELECT reason, detail FROM ingest_rejects") == []
