"""Backfill against a fake host (httpx MockTransport) and a real Postgres: snapshot rev vs live
revs, resync tombstones, resume, discovery, #sync, and the client's rate limit and retries."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import trio

from engine.backfill import BackfillSource, discover, mark_pending
from engine.db import Database
from engine.errors import HostError
from engine.events import SYNC, Event
from engine.pipeline import IngestSettings, run_ingest
from engine.sources import Sink
from engine.sync_client import RateLimit, SyncClient
from tests import factories as f
from tests import firehose_frames as ff
from tests.helpers import ingest, table

HOST = "http://pds.test"
C = f.did("community")
PROFILE = "social.coves.community.profile"
SUBSCRIPTION = "social.coves.community.subscription"
NOW = "2026-08-01T12:00:00.000Z"
SETTINGS = IngestSettings(batch_max_size=7, batch_max_latency_s=0.01)


def profile(name: str) -> dict[str, Any]:
    return {"$type": PROFILE, "name": name, "createdBy": f.did("creator"),
            "hostedBy": "did:web:coves.test", "createdAt": NOW}


def subscription(subject: str = C) -> dict[str, Any]:
    return {"$type": SUBSCRIPTION, "subject": subject, "createdAt": NOW}


class FakeHost:
    """Serves listRepos / listReposByCollection / getRepo from a dict of repo exports."""

    def __init__(self, repos: dict[str, bytes], *, by_collection: bool = False,
                 fail: Callable[[str], int | None] = lambda did: None) -> None:
        self.repos = repos
        self.by_collection = by_collection
        self.fail = fail
        self.calls: Counter[str] = Counter()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        method = request.url.path.removeprefix("/xrpc/")
        params = dict(request.url.params)
        self.calls[method + ":" + params.get("did", params.get("collection", ""))] += 1
        if method == "com.atproto.sync.listReposByCollection" and not self.by_collection:
            return httpx.Response(501, json={"error": "MethodNotImplemented", "message": "no"})
        if method in ("com.atproto.sync.listRepos", "com.atproto.sync.listReposByCollection"):
            dids = sorted(self.repos)
            start = dids.index(params["cursor"]) + 1 if "cursor" in params else 0
            page = dids[start:start + 2]  # tiny pages: paging is exercised
            body: dict[str, Any] = {"repos": [{"did": d, "head": "x", "rev": "y"} for d in page]}
            if start + 2 < len(dids):
                body["cursor"] = page[-1]
            return httpx.Response(200, json=body)
        if method == "com.atproto.sync.getRepo":
            status = self.fail(params["did"])
            if status:
                return httpx.Response(status, json={"error": "Nope", "message": "failing on purpose"})
            if params["did"] not in self.repos:
                return httpx.Response(400, json={"error": "RepoNotFound", "message": "no repo"})
            return httpx.Response(200, content=self.repos[params["did"]],
                                  headers={"content-type": "application/vnd.ipld.car"})
        return httpx.Response(404, json={"error": "MethodNotImplemented"})


def client_for(host: FakeHost, **kwargs: Any) -> SyncClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(host))
    return SyncClient(HOST, http, rate_per_s=1000, attempts=1, **kwargs)


async def backfill(db: Database, host: FakeHost, dids: Sequence[str] | None = None) -> BackfillSource:
    """Discover (unless `dids` given) and backfill everything through the real pipeline."""
    client = client_for(host)
    if dids is None:
        await discover(db, client, ("social.coves.*",))
    else:
        await mark_pending(db, dids, HOST, force=True)
    source = BackfillSource(db, {HOST: client}, ("social.coves.*",), only=dids, workers=3)
    with trio.fail_after(20):
        await run_ingest(db, source, settings=SETTINGS, resume=False)
    return source


async def rows(db: Database) -> dict[str, dict[str, Any]]:
    found = await table(db, "SELECT uri, rev, subject, deleted_at IS NOT NULL AS deleted FROM subscriptions")
    return {r["uri"]: r for r in found}


async def test_records_get_the_snapshot_rev_and_repos_are_marked_done(writer_db: Database) -> None:
    users = [f.did(f"user{i}") for i in range(5)]
    repos = {C: ff.repo_car(C, ff.tid(100), {f"{PROFILE}/self": profile("garden"),
                                             "app.bsky.feed.post/3abc": {"text": "not ours"}})}
    for i, user in enumerate(users):
        repos[user] = ff.repo_car(user, ff.tid(200 + i), {
            f"{SUBSCRIPTION}/{ff.tid(j)}": subscription() for j in range(3)}, fanout=1)
    source = await backfill(writer_db, FakeHost(repos))
    assert source.progress.repos_fetched == 6 and source.progress.records == 16
    assert await writer_db.fetchval("SELECT subscriber_count FROM communities") == 5
    stored = await rows(writer_db)
    assert len(stored) == 15
    assert {r["rev"] for uri, r in stored.items() if users[2] in uri} == {ff.tid(202)}
    state = await table(writer_db, "SELECT did, state, rev FROM backfill_repos ORDER BY did")
    revs = {C: ff.tid(100)} | {user: ff.tid(200 + i) for i, user in enumerate(users)}
    assert state == [{"did": d, "state": "done", "rev": revs[d]} for d in sorted(revs)]


async def test_snapshot_loses_to_newer_live_rows_and_tombstones_older_missing_ones(
        writer_db: Database) -> None:
    user = f.did("user")
    kept_newer, replaced, vanished, created_later = (ff.tid(k) for k in (1, 2, 3, 4))
    snapshot_rev = ff.tid(50)
    other = f.did("other")
    # Live events before the backfill: one newer than the snapshot, two older, one created after.
    await ingest(writer_db, [
        f.subscription(user, kept_newer, other, rev=ff.tid(60)),
        f.subscription(user, replaced, other, rev=ff.tid(10)),
        f.subscription(user, vanished, C, rev=ff.tid(11)),
        f.subscription(user, created_later, C, rev=ff.tid(70)),
    ])
    car = ff.repo_car(user, snapshot_rev, {
        f"{SUBSCRIPTION}/{kept_newer}": subscription(C),   # stale in the snapshot: live wins
        f"{SUBSCRIPTION}/{replaced}": subscription(other),  # same subject, newer rev
    })
    await backfill(writer_db, FakeHost({user: car}), [user])
    stored = await rows(writer_db)
    uri = functools.partial(f.uri, user, SUBSCRIPTION)
    assert (stored[uri(kept_newer)]["rev"], stored[uri(kept_newer)]["subject"]) == (ff.tid(60), other)
    assert stored[uri(replaced)]["rev"] == snapshot_rev
    assert stored[uri(vanished)]["deleted"] and stored[uri(vanished)]["rev"] == snapshot_rev
    assert not stored[uri(created_later)]["deleted"] and stored[uri(created_later)]["rev"] == ff.tid(70)
    # Backfilling the same snapshot again changes nothing.
    before = await table(writer_db, "SELECT xmin::text, uri FROM subscriptions ORDER BY uri")
    await backfill(writer_db, FakeHost({user: car}), [user])
    assert await table(writer_db, "SELECT xmin::text, uri FROM subscriptions ORDER BY uri") == before


async def test_failed_repos_are_recorded_and_only_they_are_read_by_the_next_run(
        writer_db: Database) -> None:
    good, bad = f.did("good"), f.did("bad")
    repos = {d: ff.repo_car(d, ff.tid(5), {f"{SUBSCRIPTION}/{ff.tid(1)}": subscription()})
             for d in (good, bad)}
    first = await backfill(writer_db, FakeHost(repos, fail=lambda d: 503 if d == bad else None))
    assert (first.progress.repos_fetched, first.progress.repos_failed) == (1, 1)
    failed = await table(writer_db, "SELECT state, attempts, error FROM backfill_repos WHERE did = $1", bad)
    assert failed[0]["state"] == "failed" and failed[0]["attempts"] == 1
    assert "503" in failed[0]["error"]
    healthy = FakeHost(repos)
    second = await backfill(writer_db, healthy)
    assert second.progress.repos_fetched == 1
    assert healthy.calls[f"com.atproto.sync.getRepo:{bad}"] == 1
    assert healthy.calls[f"com.atproto.sync.getRepo:{good}"] == 0  # done: not read again
    assert await writer_db.fetchval("SELECT count(*) FROM backfill_repos WHERE state = 'done'") == 2


async def test_relay_index_is_used_when_offered(writer_db: Database) -> None:
    relay = FakeHost({f.did("r1"): b"", f.did("r2"): b""}, by_collection=True)
    listed = await discover(writer_db, client_for(relay), ("social.coves.community.*",))
    assert listed == 2
    assert relay.calls["com.atproto.sync.listReposByCollection:social.coves.community.profile"] == 1
    assert not any(call.startswith("com.atproto.sync.listRepos:") for call in relay.calls)
    pds = FakeHost({f.did("p1"): b""})
    assert await discover(writer_db, client_for(pds), ("social.coves.*",)) == 1
    assert pds.calls["com.atproto.sync.listRepos:"] == 1


class EventSource:
    label = "replay"
    name = "events"

    def __init__(self, events: Sequence[Event]) -> None:
        self.events = events

    async def run(self, start: int | None, sink: Sink) -> None:
        for event in self.events:
            await sink.event(event)


async def test_sync_after_a_backfill_sends_the_repo_back_and_a_newer_snapshot_clears_it(
        writer_db: Database) -> None:
    car = ff.repo_car(C, ff.tid(100), {f"{PROFILE}/self": profile("garden")})
    await backfill(writer_db, FakeHost({C: car}), [C])

    async def sync(rev: str) -> str:
        await run_ingest(writer_db, EventSource([Event(did=C, kind=SYNC, time_us=1, cursor=1, rev=rev)]),
                         settings=SETTINGS, resume=False)
        return await writer_db.fetchval("SELECT state FROM backfill_repos WHERE did = $1", C)

    assert await sync(ff.tid(90)) == "done"  # older than what we have: nothing to do
    assert await sync(ff.tid(150)) == "pending"
    await backfill(writer_db, FakeHost({C: car}), [C])  # still the old snapshot: not enough
    assert await writer_db.fetchval("SELECT state FROM backfill_repos WHERE did = $1", C) == "pending"
    newer = ff.repo_car(C, ff.tid(160), {f"{PROFILE}/self": profile("garden2")})
    await backfill(writer_db, FakeHost({C: newer}), None)
    assert await writer_db.fetchval("SELECT state FROM backfill_repos WHERE did = $1", C) == "done"
    assert await writer_db.fetchval("SELECT name FROM communities") == "garden2"


async def test_rate_limit_spaces_requests_evenly(autojump_clock: trio.testing.MockClock) -> None:
    limit = RateLimit(per_s=10)
    starts = []
    for _ in range(5):
        await limit.wait()
        starts.append(trio.current_time())
    assert [round(b - a, 6) for a, b in zip(starts, starts[1:])] == [0.1] * 4


async def test_transient_errors_are_retried_permanent_ones_are_not(
        autojump_clock: trio.testing.MockClock) -> None:
    answers = iter([503, 429, 200])
    user = f.did("u")
    host = FakeHost({user: b"car"}, fail=lambda d: (lambda s: None if s == 200 else s)(next(answers)))
    client = SyncClient(HOST, httpx.AsyncClient(transport=httpx.MockTransport(host)), attempts=3)
    started = trio.current_time()
    assert await client.get_repo(user) == b"car"
    assert trio.current_time() - started >= 0.25 + 0.5  # two backoffs of at least half 0.5·2^n
    missing = SyncClient(HOST, httpx.AsyncClient(transport=httpx.MockTransport(FakeHost({}))))
    try:
        await missing.get_repo(user)
    except HostError as exc:
        assert (exc.status, exc.error, exc.transient) == (400, "RepoNotFound", False)
    else:
        raise AssertionError("RepoNotFound should raise")
