"""Identity and account events update only DIDs our records mention; `deleted` purges content."""

from __future__ import annotations

from engine.db import Connection, Database
from engine.records import DEFAULT_REGISTRY
from engine.writer import WritePlan
from tests import factories as f
from tests.helpers import explain, ingest, table

C, U1, U2, STRANGER = f.did("c"), f.did("u1"), f.did("u2"), f.did("stranger")
POST_RKEY = "3k7a3dmb5bk2c"
P = f.uri(C, f.POST, POST_RKEY)


async def identity_row(db: Database, did: str) -> dict | None:
    rows = await table(db, "SELECT handle, active, status, resolve_after IS NOT NULL AS due "
                           "FROM identities WHERE did = $1", did)
    return rows[0] if rows else None


async def test_records_register_the_dids_they_mention(writer_db: Database) -> None:
    await ingest(writer_db, [f.profile(C), f.post(C, POST_RKEY, author=U1), f.vote(U2, f.tid(), P)])
    dids = {r["did"] for r in await table(writer_db, "SELECT did FROM identities")}
    assert {C, U1, U2, f.did("creator")} <= dids
    assert (await identity_row(writer_db, U2))["due"]  # new DIDs are queued for resolution


async def test_identity_events_only_touch_known_dids(writer_db: Database) -> None:
    await ingest(writer_db, [f.vote(U1, f.tid(), P)])
    await ingest(writer_db, [f.identity(U1, "alice.test", time_us=f.BASE_TIME_US + 10),
                             f.identity(STRANGER, "bob.test")])
    assert (await identity_row(writer_db, U1))["handle"] == "alice.test"
    assert await identity_row(writer_db, STRANGER) is None
    # an older identity event replayed later does not win
    await ingest(writer_db, [f.identity(U1, "old.test", time_us=f.BASE_TIME_US + 5)])
    assert (await identity_row(writer_db, U1))["handle"] == "alice.test"


async def test_takedown_hides_and_reactivation_restores(writer_db: Database) -> None:
    await ingest(writer_db, [f.vote(U1, f.tid(), P)])
    await ingest(writer_db, [f.account(U1, False, "takendown", time_us=f.BASE_TIME_US + 10)])
    row = await identity_row(writer_db, U1)
    assert (row["active"], row["status"]) == (False, "takendown")
    await ingest(writer_db, [f.account(U1, True, time_us=f.BASE_TIME_US + 20)])
    row = await identity_row(writer_db, U1)
    assert (row["active"], row["status"]) == (True, None)
    await ingest(writer_db, [f.account(U1, False, "suspended", time_us=f.BASE_TIME_US + 15)])
    assert (await identity_row(writer_db, U1))["active"] is True  # older event: ignored


async def test_deleted_account_is_purged_and_counters_recounted(writer_db: Database) -> None:
    comment_rkey = f.tid()
    comment_uri = f.uri(U1, f.COMMENT, comment_rkey)
    vote = f.vote(U1, f.tid(), P)
    await ingest(writer_db, [
        f.profile(C), f.post(C, POST_RKEY, author=U2), vote, f.vote(U2, f.tid(), P),
        f.comment(U1, comment_rkey, root=P, content="mine"), f.comment(U2, f.tid(), root=P, parent=comment_uri),
        f.subscription(U1, f.tid(), C)])
    post = (await table(writer_db, "SELECT upvote_count, comment_count FROM posts"))[0]
    assert (post["upvote_count"], post["comment_count"]) == (2, 1)
    await ingest(writer_db, [f.account(U1, False, "deleted", time_us=f.BASE_TIME_US + 10**9)])
    post = (await table(writer_db, "SELECT upvote_count, comment_count FROM posts"))[0]
    assert (post["upvote_count"], post["comment_count"]) == (1, 0)
    assert await writer_db.fetchval("SELECT subscriber_count FROM communities") == 0
    placeholder = (await table(writer_db, "SELECT content, parent_uri, deleted_at IS NOT NULL AS gone, "
                                          "reply_count FROM comments WHERE uri = $1", comment_uri))[0]
    assert placeholder == {"content": None, "parent_uri": P, "gone": True, "reply_count": 1}
    assert await writer_db.fetchval("SELECT count(*) FROM votes WHERE did = $1 AND deleted_at IS NULL", U1) == 0
    # a replay of the deleted account's old events changes nothing (their revs are not newer)
    await ingest(writer_db, [vote])
    assert await writer_db.fetchval("SELECT upvote_count FROM posts") == 1


async def test_a_purge_finds_a_repos_records_through_an_index(writer_db: Database) -> None:
    """A deleted account's purge runs in the writer's transaction, every other event waiting:
    each table must find the repo's live records by index. (post_records by community and
    comment_stats by author were read whole: ~1 s each on 1M rows.)"""
    plan = WritePlan(DEFAULT_REGISTRY.tables, DEFAULT_REGISTRY.recounts)

    async def purge_plans(connection: Connection) -> dict[str, str]:
        await connection.execute("SET LOCAL enable_seqscan = off")  # a scan only if no index
        return {table.name: "\n".join(await explain(connection, sql, [U1]))
                for table, sql in plan.purge.items()}

    plans = await writer_db.transaction(purge_plans)
    assert {"post_records", "comment_stats", "votes", "subscriptions"} <= plans.keys()
    for name, shown in plans.items():
        assert "Seq Scan" not in shown, (name, shown)
