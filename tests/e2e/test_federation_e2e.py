"""Suite 7, two PDSes: the community lives on the first (created through the AppView), a user
of the second subscribes, comments and votes; the engine reads both firehoses and indexes all
of it; the second PDS's user is authenticated through the shared PLC."""

from __future__ import annotations

from collections.abc import Callable

from engine.config import load_config
from engine.db import Database
from engine.reconcile import reconcile
from engine.service import firehose_sources
from tests.pds.harness import PdsNetwork

from .appview import open_appview
from .forum import COMMENT, NOW, SUBSCRIPTION, VOTE
from .test_firehose_e2e import firehose_url


async def test_a_user_of_another_pds_takes_part(pds_network_factory: Callable[..., PdsNetwork],
                                                db: Database, database_url: str) -> None:
    network = pds_network_factory(2)
    both = ",".join(firehose_url(url) for url in network.pds_urls)
    sources = firehose_sources(load_config(environ={"FIREHOSE_URL": both}))
    assert len({source.name for source in sources}) == 2  # one cursor per PDS
    async with open_appview(network, database_url, db=db) as app:
        host, visitor = await app.user("host", pds=0), await app.user("visitor", pds=1)
        status, community = await app.call(host, "social.coves.community.create",
                                           {"name": "federated", "description": "two PDSes"})
        assert status == 200, community
        c = community["did"]
        _, post = await app.call(host, "social.coves.community.post.create",
                                 {"community": c, "title": "hello from PDS 1"})
        ref = {"uri": post["uri"], "cid": post["cid"]}
        await visitor.create(SUBSCRIPTION, {"subject": c, "createdAt": NOW})
        comment_uri, _ = await visitor.create(COMMENT, {"reply": {"root": ref, "parent": ref},
                                                        "content": "hi from PDS 2",
                                                        "createdAt": NOW})
        await visitor.create(VOTE, {"subject": ref, "direction": "up", "createdAt": NOW})

        async def indexed() -> bool:
            status, view = await app.get("social.coves.community.get", community=c)
            status2, thread = await app.get("social.coves.community.comment.getComments",
                                            post=post["uri"])
            return status == status2 == 200 and view["subscriberCount"] == 1 and \
                thread["post"]["stats"]["upvotes"] == 1 and len(thread["comments"]) == 1

        await app.eventually(indexed)
        _, thread = await app.get("social.coves.community.comment.getComments", visitor,
                                  post=post["uri"])
        assert thread["comments"][0]["comment"]["uri"] == comment_uri
        assert thread["comments"][0]["comment"]["author"]["did"] == visitor.did
        assert thread["post"]["viewer"]["vote"] == "up"  # the visitor's own view, authenticated
        _, timeline = await app.get("social.coves.feed.getTimeline", visitor)
        assert [item["post"]["uri"] for item in timeline["feed"]] == [post["uri"]]
        cursors = await db.fetch("SELECT source FROM ingest_cursors")
        assert len(cursors) == 2
    assert await reconcile(db) == []
