"""Votes' counters follow each batch by a delta (engine/tables.py, Tally), not a recount of the
subject: exact against `reconcile`'s full recount on a subject with many votes, through several
vote records of one voter, deletes of the newest, re-creates, late and duplicate events, ties in
rev, purges and split writes.

A delta adds to what is stored, so a counter corrupted by hand stays off by the same amount
when votes arrive; `coves reconcile --fix` is the repair (a recount per batch used to heal it at
the subject's next vote). `test_corrupted_counter_stays_off_until_reconcile_fix` pins that down,
and with it that the writer does not quietly recount voted subjects.
"""

from __future__ import annotations

from typing import Any

from engine.db import Database
from engine.reconcile import reconcile
from engine.records import DEFAULT_REGISTRY, feed_vote
from engine.writer import WritePlan
from tests import factories as f
from tests.helpers import ingest, table

C = f.did("community")
P_RKEY = f.tid(1)
P = f.uri(C, f.POST, P_RKEY)
VOTERS = [f.did(f"voter{i}") for i in range(40)]


async def counters(db: Database, uri: str = P) -> dict[str, Any]:
    rows = await table(db, "SELECT upvote_count AS up, downvote_count AS down, score, "
                           "hot_key = coves_hot_key(score, LEAST(COALESCE(created_at, first_seen_at), "
                           "first_seen_at)) AS hot_key_fits FROM post_stats WHERE uri = $1", uri)
    return rows[0]


class Votes:
    """The votes sent so far and what they should count: per voter, the newest live record."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], tuple[str, str | None]] = {}  # → (rev, direction)
        self._rev = 1000

    def _next(self) -> str:
        self._rev += 1
        return f.tid(self._rev)

    def vote(self, voter: str, rkey: str, direction: str) -> bytes:
        rev = self._next()
        self.records[(voter, rkey)] = (rev, direction)
        return f.vote(voter, rkey, P, direction, rev=rev)

    def delete(self, voter: str, rkey: str) -> bytes:
        rev = self._next()
        self.records[(voter, rkey)] = (rev, None)
        return f.vote(voter, rkey, P, rev=rev, operation="delete")

    def expected(self) -> tuple[int, int]:
        newest: dict[str, tuple[str, str]] = {}
        for (voter, _rkey), (rev, direction) in self.records.items():
            if direction is not None and (voter not in newest or newest[voter][0] < rev):
                newest[voter] = (rev, direction)
        up = sum(1 for _, d in newest.values() if d == "up")
        return up, len(newest) - up


async def check(db: Database, votes: Votes) -> None:
    up, down = votes.expected()
    assert await counters(db) == {"up": up, "down": down, "score": up - down, "hot_key_fits": True}
    assert await reconcile(db) == []


def test_votes_are_kept_by_deltas_and_recounted_only_where_needed() -> None:
    plan = WritePlan(DEFAULT_REGISTRY.tables, DEFAULT_REGISTRY.recounts)
    assert feed_vote.TABLE in plan.tally
    assert plan.full_by_source["votes"] == ()  # a vote batch recounts no subject in full …
    assert set(plan.by_source["votes"]) == set(feed_vote.RECOUNTS)  # … except purged ones
    # the delta reads pairs by index probes, in the merge; the full tally is not in it
    tally = plan.tally[feed_vote.TABLE]
    full = "DISTINCT ON (x.did)"
    assert full in plan.recount[feed_vote.RECOUNTS[0]]
    assert all(cte in plan.merge[feed_vote.TABLE] for cte in tally.ctes)
    assert not any(full in sql for sql in (plan.merge[feed_vote.TABLE], tally.apply))


async def test_a_subject_with_many_votes_stays_exact_vote_by_vote(writer_db: Database) -> None:
    votes = Votes()
    first = [votes.vote(v, f.tid(1), "up" if i % 3 else "down") for i, v in enumerate(VOTERS)]
    second = [votes.vote(v, f.tid(2), "down") for v in VOTERS[:8]]  # a newer record counts
    await ingest(writer_db, [f.profile(C), f.post(C, P_RKEY)] + first + second)
    await check(writer_db, votes)
    a, b = VOTERS[0], VOTERS[1]
    steps = [  # built one at a time: each call also records what should count
        lambda: [votes.vote(VOTERS[20], f.tid(1), "down")],  # an update flips one vote
        lambda: [votes.delete(a, f.tid(2))],  # the newest of two deleted: the older counts again
        lambda: [votes.delete(a, f.tid(1))],  # the last one deleted: a counts no more
        lambda: [votes.vote(a, f.tid(1), "up")],  # re-created with a newer rev
        lambda: [votes.vote(b, f.tid(3), "up"), votes.vote(b, f.tid(4), "down")],  # one batch
        lambda: [votes.delete(b, f.tid(4)), votes.delete(b, f.tid(3)), votes.delete(b, f.tid(2))],
        lambda: [votes.vote(f.did("newcomer"), f.tid(1), "up")],
    ]
    sent = []
    for step in steps:
        batch = step()
        sent += batch
        await ingest(writer_db, batch)
        await check(writer_db, votes)
    # every batch again, duplicated and reversed: the rev gate changes nothing, nor do deltas
    await ingest(writer_db, sent[::-1] + sent, batch_size=3)
    await check(writer_db, votes)


async def test_an_older_vote_arriving_late_changes_nothing(writer_db: Database) -> None:
    voter = VOTERS[0]
    old, new = f.tid(5), f.tid(6)
    await ingest(writer_db, [f.profile(C), f.post(C, P_RKEY),
                             f.vote(voter, f.tid(1), P, "down", rev=new)])
    await ingest(writer_db, [f.vote(voter, f.tid(2), P, "up", rev=old)])  # other rkey, older
    assert (await counters(writer_db))["score"] == -1
    await ingest(writer_db, [f.vote(voter, f.tid(1), P, rev=f.tid(7), operation="delete")])
    assert (await counters(writer_db))["score"] == 1  # the older live record counts now
    assert await reconcile(writer_db) == []


async def test_votes_of_one_commit_count_the_same_way_each_time(writer_db: Database) -> None:
    # Two vote records of one voter on one subject in one commit share the rev. Which counts
    # must not depend on storage order, or a delta and a recount could disagree: `up` wins.
    voter, rev = VOTERS[0], f.tid(50)
    await ingest(writer_db, [f.profile(C), f.post(C, P_RKEY), f.vote(voter, f.tid(1), P, "down", rev=rev)])
    await ingest(writer_db, [f.vote(voter, f.tid(2), P, "up", rev=rev)])
    assert (await counters(writer_db))["up"] == 1 and (await counters(writer_db))["down"] == 0
    assert await reconcile(writer_db) == []
    await ingest(writer_db, [f.vote(voter, f.tid(2), P, rev=f.tid(51), operation="delete")])
    assert (await counters(writer_db))["down"] == 1
    assert await reconcile(writer_db) == []


async def test_votes_before_their_post_then_deltas(writer_db: Database) -> None:
    votes = Votes()
    early = [votes.vote(v, f.tid(1), "up") for v in VOTERS[:5]]
    await ingest(writer_db, early)
    await ingest(writer_db, [votes.vote(VOTERS[5], f.tid(1), "down"), f.profile(C),
                             f.post(C, P_RKEY), votes.vote(VOTERS[6], f.tid(1), "up")])
    await check(writer_db, votes)  # the post's insert recounted what came before it
    await ingest(writer_db, [votes.delete(VOTERS[0], f.tid(1))])
    await check(writer_db, votes)


async def test_purge_in_the_batch_of_other_votes(writer_db: Database) -> None:
    votes = Votes()
    gone = VOTERS[3]
    await ingest(writer_db, [f.profile(C), f.post(C, P_RKEY)]
                 + [votes.vote(v, f.tid(1), "up") for v in VOTERS[:10]]
                 + [votes.vote(gone, f.tid(2), "down")])
    # the purge lands between votes of one batch: before and after their delta
    batch = [votes.vote(VOTERS[11], f.tid(1), "down"),
             f.account(gone, False, "deleted", time_us=f.BASE_TIME_US + 10**9),
             votes.vote(VOTERS[12], f.tid(1), "up")]
    for rkey in (f.tid(1), f.tid(2)):
        votes.records[(gone, rkey)] = ("", None)
    await ingest(writer_db, batch)
    await check(writer_db, votes)


async def test_split_write_applies_each_delta_once(writer_db: Database) -> None:
    # A refused row sends the batch down the split path: halves in savepoints on one
    # transaction, the staging tables keeping earlier parts' rows. Part one changes no vote
    # (a duplicate), part two is refused whole and split again, and its vote — the same voter
    # and post as part one's — is applied alone: its delta must count once.
    votes = Votes()
    voter = VOTERS[0]
    stored = votes.vote(voter, f.tid(1), "up")
    await ingest(writer_db, [f.profile(C), f.post(C, P_RKEY), stored])
    bad = f.post(C, f.tid(2), title="nul\u0000here")
    await ingest(writer_db, [stored, bad, votes.vote(voter, f.tid(2), "down")])
    assert await writer_db.fetchval("SELECT reason FROM ingest_rejects") == "database_error"
    await check(writer_db, votes)
    await ingest(writer_db, [votes.vote(VOTERS[1], f.tid(1), "up"), bad,
                             votes.delete(voter, f.tid(2)), votes.vote(VOTERS[2], f.tid(1), "up")])
    await check(writer_db, votes)


async def test_corrupted_counter_stays_off_until_reconcile_fix(writer_db: Database) -> None:
    votes = Votes()
    await ingest(writer_db, [f.profile(C), f.post(C, P_RKEY)]
                 + [votes.vote(v, f.tid(1), "up") for v in VOTERS[:5]])
    await writer_db.execute("UPDATE post_stats SET upvote_count = upvote_count + 100, "
                            "score = score + 100")
    await ingest(writer_db, [votes.vote(VOTERS[5], f.tid(1), "up")])
    # The vote was added to the stored (wrong) value: the subject was not recounted.
    assert (await counters(writer_db))["up"] == 106
    assert [str(d) for d in await reconcile(writer_db)] == [
        f"post_stats {P}: upvote_count 106→6, score 106→6"]
    assert len(await reconcile(writer_db, fix=True)) == 1
    await ingest(writer_db, [votes.vote(VOTERS[6], f.tid(1), "down")])
    await check(writer_db, votes)
