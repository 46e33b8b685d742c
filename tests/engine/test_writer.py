"""The writer's merge semantics on a real Postgres: rev gate, tombstones, recounts, rejects, cursor."""

from __future__ import annotations

import pytest

from engine.db import Database
from engine.records import DEFAULT_REGISTRY
from engine.tables import Column, Recount, Table
from engine.writer import WritePlan, merge_order
from tests import factories as f
from tests.helpers import ingest, table

C1, C2 = f.did("community1"), f.did("community2")
U1, U2 = f.did("user1"), f.did("user2")


async def communities(db: Database) -> dict[str, dict]:
    rows = await table(db, "SELECT did, name, rev, deleted_at IS NOT NULL AS deleted, "
                           "subscriber_count FROM communities")
    return {row["did"]: row for row in rows}


async def test_create_then_update_keeps_newest(writer_db: Database) -> None:
    r1, r2 = f.tid(1), f.tid(2)
    await ingest(writer_db, [f.profile(C1, name="old", rev=r1),
                             f.profile(C1, name="new", rev=r2, operation="update")])
    assert (await communities(writer_db))[C1]["name"] == "new"


async def test_older_update_arriving_late_is_ignored(writer_db: Database) -> None:
    r1, r2 = f.tid(1), f.tid(2)
    await ingest(writer_db, [f.profile(C1, name="new", rev=r2, operation="update")])
    await ingest(writer_db, [f.profile(C1, name="old", rev=r1)])
    row = (await communities(writer_db))[C1]
    assert (row["name"], row["rev"]) == ("new", r2)


async def test_duplicates_in_one_batch_collapse_to_newest(writer_db: Database) -> None:
    r1, r2 = f.tid(1), f.tid(2)
    frames = [f.profile(C1, name="b", rev=r2), f.profile(C1, name="a", rev=r1),
              f.profile(C1, name="b", rev=r2)]
    await ingest(writer_db, frames)
    assert (await communities(writer_db))[C1]["name"] == "b"


async def test_delete_leaves_tombstone_that_blocks_older_create(writer_db: Database) -> None:
    r1, r2 = f.tid(1), f.tid(2)
    await ingest(writer_db, [f.profile(C1, rev=r2, operation="delete")])
    await ingest(writer_db, [f.profile(C1, name="zombie", rev=r1)])
    row = (await communities(writer_db))[C1]
    assert row["deleted"] and row["name"] is None and row["rev"] == r2


async def test_newer_create_resurrects_tombstone(writer_db: Database) -> None:
    r1, r2, r3 = f.tid(1), f.tid(2), f.tid(3)
    await ingest(writer_db, [f.profile(C1, name="a", rev=r1), f.profile(C1, rev=r2, operation="delete")])
    await ingest(writer_db, [f.profile(C1, name="again", rev=r3)])
    row = (await communities(writer_db))[C1]
    assert not row["deleted"] and row["name"] == "again"


async def test_subscriptions_before_community_are_counted(writer_db: Database) -> None:
    await ingest(writer_db, [f.subscription(U1, f.tid(), C1), f.subscription(U2, f.tid(), C1)])
    assert await communities(writer_db) == {}
    await ingest(writer_db, [f.profile(C1)])
    assert (await communities(writer_db))[C1]["subscriber_count"] == 2


async def test_subscriber_count_follows_delete_and_recreate(writer_db: Database) -> None:
    rkey = f.tid()
    r1, r2, r3 = f.tid(10), f.tid(11), f.tid(12)
    await ingest(writer_db, [f.profile(C1), f.subscription(U1, rkey, C1, rev=r1)])
    assert (await communities(writer_db))[C1]["subscriber_count"] == 1
    await ingest(writer_db, [f.subscription(U1, rkey, C1, rev=r2, operation="delete")])
    assert (await communities(writer_db))[C1]["subscriber_count"] == 0
    await ingest(writer_db, [f.subscription(U1, rkey, C1, rev=r3)])
    assert (await communities(writer_db))[C1]["subscriber_count"] == 1


async def test_update_changing_an_immutable_subject_is_refused(writer_db: Database) -> None:
    rkey = f.tid()
    r1, r2 = f.tid(1), f.tid(2)
    await ingest(writer_db, [f.profile(C1), f.profile(C2), f.subscription(U1, rkey, C1, rev=r1)])
    await ingest(writer_db, [f.subscription(U1, rkey, C2, rev=r2, operation="update")])
    rows = await communities(writer_db)
    assert (rows[C1]["subscriber_count"], rows[C2]["subscriber_count"]) == (1, 0)
    assert await writer_db.fetchval("SELECT rev FROM subscriptions") == r1
    reject = (await table(writer_db, "SELECT reason, detail, rev FROM ingest_rejects"))[0]
    assert reject["reason"] == "immutable_field" and reject["rev"] == r2
    assert reject["detail"].startswith("subject: cannot change once set")


async def test_tombstone_keeps_subject_and_a_late_create_fills_it(writer_db: Database) -> None:
    rkey = f.tid()
    r1, r2 = f.tid(1), f.tid(2)
    await ingest(writer_db, [f.profile(C1), f.subscription(U1, rkey, C1, rev=r2, operation="delete")])
    row = (await table(writer_db, "SELECT subject, rev, deleted_at FROM subscriptions"))[0]
    assert row["subject"] is None and row["deleted_at"] is not None
    await ingest(writer_db, [f.subscription(U1, rkey, C1, rev=r1)])
    row = (await table(writer_db, "SELECT subject, rev, deleted_at, content_visibility FROM subscriptions"))[0]
    assert (row["subject"], row["rev"], row["content_visibility"]) == (C1, r2, None)
    assert row["deleted_at"] is not None
    assert (await communities(writer_db))[C1]["subscriber_count"] == 0
    assert await writer_db.fetchval("SELECT count(*) FROM ingest_rejects") == 0


async def test_two_records_of_one_user_count_once(writer_db: Database) -> None:
    await ingest(writer_db, [f.profile(C1), f.subscription(U1, f.tid(), C1),
                             f.subscription(U1, f.tid(), C1)])
    assert (await communities(writer_db))[C1]["subscriber_count"] == 1


async def test_rejects_are_stored_once_with_reason(writer_db: Database) -> None:
    bad = [b"{not json", f.subscription(U1, f.tid(), "not-a-did"), f.profile(C1, name=None)]
    await ingest(writer_db, bad + bad)
    rows = await table(writer_db, "SELECT reason, detail, seen_count, did FROM ingest_rejects ORDER BY id")
    assert [(r["reason"], r["seen_count"]) for r in rows] == [
        ("invalid_json", 2), ("invalid_record", 2), ("invalid_record", 2)]
    assert rows[1]["detail"] == "subject: must be a did" and rows[1]["did"] == U1
    assert rows[2]["detail"] == "name: must not be null"


async def test_wrong_rkey_for_profile_is_rejected(writer_db: Database) -> None:
    frame = f.commit(C1, f.PROFILE, "notself", record={"name": "x"})
    await ingest(writer_db, [frame])
    assert await writer_db.fetchval("SELECT reason FROM ingest_rejects") == "invalid_rkey"


async def test_row_postgres_refuses_becomes_reject_and_rest_commits(writer_db: Database) -> None:
    # Postgres text cannot hold U+0000: the batch fails, the writer retries event by event.
    frames = [f.profile(C1, name="fine"), f.profile(C2, name="nul\u0000here"),
              f.subscription(U1, f.tid(), C1)]
    await ingest(writer_db, frames)
    rows = await communities(writer_db)
    assert set(rows) == {C1} and rows[C1]["subscriber_count"] == 1
    reject = await table(writer_db, "SELECT reason, did, detail FROM ingest_rejects")
    assert reject[0]["reason"] == "database_error" and reject[0]["did"] == C2


async def test_cursor_is_committed_and_never_moves_back(writer_db: Database) -> None:
    frames = [f.profile(C1), f.profile(C2)]
    await ingest(writer_db, frames, name="src")
    assert await writer_db.fetchval("SELECT cursor FROM ingest_cursors WHERE source = 'src'") == 2
    await ingest(writer_db, frames[:1], name="src")
    assert await writer_db.fetchval("SELECT cursor FROM ingest_cursors WHERE source = 'src'") == 2


async def test_unknown_collections_are_skipped_not_rejected(writer_db: Database) -> None:
    frames = [f.commit(U1, "app.bsky.feed.like", f.tid(), record={"x": 1}), f.identity(U1)]
    assert await ingest(writer_db, frames, name="src") == 2
    assert await writer_db.fetchval("SELECT count(*) FROM ingest_rejects") == 0


async def test_value_the_driver_cannot_encode_becomes_reject_and_rest_commits(
        writer_db: Database) -> None:
    # orjson parses JSON nested up to 1024 levels but writes (the jsonb codec) only 254: the
    # record passes decode and lexicon, then COPY raised TypeError, which stopped the writer.
    deep = f.profile(C2, name="deep", extra="DEEP").replace(
        b'"DEEP"', b"[" * 300 + b"1" + b"]" * 300)
    await ingest(writer_db, [f.profile(C1, name="fine"), deep, f.subscription(U1, f.tid(), C1)])
    rows = await communities(writer_db)
    assert set(rows) == {C1} and rows[C1]["subscriber_count"] == 1
    reject = await table(writer_db, "SELECT reason, did, detail FROM ingest_rejects")
    assert [(r["reason"], r["did"]) for r in reject] == [("database_error", C2)]
    assert "TypeError" in reject[0]["detail"]


async def test_one_refused_event_costs_a_few_sub_writes_not_one_per_event(
        writer_db: Database, monkeypatch) -> None:  # noqa: ANN001
    # A refused event used to send its whole batch down the slow path, one savepoint per event
    # (~1 ms each): a NUL in one post per batch made ingestion ~20x slower. Halving finds it in
    # O(log n) sub-writes.
    import engine.writer
    calls: list[int] = []
    apply_rows = engine.writer._apply_rows

    async def counting(connection, plan, rows, *args):  # noqa: ANN001, ANN002, ANN202
        calls.append(sum(len(r) for r in rows.values()))
        return await apply_rows(connection, plan, rows, *args)

    monkeypatch.setattr(engine.writer, "_apply_rows", counting)
    frames = [f.profile(f.did(f"c{i}"), name=f"n{i}") for i in range(1000)]
    frames[637] = f.profile(f.did("c637"), name="nul\u0000here")
    # One batch of all 1000, however slow the machine (a latency-closed batch would add calls).
    await ingest(writer_db, frames, batch_size=1000, latency_s=3600)
    assert await writer_db.fetchval("SELECT count(*) FROM communities") == 999
    assert await writer_db.fetchval("SELECT count(*) FROM ingest_rejects") == 1
    assert calls[0] == 1000
    assert len(calls) <= 1 + 2 * 10, len(calls)  # the batch, then two halves per level


def test_merges_run_sources_before_targets_and_records_before_their_stats() -> None:
    registry = DEFAULT_REGISTRY
    order = [t.name for t in merge_order(registry.tables, registry.recounts)]
    assert sorted(order) == sorted(t.name for t in registry.tables)  # every table, once
    for source, target in (("votes", "post_stats"), ("votes", "comment_stats"),
                           ("comment_stats", "post_stats"), ("post_stats", "communities"),
                           ("subscriptions", "communities"), ("post_records", "post_stats"),
                           ("comment_records", "comment_stats")):
        assert order.index(source) < order.index(target), (source, target)
    plan = WritePlan(registry.tables, registry.recounts)
    # A comment's reply_count counts its own table: rows of the same statement are not seen.
    assert {(r.source, r.target) for r in registry.recounts if r not in plan.counted_at_insert} \
        == {("comment_stats", "comment_stats")}


def test_recounts_that_form_a_cycle_are_refused() -> None:
    a = Table("a", ("k",), (Column("k"), Column("rev"), Column("n")), tombstones=False)
    b = Table("b", ("k",), (Column("k"), Column("rev"), Column("n")), tombstones=False)
    cycle = (Recount("a", "k", ("n",), "b", "n", query="SELECT 0 AS n"),
             Recount("b", "k", ("n",), "a", "n", query="SELECT 0 AS n"))
    with pytest.raises(ValueError, match="cycle"):
        merge_order((a, b), cycle)


def test_merges_report_only_what_the_writer_reads() -> None:
    # Every counter is a Tally now: no merge's touched subjects are read, and keys only where the
    # table holds counters. A vote merge returned ~3,000 URIs twice per batch for nothing.
    plan = WritePlan(DEFAULT_REGISTRY.tables, DEFAULT_REGISTRY.recounts)
    by_name = {t.name: sql for t, sql in plan.merge.items()}
    assert not any("touched_" in sql for sql in by_name.values())
    for name in ("votes", "comment_records", "post_records", "subscriptions"):
        assert "merged_keys" not in by_name[name] and "refused_keys" in by_name[name]
    for name in ("post_stats", "comment_stats", "communities"):
        assert "merged_keys" in by_name[name] and "inserted_keys" in by_name[name]
