"""Every counter of children — a community's posts and subscribers, a post's comments, a
comment's replies — follows each batch by a delta (engine/tables.py, `Tally.rows`), like votes:
a new post in a community of a million costs what it costs in a community of ten, where a recount
per batch counted all of them (it grew with the community: 4 s of Postgres per 300k forum events
after 1.5M).

Exact against `reconcile`'s full recount through deletes, re-creates, duplicate subscriptions of
one user, replays in any order; and a counter corrupted by hand stays off by the same amount when
children arrive or the subject itself is updated (nothing quietly recounts it) until
`coves reconcile --fix`.
"""

from __future__ import annotations

import re

from engine.db import Database
from engine.reconcile import reconcile
from engine.records import DEFAULT_REGISTRY
from engine.tables import incoming_sql, merge_sql
from engine.writer import WritePlan
from tests import factories as f
from tests.helpers import explain, ingest, table

C = f.did("community")
POST_RKEY = f.tid(1)
P = f.uri(C, f.POST, POST_RKEY)
USERS = [f.did(f"user{i}") for i in range(12)]


async def value(db: Database, sql: str, key: str) -> int:
    rows = await table(db, sql, key)
    return int(rows[0]["n"])


async def post_count(db: Database) -> int:
    return await value(db, "SELECT post_count AS n FROM communities WHERE did = $1", C)


async def subscriber_count(db: Database) -> int:
    return await value(db, "SELECT subscriber_count AS n FROM communities WHERE did = $1", C)


async def comment_count(db: Database) -> int:
    return await value(db, "SELECT comment_count AS n FROM post_stats WHERE uri = $1", P)


async def reply_count(db: Database, uri: str) -> int:
    return await value(db, "SELECT reply_count AS n FROM comment_stats WHERE uri = $1", uri)


def test_no_counter_is_recounted_in_full_per_batch() -> None:
    plan = WritePlan(DEFAULT_REGISTRY.tables, DEFAULT_REGISTRY.recounts)
    assert all(recount.tally is not None for recount in plan.recounts)
    assert all(recounts == () for recounts in plan.full_by_source.values())
    # a stored row's insert-time count reads nothing (its key is NULL there): only new rows count
    communities = next(t for t in plan.tables if t.name == "communities")
    assert "IN (SELECT did FROM prior) THEN NULL" in merge_sql(
        communities, plan.by_target["communities"])


async def test_posts_and_subscribers_stay_exact(writer_db: Database) -> None:
    posts = [f.post(C, f.tid(10 + n), rev=f.tid(100 + n)) for n in range(8)]
    subscriptions = [f.subscription(u, f.tid(1), C, rev=f.tid(200 + n)) for n, u in enumerate(USERS)]
    await ingest(writer_db, [f.profile(C)] + posts + subscriptions)
    assert (await post_count(writer_db), await subscriber_count(writer_db)) == (8, 12)
    steps = [
        # two deletes, one of them duplicated; a second record of a subscribed user counts once
        [f.post(C, f.tid(10), rev=f.tid(300), operation="delete")] * 2
        + [f.post(C, f.tid(11), rev=f.tid(301), operation="delete"),
           f.subscription(USERS[0], f.tid(2), C, rev=f.tid(302))],
        # the first of the user's records deleted: the second still counts
        [f.subscription(USERS[0], f.tid(1), C, rev=f.tid(303), operation="delete"),
         f.subscription(USERS[1], f.tid(1), C, rev=f.tid(304), operation="delete")],
        # a newer create brings a deleted post back; an older one arriving late does not
        [f.post(C, f.tid(10), rev=f.tid(305)), f.post(C, f.tid(11), rev=f.tid(120))],
        # a profile update of the community itself
        [f.profile(C, name="renamed", rev=f.tid(306))],
    ]
    sent: list[bytes] = []
    for step in steps:
        sent += step
        await ingest(writer_db, step)
        assert await reconcile(writer_db) == []
    assert (await post_count(writer_db), await subscriber_count(writer_db)) == (7, 11)
    await ingest(writer_db, sent[::-1] + posts + subscriptions + sent, batch_size=4)
    assert (await post_count(writer_db), await subscriber_count(writer_db)) == (7, 11)
    assert await reconcile(writer_db) == []


async def test_comments_and_replies_stay_exact(writer_db: Database) -> None:
    c1 = f.uri(USERS[0], f.COMMENT, f.tid(1))
    c2 = f.uri(USERS[1], f.COMMENT, f.tid(1))
    # replies before their parent, the parent before its post
    replies = [f.comment(u, f.tid(1), root=P, parent=c1, rev=f.tid(400 + n))
               for n, u in enumerate(USERS[1:6])]
    await ingest(writer_db, replies)
    await ingest(writer_db, [f.comment(USERS[0], f.tid(1), root=P, rev=f.tid(399))])
    await ingest(writer_db, [f.profile(C), f.post(C, POST_RKEY)])
    assert (await comment_count(writer_db), await reply_count(writer_db, c1)) == (1, 5)
    steps = [
        [f.comment(USERS[1], f.tid(1), root=P, parent=c1, rev=f.tid(500), operation="delete")],
        [f.comment(u, f.tid(2), root=P, rev=f.tid(510 + n)) for n, u in enumerate(USERS[6:])],
        [f.comment(USERS[7], f.tid(3), root=P, parent=c2, rev=f.tid(520)),  # under a tombstone
         f.comment(USERS[1], f.tid(1), root=P, parent=c1, rev=f.tid(521))],  # resurrected
        [f.post(C, POST_RKEY, title="edited", rev=f.tid(530))],
    ]
    sent: list[bytes] = []
    for step in steps:
        sent += step
        await ingest(writer_db, step)
        assert await reconcile(writer_db) == []
    assert (await comment_count(writer_db), await reply_count(writer_db, c1)) == (7, 5)
    assert await reply_count(writer_db, c2) == 1
    await ingest(writer_db, sent[::-1] + replies + sent, batch_size=3)
    assert (await comment_count(writer_db), await reply_count(writer_db, c1)) == (7, 5)
    assert await reconcile(writer_db) == []


async def test_a_new_comment_counts_its_stored_replies_and_those_of_its_own_batch(
        writer_db: Database) -> None:
    # A comment inserted by a batch is counted from the replies stored before it; only one
    # whose replies merge in the same statement is recounted after (the writer skips the rest).
    early, late = f.uri(USERS[0], f.COMMENT, f.tid(1)), f.uri(USERS[1], f.COMMENT, f.tid(1))
    stored = [f.comment(u, f.tid(5), root=P, parent=early) for u in USERS[2:4]]
    await ingest(writer_db, [f.profile(C), f.post(C, POST_RKEY), *stored])
    batch = [f.comment(USERS[0], f.tid(1), root=P), f.comment(USERS[1], f.tid(1), root=P),
             *(f.comment(u, f.tid(6), root=P, parent=late) for u in USERS[4:7]),
             f.comment(USERS[7], f.tid(6), root=P, parent=early)]
    await ingest(writer_db, batch, batch_size=len(batch), latency_s=3600)
    assert (await reply_count(writer_db, early), await reply_count(writer_db, late)) == (3, 3)
    assert await comment_count(writer_db) == 2  # the direct children of the post
    assert await reconcile(writer_db) == []
    # A delete names no parent, but its row keeps the stored one: a reply stored before its
    # parent and deleted in the parent's own batch must leave the new parent at 0, not 1.
    orphan = f.uri(USERS[8], f.COMMENT, f.tid(1))
    await ingest(writer_db, [f.comment(USERS[9], f.tid(7), root=P, parent=orphan, rev=f.tid(800))])
    batch = [f.comment(USERS[8], f.tid(1), root=P),
             f.comment(USERS[9], f.tid(7), root=P, rev=f.tid(900), operation="delete")]
    await ingest(writer_db, batch, batch_size=len(batch), latency_s=3600)
    assert await reply_count(writer_db, orphan) == 0
    assert await reconcile(writer_db) == []


async def test_corrupted_counters_stay_off_until_reconcile_fix(writer_db: Database) -> None:
    c1 = f.uri(USERS[0], f.COMMENT, f.tid(1))
    await ingest(writer_db, [f.profile(C), f.post(C, POST_RKEY),
                             f.subscription(USERS[0], f.tid(1), C),
                             f.comment(USERS[0], f.tid(1), root=P)])
    await writer_db.execute("UPDATE communities SET post_count = post_count + 50, "
                            "subscriber_count = subscriber_count + 50")
    await writer_db.execute("UPDATE post_stats SET comment_count = comment_count + 50")
    await writer_db.execute("UPDATE comment_stats SET reply_count = reply_count + 50")
    # new children, and updates of the subjects themselves: each adds to the stored (wrong) value
    await ingest(writer_db, [f.post(C, f.tid(2)), f.subscription(USERS[1], f.tid(1), C),
                             f.comment(USERS[1], f.tid(1), root=P),
                             f.comment(USERS[2], f.tid(1), root=P, parent=c1),
                             f.profile(C, name="renamed"), f.post(C, POST_RKEY, title="edited")])
    assert (await post_count(writer_db), await subscriber_count(writer_db)) == (52, 52)
    assert (await comment_count(writer_db), await reply_count(writer_db, c1)) == (52, 51)
    assert sorted(str(d) for d in await reconcile(writer_db)) == [
        f"comment_stats {c1}: reply_count 51→1",
        f"communities {C}: post_count 52→2",
        f"communities {C}: subscriber_count 52→2",
        f"post_stats {P}: comment_count 52→2",
    ]
    assert len(await reconcile(writer_db, fix=True)) == 4
    assert await reconcile(writer_db) == []
    await ingest(writer_db, [f.post(C, f.tid(3))])
    assert await post_count(writer_db) == 3


async def test_pair_probes_use_an_exact_index_even_planned_on_an_empty_database(
        writer_db: Database) -> None:
    # The writer prepares its statements once per connection, maybe before any statistics:
    # a probe that walked a community's posts (or subscribers) per pair grew with the community.
    plan = WritePlan(DEFAULT_REGISTRY.tables, DEFAULT_REGISTRY.recounts)
    expected = {"post_stats": "post_stats_pkey", "comment_stats": "comment_stats_pkey",
                "subscriptions": "subscriptions_did_pair", "votes": "votes_subject_newest"}
    merges = {t.name: plan.merge[t] for t in plan.tally}
    assert merges.keys() == expected.keys()
    for name, index in expected.items():
        lines = await explain(writer_db, merges[name])
        shown = "\n".join(lines)
        # Each probe of a pair (its stored counted row, and the next one past merged rows) …
        probes = [n for n, line in enumerate(lines)
                  if re.search(rf"on {name} (stored|rest)\b", line)]
        assert probes, shown
        for at in probes:
            assert f"using {index} on {name}" in lines[at], shown
            # … is in the order of "newest" (a vote's ties in rev go to the greater
            # direction): a LIMIT straight over the index (past a one-time filter: the second
            # probe runs only for some pairs), no Sort per pair.
            above = [line for line in lines[at - 3:at] if "One-Time Filter" not in line]
            assert "Limit" in above[-1] or ("Result" in above[-1] and "Limit" in above[-2]), shown


async def test_no_statement_of_the_writer_reads_a_whole_index_on_a_young_database(
        writer_db: Database) -> None:
    # Postgres plans the statements the writer runs every batch on small tables, before much
    # statistics, and keeps a plan until the next ANALYZE (engine/table_stats.py). A partial
    # index over every live row (WHERE deleted_at IS NULL) then looked cheaper than one whose
    # columns match the condition: counting a comment's live replies read every live comment
    # (forum throughput fell to 12k ev/s). Every index a statement scans must take its condition.
    users = [f.did(f"young{i}") for i in range(30)]
    await ingest(writer_db, [f.profile(C), f.post(C, POST_RKEY)] + [
        frame for n, user in enumerate(users) for frame in (
            f.subscription(user, f.tid(n + 10), C), f.vote(user, f.tid(n + 10), P),
            f.comment(user, f.tid(n + 10), root=P), f.post(C, f.tid(n + 100), author=user))])
    plan = WritePlan(DEFAULT_REGISTRY.tables, DEFAULT_REGISTRY.recounts)
    statements = {f"recount of {r.target} by {r.source}": sql for r, sql in plan.recount.items()}
    statements |= {f"merge of {t.name}": sql for t, sql in plan.merge.items()}
    # (Purges are left out: they run rarely, each planned for the tables as they are then — a
    # prepared statement's first five runs get plans of their own. See
    # test_a_purge_finds_a_repos_records_through_an_index.)
    statements |= {f"{t.name} deltas: apply": tally.apply for t, tally in plan.tally.items()}
    for name, sql in statements.items():
        args = [[P]] if "$1" in sql else []
        lines = await explain(writer_db, sql, *args)
        for at, line in enumerate(lines):
            if re.search(r"Index (Only )?Scan (Backward )?using|Bitmap Index Scan on", line):
                taken = lines[at + 1] if at + 1 < len(lines) else ""
                assert "Index Cond" in taken, (name, "\n".join(lines))


async def test_each_merge_sorts_its_staged_rows_once(writer_db: Database) -> None:
    # A merge's `incoming` picks each key's newest version and takes immutable columns from any
    # version (a window over the key). Ordered as DISTINCT ON reads the rows, one sort serves
    # both; a window by key alone made Postgres sort again by version (~0.8 ms per 5,000 rows).
    for table in DEFAULT_REGISTRY.tables:
        if table.merge is not None:
            continue  # hand-written
        lines = await explain(writer_db, incoming_sql(table))
        sorts = [line for line in lines if re.search(r"\bSort  \(", line)]
        assert len(sorts) == 1, (table.name, "\n".join(lines))
