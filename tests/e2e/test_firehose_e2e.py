"""End to end on Bluesky's reference PDS: records written with the PDS's own API reach the
index through the raw firehose with exact counts (and the write → committed latency is
measured); `coves backfill` indexes history while live writes go on; a SIGKILLed engine
restarts with nothing lost and nothing counted twice."""

from __future__ import annotations

import functools
import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from engine.batcher import Batch
from engine.db import Database
from engine.pipeline import run_ingest
from engine.reconcile import reconcile
from engine.sources.firehose import FirehoseSource
from tests.e2e.forum import Forum, observed, write_activity
from tests.pds.harness import PdsClient, PdsNetwork

ROOT = Path(__file__).resolve().parents[2]
COVES = [sys.executable, "-m", "engine.cli"]


def firehose_url(pds_url: str) -> str:
    return "ws" + pds_url.removeprefix("http")


class Commits:
    """What the in-process engine committed, and when; lets a test wait for a condition."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}  # record URI → first commit (trio clock)
        self.dids: set[str] = set()
        self._changed = trio.Event()

    def __call__(self, batch: Batch) -> None:
        now = trio.current_time()
        for event, _ in batch.events:
            self.dids.add(event.did)
            if event.collection:
                self.at.setdefault(event.uri, now)
        self._changed.set()
        self._changed = trio.Event()

    async def changed(self) -> None:
        """Wait for the next committed batch."""
        await self._changed.wait()

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        while not condition():
            await self._changed.wait()


async def until_equal(db: Database, forum: Forum, timeout_s: float = 30) -> None:
    """Wait for the index to hold what the forum wrote (polling a query), then compare."""
    expected = forum.expected()
    with trio.move_on_after(timeout_s):
        while await observed(db, forum) != expected:
            await trio.sleep(0.1)
    assert await observed(db, forum) == expected


async def start_engine(database_url: str, pds_url: str, **env: str) -> trio.Process:
    return await trio.lowlevel.open_process(
        [*COVES, "engine"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "DATABASE_URL": database_url, "FIREHOSE_URL": firehose_url(pds_url),
             "METRICS_PORT": "0", "LOG_FORMAT": "json",
             # The forum's communities claim hostedBy did:web:localhost and carry no handle;
             # checked, they become `unverified_host` rejects whenever the host verifier runs
             # before the test ends (a flaky failure of no_rejects_no_drift). Not under test here.
             "SKIP_DID_WEB_VERIFICATION": "true", **env})


async def wait_connected(engine: trio.Process) -> None:
    """Read the engine's log until it says the firehose is connected; keep draining it after."""
    assert engine.stderr is not None
    log = b""
    with trio.fail_after(30):
        while b"firehose connected" not in log:
            chunk = await engine.stderr.receive_some(65536)
            assert chunk, f"engine exited before connecting: {log.decode()[-2000:]}"
            log += chunk


async def drain(engine: trio.Process) -> None:
    assert engine.stderr is not None
    while await engine.stderr.receive_some(65536):
        pass


async def stop(engine: trio.Process) -> None:
    engine.send_signal(signal.SIGTERM)
    with trio.fail_after(20):
        assert await engine.wait() == 0


async def no_rejects_no_drift(db: Database, forum: Forum) -> None:
    assert await db.fetch("SELECT reason, detail FROM ingest_rejects WHERE did = ANY($1)",
                          forum.dids) == []
    assert await reconcile(db) == []


async def test_live_writes_are_indexed_with_exact_counts_and_p99_latency(
        pds_network: PdsNetwork, writer_db: Database) -> None:
    pds_url = pds_network.pds_urls[0]
    commits = Commits()
    source = FirehoseSource(firehose_url(pds_url), ("social.coves.*",))
    async with PdsClient(pds_url) as pds, trio.open_nursery() as nursery:
        # Start at seq 0: the session PDS's earlier history is replayed (and indexed) first.
        nursery.start_soon(functools.partial(run_ingest, writer_db, source, start=0, resume=False,
                                             on_commit=commits))
        forum = Forum(pds)
        await forum.add_users(6)
        with trio.fail_after(30):  # caught up: the new accounts' identity events are committed
            await commits.wait_for(lambda: {u.did for u in forum.users} <= commits.dids)
        for name in ("garden", "kitchen"):
            await forum.add_community(name)
        for user in forum.users:
            for community in forum.communities:
                await forum.subscribe(user, community)
        await write_activity(forum, random.Random(5), posts=20, comments=60, votes=120, churn=12)
        with trio.fail_after(30):
            await commits.wait_for(lambda: forum.acked.keys() <= commits.at.keys())
        await until_equal(writer_db, forum)
        nursery.cancel_scope.cancel()

    latencies = sorted(commits.at[uri] - acked for uri, acked in forum.acked.items())
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99) - 1]
    print(f"\nwrite → committed over {len(latencies)} creates ({forum.writes} writes): "
          f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms")
    assert len(latencies) >= 200
    assert p99 < 1.0
    await no_rejects_no_drift(writer_db, forum)


async def test_backfill_indexes_history_while_live_writes_go_on(
        pds_network_factory: Callable[..., PdsNetwork], db: Database, database_url: str) -> None:
    network = pds_network_factory(1)
    pds_url = network.pds_urls[0]
    async with PdsClient(pds_url) as pds:
        forum = Forum(pds)
        await forum.add_users(5)
        for name in ("garden", "kitchen"):
            await forum.add_community(name)
        for user in forum.users[:4]:
            await forum.subscribe(user, next(iter(forum.communities)))
        await write_activity(forum, random.Random(7), posts=8, comments=25, votes=50, churn=6)
        history = forum.writes

        engine = await start_engine(database_url, pds_url)  # no cursor: the live tail only
        try:
            await wait_connected(engine)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain, engine)
                # Slow on purpose (1 request/s, one at a time: 7 repos take ≥ 7 s) so the live
                # writes below land while it runs.
                backfill = await trio.lowlevel.open_process(
                    [*COVES, "backfill"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                    env={**os.environ, "DATABASE_URL": database_url, "BACKFILL_URL": pds_url,
                         "BACKFILL_RATE": "1", "BACKFILL_CONCURRENCY": "1", "METRICS_PORT": "0",
                         "LOG_FORMAT": "json"})
                with trio.fail_after(60):
                    while not await db.fetchval(
                            "SELECT count(*) FROM backfill_repos WHERE state = 'done'"):
                        await trio.sleep(0.05)
                # Live: new records, and changes to records the backfill has or has not read yet.
                # The first one must land while repos are still waiting (checked right after it:
                # the whole batch of writes can outlast the backfill on a loaded machine).
                await forum.set_profile(next(iter(forum.communities)), "garden2")
                assert await db.fetchval(
                    "SELECT count(*) FROM backfill_repos WHERE state <> 'done'") > 0, \
                    "the backfill finished before the live writes: nothing overlapped"
                await write_activity(forum, random.Random(8), posts=3, comments=10, votes=15,
                                     churn=9)
                output = b""
                with trio.fail_after(90):
                    assert backfill.stdout is not None
                    while chunk := await backfill.stdout.receive_some(65536):
                        output += chunk
                    assert await backfill.wait() == 0
                assert b"backfill: 7/7 repos (0 failed)" in output
                await until_equal(db, forum)
                await stop(engine)
        finally:
            if engine.returncode is None:
                engine.kill()
    assert forum.writes > history
    assert await db.fetchval("SELECT count(*) FROM backfill_repos WHERE state = 'done'") == 7
    await no_rejects_no_drift(db, forum)


async def committed_seq(db: Database, source: str) -> int:
    return await db.fetchval("SELECT cursor FROM ingest_cursors WHERE source = $1", source) or 0


@pytest.mark.slow
async def test_sigkilled_engine_restarts_with_nothing_lost_or_counted_twice(
        pds_network_factory: Callable[..., PdsNetwork], db: Database, database_url: str) -> None:
    network = pds_network_factory(1)
    pds_url = network.pds_urls[0]
    source = FirehoseSource(firehose_url(pds_url), ()).name
    # A deployment that already ran: start from the PDS's first event.
    await db.execute("INSERT INTO ingest_cursors (source, cursor) VALUES ($1, 0)", source)
    engine = await start_engine(database_url, pds_url, BATCH_MAX_ROWS="25")
    restarted: trio.Process | None = None
    try:
        async with PdsClient(pds_url) as pds, trio.open_nursery() as nursery:
            nursery.start_soon(drain, engine)
            forum = Forum(pds)
            await forum.add_users(6)
            for name in ("garden", "kitchen"):
                await forum.add_community(name)
            for user in forum.users:
                await forum.subscribe(user, next(iter(forum.communities)))
            writing = trio.Event()

            async def write() -> None:
                await write_activity(forum, random.Random(9), posts=10, comments=50, votes=90,
                                     churn=12)
                writing.set()

            nursery.start_soon(write)
            start = await committed_seq(db, source)
            with trio.fail_after(60):  # kill it mid-stream: some batches committed, more coming
                while await committed_seq(db, source) < start + 60:
                    await trio.sleep(0.02)
            engine.kill()
            assert await engine.wait() == -signal.SIGKILL
            killed_at = await committed_seq(db, source)
            restarted = await start_engine(database_url, pds_url, BATCH_MAX_ROWS="25")
            nursery.start_soon(drain, restarted)
            with trio.fail_after(120):
                await writing.wait()
            await until_equal(db, forum)
            await stop(restarted)
    finally:
        for process in (engine, restarted):
            if process is not None and process.returncode is None:
                process.kill()
    assert await committed_seq(db, source) > killed_at > start
    await no_rejects_no_drift(db, forum)
