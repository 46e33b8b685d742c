"""The raw firehose source against a small local subscribeRepos server that honours ?cursor=:
exact seq resume after reconnects and restarts, error and #info frames, #sync, rejects — with
the real pipeline writing to a real Postgres."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
import trio
import trio_websocket
from prometheus_client import REGISTRY

from engine.batcher import Batch
from engine.db import Database
from engine.pipeline import IngestSettings, run_ingest
from engine.redrive import redrive
from engine.sources.firehose import FirehoseSource, subscribe_url
from engine.sources.reconnect import Reconnector
from tests import firehose_frames as ff
from tests.factories import did
from tests.helpers import RecordingSink, table

C = did("community")
PROFILE = "social.coves.community.profile"
SUBSCRIPTION = "social.coves.community.subscription"
SETTINGS = IngestSettings(batch_max_size=20, batch_max_latency_s=0.01)
FAST = functools.partial(Reconnector, "firehose", base_s=0.01, cap_s=0.05)
NOW = "2026-08-01T12:00:00.000Z"


def workload(n: int, first_seq: int = 1, users: str = "u") -> list[tuple[int, bytes]]:
    """(seq, frame): a community profile, n subscriptions, and unwanted likes in between."""
    profile = {"$type": PROFILE, "name": "garden", "createdBy": did("creator"),
               "hostedBy": "did:web:coves.test", "createdAt": NOW}
    frames = [ff.commit(first_seq, C, ff.tid(0), [("create", f"{PROFILE}/self", profile)])]
    for i in range(n):
        seq = first_seq + 1 + 2 * i
        user = did(f"{users}{i}")
        record = {"$type": SUBSCRIPTION, "subject": C, "createdAt": NOW}
        frames.append(ff.commit(seq, user, ff.tid(seq), [("create", f"{SUBSCRIPTION}/{ff.tid(seq)}", record)]))
        frames.append(ff.commit(seq + 1, user, ff.tid(seq + 1),
                                [("create", f"app.bsky.feed.like/{ff.tid(seq)}", {"a": 1})]))
    return [(first_seq + i, frame) for i, frame in enumerate(frames)]


class FakeFirehose:
    """Serves frames with seq > ?cursor=, then waits for more. `script[n]` = (after, extra):
    on connection n, after sending `after` frames, send the `extra` frames and close."""

    def __init__(self, frames: Sequence[tuple[int | None, bytes]]) -> None:
        self.frames = list(frames)
        self.script: dict[int, tuple[int, list[bytes]]] = {}
        self.cursors: list[int | None] = []
        self.port = 0
        self._more = trio.Event()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def publish(self, frames: Sequence[tuple[int | None, bytes]]) -> None:
        self.frames += frames
        self._more.set()
        self._more = trio.Event()

    async def handle(self, request: trio_websocket.WebSocketRequest) -> None:
        assert urlsplit(request.path).path == "/xrpc/com.atproto.sync.subscribeRepos"
        query = parse_qs(urlsplit(request.path).query)
        cursor = int(query["cursor"][0]) if "cursor" in query else None
        self.cursors.append(cursor)
        ws = await request.accept()
        after, extra = self.script.get(len(self.cursors) - 1, (None, []))
        sent = 0
        position = cursor if cursor is not None else -1
        try:
            while True:
                for seq, frame in [f for f in self.frames if f[0] is None or f[0] > position]:
                    if sent == after:
                        for message in extra:
                            await ws.send_message(message)
                        await ws.aclose()
                        return
                    await ws.send_message(frame)
                    sent += 1
                    position = seq if seq is not None else position
                await self._more.wait()
        except trio_websocket.ConnectionClosed:
            return


@pytest.fixture
async def firehose_for(nursery: trio.Nursery):  # noqa: ANN201 - fixture factory
    async def start(frames: Sequence[tuple[int | None, bytes]]) -> FakeFirehose:
        server = FakeFirehose(frames)
        listener = await nursery.start(functools.partial(
            trio_websocket.serve_websocket, server.handle, "127.0.0.1", 0, ssl_context=None))
        server.port = listener.port
        return server
    return start


async def ingest_until(db: Database, source: FirehoseSource, cursor: int, *, start: int | None = 0,
                       resume: bool = False) -> list[Batch]:
    """Run the engine until it committed `cursor`, then stop it; return the batches."""
    batches: list[Batch] = []
    done = trio.Event()

    def committed(batch: Batch) -> None:
        batches.append(batch)
        if batch.cursor is not None and batch.cursor >= cursor:
            done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(functools.partial(run_ingest, db, source, settings=SETTINGS, start=start,
                                             resume=resume, on_commit=committed))
        with trio.fail_after(20):
            await done.wait()
        nursery.cancel_scope.cancel()
    return batches


def source_for(server: FakeFirehose, **kwargs: object) -> FirehoseSource:
    return FirehoseSource(server.url, ("social.coves.*",), reconnector=FAST(),
                          **kwargs)  # type: ignore[arg-type]


def counter(metric: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(metric, labels) or 0.0


async def subscriber_count(db: Database) -> int:
    return await db.fetchval("SELECT subscriber_count FROM communities WHERE did = $1", C)


def test_subscribe_url_adds_the_endpoint_and_cursor() -> None:
    assert subscribe_url("ws://localhost:2583", 42) == \
        "ws://localhost:2583/xrpc/com.atproto.sync.subscribeRepos?cursor=42"
    assert subscribe_url("wss://relay.test/xrpc/com.atproto.sync.subscribeRepos?cursor=1", None) == \
        "wss://relay.test/xrpc/com.atproto.sync.subscribeRepos"
    assert FirehoseSource("ws://localhost:2583/", ()).name == "firehose:localhost:2583"


async def test_indexes_wanted_records_and_commits_the_last_seq(writer_db: Database,
                                                               firehose_for) -> None:  # noqa: ANN001
    frames = workload(30)
    server = await firehose_for(frames)
    source = source_for(server)
    batches = await ingest_until(writer_db, source, frames[-1][0])
    assert await subscriber_count(writer_db) == 30
    stored = await writer_db.fetchval("SELECT cursor FROM ingest_cursors WHERE source = $1", source.name)
    assert stored == frames[-1][0] == 61
    skipped = sum(b.skipped["unwanted_collection"] for b in batches)
    assert skipped == 30  # every like frame moved the cursor without a row
    assert server.cursors == [0]


async def test_the_source_tells_the_sink_after_each_receive_that_other_tasks_ran(
        firehose_for) -> None:  # noqa: ANN001
    # As the Jetstream source (tests/engine/test_jetstream_source.py): a frame a receive here.
    frames = workload(100)
    server = await firehose_for(frames)
    sink = RecordingSink(len(frames))
    await sink.read(source_for(server))
    assert sink.calls == ["yielded", "event"] * len(frames)
    assert sink.other_task_ran_within_two_yields()


async def test_reconnect_resumes_from_the_last_seq_with_no_gap_or_double(
        writer_db: Database, firehose_for) -> None:  # noqa: ANN001
    frames = workload(40)
    server = await firehose_for(frames)
    server.script[0] = (25, [])  # first connection: 25 frames, then a clean close
    before = counter("coves_ingest_reconnects_total", source="firehose", reason="closed")
    await ingest_until(writer_db, source_for(server), frames[-1][0])
    assert server.cursors == [0, frames[24][0]]  # exactly the last seq delivered
    assert counter("coves_ingest_reconnects_total", source="firehose", reason="closed") == before + 1
    assert await subscriber_count(writer_db) == 40
    assert await writer_db.fetchval("SELECT count(*) FROM subscriptions") == 40


async def test_restart_resumes_from_the_committed_seq(writer_db: Database,
                                                      firehose_for) -> None:  # noqa: ANN001
    frames = workload(10)
    server = await firehose_for(frames)
    await ingest_until(writer_db, source_for(server), frames[-1][0])
    later = workload(5, first_seq=frames[-1][0] + 1, users="late")
    server.publish(later)
    await ingest_until(writer_db, source_for(server), later[-1][0], start=None, resume=True)
    assert server.cursors == [0, frames[-1][0]]
    assert await subscriber_count(writer_db) == 15  # the repeated profile create changed nothing


async def test_error_frame_is_counted_and_reconnects_with_backoff(writer_db: Database,
                                                                  firehose_for) -> None:  # noqa: ANN001
    frames = workload(10)
    server = await firehose_for(frames)
    server.script[0] = (5, [ff.error("ConsumerTooSlow", "slow down")])
    errors = counter("coves_firehose_error_frames_total", source="firehose", error="ConsumerTooSlow")
    reconnects = counter("coves_ingest_reconnects_total", source="firehose", reason="error_frame")
    await ingest_until(writer_db, source_for(server), frames[-1][0])
    assert counter("coves_firehose_error_frames_total", source="firehose",
                   error="ConsumerTooSlow") == errors + 1
    assert counter("coves_ingest_reconnects_total", source="firehose",
                   reason="error_frame") == reconnects + 1
    assert server.cursors == [0, frames[4][0]]
    assert await subscriber_count(writer_db) == 10


async def test_outdated_cursor_info_is_counted_and_reading_goes_on(
        writer_db: Database, firehose_for, caplog: pytest.LogCaptureFixture) -> None:  # noqa: ANN001
    frames = workload(3)
    server = await firehose_for([(None, ff.info("OutdatedCursor", "cursor too old")), *frames])
    before = counter("coves_firehose_info_total", source="firehose", name="OutdatedCursor")
    await ingest_until(writer_db, source_for(server), frames[-1][0])
    assert counter("coves_firehose_info_total", source="firehose", name="OutdatedCursor") == before + 1
    assert "cursor too old" in caplog.text and server.cursors == [0]
    assert await subscriber_count(writer_db) == 3


async def test_sync_marks_a_known_repo_for_backfill_only(writer_db: Database,
                                                         firehose_for) -> None:  # noqa: ANN001
    frames = workload(1)  # the profile makes C known (identities); a stranger is not
    frames += [(3, ff.sync(3, C, ff.tid(50))), (4, ff.sync(4, did("stranger"), ff.tid(51)))]
    server = await firehose_for(frames)
    await ingest_until(writer_db, source_for(server), 4)
    rows = await table(writer_db, "SELECT did, state, requested_rev FROM backfill_repos")
    assert rows == [{"did": C, "state": "pending", "requested_rev": ff.tid(50)}]


async def test_rejects_keep_their_raw_and_handler_rejects_can_be_redriven(
        writer_db: Database, firehose_for) -> None:  # noqa: ANN001
    bad = {"$type": SUBSCRIPTION, "subject": "not a did", "createdAt": NOW}
    frames = [(1, b"\xa2\x00garbage"),  # no seq: rejected undecoded
              (2, ff.commit(2, did("u"), ff.tid(2), [("create", f"{SUBSCRIPTION}/{ff.tid(2)}", bad)]))]
    server = await firehose_for(frames[1:])
    server.frames.insert(0, (None, frames[0][1]))
    await ingest_until(writer_db, source_for(server), 2)
    rows = {r["reason"]: r for r in await table(
        writer_db, "SELECT reason, raw, cursor, source FROM ingest_rejects")}
    assert set(rows) == {"invalid_frame", "invalid_record"}
    assert bytes(rows["invalid_frame"]["raw"]) == frames[0][1]
    redriven = orjson.loads(rows["invalid_record"]["raw"])  # a Jetstream v1 event of its own
    assert redriven["commit"]["record"] == bad and rows["invalid_record"]["cursor"] == 2
    report = await redrive(writer_db)
    assert (report.examined, report.still_rejected) == (2, 2)
    reasons = await writer_db.fetchval("SELECT array_agg(reason ORDER BY reason) FROM ingest_rejects")
    # the JSON one was re-read and is still refused for its record; the frame kept its reason
    assert reasons == ["invalid_frame", "invalid_record"]
