"""reconcile: finds exactly the counters that drifted, and --fix repairs them."""

from __future__ import annotations

from engine.db import Database
from engine.reconcile import reconcile
from tests import factories as f
from tests.helpers import ingest

C, U1, U2 = f.did("c"), f.did("u1"), f.did("u2")
P = f.uri(C, f.POST, "3k7a3dmb5bk2c")


async def seed(db: Database) -> None:
    await ingest(db, [f.profile(C), f.post(C, "3k7a3dmb5bk2c"), f.vote(U1, f.tid(), P),
                      f.vote(U2, f.tid(), P, "down"), f.subscription(U1, f.tid(), C),
                      f.comment(U1, f.tid(), root=P)])


async def test_engine_leaves_no_drift(writer_db: Database) -> None:
    await seed(writer_db)
    assert await reconcile(writer_db) == []


async def test_drift_is_reported_and_fixed(writer_db: Database) -> None:
    await seed(writer_db)
    await writer_db.execute("UPDATE post_stats SET upvote_count = 7, comment_count = 0")
    await writer_db.execute("UPDATE communities SET subscriber_count = 3")
    drift = await reconcile(writer_db)
    assert sorted(str(d) for d in drift) == [
        f"communities {C}: subscriber_count 3→1",
        f"post_stats {P}: comment_count 0→1",
        f"post_stats {P}: upvote_count 7→1",
    ]
    assert len(await reconcile(writer_db, fix=True)) == 3
    assert await reconcile(writer_db) == []
    assert await writer_db.fetchval("SELECT upvote_count FROM posts") == 1
