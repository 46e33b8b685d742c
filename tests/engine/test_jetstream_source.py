"""The Jetstream source against the emulator: every fault mode, cursor resume with rewind,
compression, and TCP backpressure — with the real pipeline writing to a real Postgres.

Every test runs over both WebSocket transports (JETSTREAM_TRANSPORT: trio-websocket, sansio)."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import pytest
import trio
import zstandard
from prometheus_client import REGISTRY

from bench.emulator import Fault, JetstreamEmulator
from engine.batcher import Batch
from engine.db import Database
from engine.pipeline import IngestSettings, run_ingest
from engine.sources.jetstream import MAX_MESSAGE_BYTES, JetstreamSource
from engine.sources.reconnect import Reconnector
from engine.sources.websocket import TRANSPORTS
from tests import factories as f
from tests.conftest import shared_path
from tests.helpers import RecordingSink, table

C = f.did("community")
SETTINGS = IngestSettings(batch_max_size=20, batch_max_latency_s=0.01)
# Reconnect fast in tests; the production policy (1 s doubling to 60 s) is tested in test_backoff.
FAST = functools.partial(Reconnector, "jetstream", base_s=0.01, cap_s=0.05)


def workload(n: int) -> list[bytes]:
    """A community profile and n subscriptions to it, each from its own user."""
    return [f.profile(C)] + [f.subscription(f.did(f"u{i}"), f.tid(), C) for i in range(n)]


def last_time_us(frames: Sequence[bytes]) -> int:
    import orjson
    return max(orjson.loads(frame)["time_us"] for frame in frames)


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    """The WebSocket transport every source of the test uses (each test runs once per transport)."""
    return str(request.param)


@pytest.fixture
def source_for(transport: str):  # noqa: ANN201 - fixture factory
    def make(emulator: JetstreamEmulator, **kwargs: object) -> JetstreamSource:
        return JetstreamSource(emulator.url, ("social.coves.*",), reconnector=FAST(),
                               transport=transport, **kwargs)  # type: ignore[arg-type]
    return make


async def ingest_until(db: Database, source: JetstreamSource, cursor: int, *, start: int | None = 0,
                       timeout: float = 30) -> list[Batch]:
    """Run the engine until it committed `cursor`, then stop it; return the batches."""
    batches: list[Batch] = []
    done = trio.Event()

    def committed(batch: Batch) -> None:
        batches.append(batch)
        if batch.cursor is not None and batch.cursor >= cursor:
            done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(functools.partial(run_ingest, db, source, settings=SETTINGS, start=start,
                                             on_commit=committed))
        with trio.fail_after(timeout):
            await done.wait()
        nursery.cancel_scope.cancel()
    return batches


def reconnects(reason: str) -> float:
    labels = {"source": "jetstream", "reason": reason}
    return REGISTRY.get_sample_value("coves_ingest_reconnects_total", labels) or 0.0


async def subscriber_count(db: Database) -> int:
    return await db.fetchval("SELECT subscriber_count FROM communities WHERE did = $1", C)


@pytest.fixture
async def emulator_for(nursery: trio.Nursery):  # noqa: ANN201 - fixture factory
    async def start(frames: Sequence[bytes], **kwargs: object) -> JetstreamEmulator:
        emulator = JetstreamEmulator(frames, **kwargs)  # type: ignore[arg-type]
        await nursery.start(emulator.serve)
        return emulator
    return start


async def test_ingests_everything_and_sends_the_right_subscription(
        writer_db: Database, emulator_for, source_for) -> None:  # noqa: ANN001
    like = f.commit(f.did("x"), "app.bsky.feed.like", f.tid(), record={"a": 1})
    frames = [like] + workload(50)
    emulator = await emulator_for(frames)
    await ingest_until(writer_db, source_for(emulator), last_time_us(frames))
    assert await subscriber_count(writer_db) == 50
    assert emulator.stats.last_query["wantedCollections"] == ["social.coves.*"]
    assert emulator.stats.frames_sent == 51  # the emulator filtered the like out


async def test_the_source_tells_the_sink_after_each_receive_that_other_tasks_ran(
        emulator_for, source_for, transport: str) -> None:  # noqa: ANN001
    # The router yields for the writer only between a source's schedule points: each receive
    # must be one, and over trio-websocket (a message a receive) that is before every event.
    frames = workload(300)
    emulator = await emulator_for(frames)
    sink = RecordingSink(len(frames))
    await sink.read(source_for(emulator))
    assert len(sink.events) == len(frames)
    assert sink.calls[0] == "yielded"
    assert sink.other_task_ran_within_two_yields()
    if transport == "trio-websocket":
        assert sink.calls == ["yielded", "event"] * len(frames)


async def test_resume_uses_the_stored_cursor_minus_the_rewind(
        writer_db: Database, emulator_for, source_for) -> None:  # noqa: ANN001
    frames = workload(10)
    emulator = await emulator_for(frames)
    await ingest_until(writer_db, source_for(emulator), last_time_us(frames))
    stored = await writer_db.fetchval("SELECT cursor FROM ingest_cursors WHERE source = 'jetstream'")
    assert stored == last_time_us(frames)
    later = [f.subscription(f.did("late"), f.tid(), C)]
    emulator.publish(later[0])
    await ingest_until(writer_db, source_for(emulator, rewind_s=5), last_time_us(later), start=None)
    assert emulator.stats.last_query["cursor"] == stored - 5_000_000
    assert await subscriber_count(writer_db) == 11  # the rewound duplicates changed nothing


@pytest.mark.parametrize("fault", [Fault.ABRUPT_CLOSE, Fault.CLOSE, Fault.STALL])
async def test_connection_faults_reconnect_with_no_gap_and_no_double_count(
        writer_db: Database, emulator_for, source_for, fault: Fault) -> None:  # noqa: ANN001
    frames = workload(200)
    emulator = await emulator_for(frames)
    emulator.schedule_fault(fault, after=70)
    source = source_for(emulator, idle_timeout_s=0.3)
    reason = {Fault.ABRUPT_CLOSE: "closed", Fault.CLOSE: "closed", Fault.STALL: "idle"}[fault]
    before = reconnects(reason)
    await ingest_until(writer_db, source, last_time_us(frames))
    assert emulator.stats.connections >= 2 and reconnects(reason) == before + 1
    assert await subscriber_count(writer_db) == 200
    assert await writer_db.fetchval("SELECT count(*) FROM subscriptions") == 200
    assert await writer_db.fetchval("SELECT count(*) FROM ingest_rejects") == 0


async def test_garbage_frame_is_rejected_and_ingestion_continues(
        writer_db: Database, emulator_for, source_for) -> None:  # noqa: ANN001
    frames = workload(30)
    emulator = await emulator_for(frames)
    emulator.schedule_fault(Fault.GARBAGE, after=10)
    await ingest_until(writer_db, source_for(emulator), last_time_us(frames))
    assert await subscriber_count(writer_db) == 30
    rejects = await table(writer_db, "SELECT reason, raw FROM ingest_rejects")
    assert [r["reason"] for r in rejects] == ["invalid_json"]
    assert bytes(rejects[0]["raw"]).startswith(b"\x00\xffnot json")


async def test_oversize_frame_is_rejected_with_its_head_kept(
        writer_db: Database, emulator_for, source_for) -> None:  # noqa: ANN001
    frames = workload(30)
    emulator = await emulator_for(frames)
    emulator.schedule_fault(Fault.OVERSIZE, after=10, oversize_bytes=5 * 2**20)
    await ingest_until(writer_db, source_for(emulator), last_time_us(frames))
    assert await subscriber_count(writer_db) == 30
    reject = (await table(writer_db, "SELECT reason, raw_size, length(raw) AS kept FROM ingest_rejects"))[0]
    assert (reject["reason"], reject["raw_size"], reject["kept"]) == ("oversize", 5 * 2**20, 64 * 1024)


async def test_frame_over_the_socket_limit_is_recorded_and_skipped(
        writer_db: Database, emulator_for, source_for) -> None:  # noqa: ANN001
    frames = workload(30)
    emulator = await emulator_for(frames, max_message_size=64 * 2**20)
    emulator.schedule_fault(Fault.OVERSIZE, after=10, oversize_bytes=MAX_MESSAGE_BYTES + 1024)
    await ingest_until(writer_db, source_for(emulator), last_time_us(frames))
    assert await subscriber_count(writer_db) == 30
    reject = (await table(writer_db, "SELECT reason, detail FROM ingest_rejects"))[0]
    assert reject["reason"] == "oversize" and "over 16777216 bytes after time_us=" in reject["detail"]


async def test_compressed_stream_with_the_v1_dictionary(
        writer_db: Database, emulator_for, source_for) -> None:  # noqa: ANN001
    dictionary = shared_path("jetstream-samples", "binary", "legacy_subscribe.zdict")
    frames = workload(40)
    emulator = await emulator_for(frames, zstd_dictionary=dictionary.read_bytes())
    await ingest_until(writer_db, source_for(emulator, dictionary=dictionary), last_time_us(frames))
    assert emulator.stats.last_query["compress"] is True
    assert await subscriber_count(writer_db) == 40


async def test_compressed_stream_with_a_trained_dictionary(
        writer_db: Database, emulator_for, source_for, tmp_path) -> None:  # noqa: ANN001
    frames = workload(40)
    trained = zstandard.train_dictionary(8192, workload(300) * 2)
    path = tmp_path / "trained.zdict"
    path.write_bytes(trained.as_bytes())
    emulator = await emulator_for(frames, zstd_dictionary=trained.as_bytes())
    await ingest_until(writer_db, source_for(emulator, dictionary=path), last_time_us(frames))
    assert await subscriber_count(writer_db) == 40


async def test_stalled_writer_stops_socket_reads(writer_db: Database, db: Database,
                                                 emulator_for, source_for) -> None:  # noqa: ANN001
    """TCP backpressure: with the writer blocked the engine stops reading; the server's sends
    stall far below the stream's length; releasing the writer drains everything."""
    frames = workload(20_000)
    emulator = await emulator_for(frames)
    release: list[bool] = []
    locked: list[bool] = []

    async def hold_lock(connection) -> None:  # noqa: ANN001 - runs on the asyncio side
        async with connection.transaction():
            await connection.execute("LOCK TABLE subscriptions IN ACCESS EXCLUSIVE MODE")
            locked.append(True)
            while not release:
                await connection.execute("SELECT pg_sleep(0.01)")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(db.run, hold_lock)
        with trio.fail_after(10):
            while not locked:
                await trio.sleep(0.01)
        done = trio.Event()

        def committed(batch: Batch) -> None:
            if batch.cursor is not None and batch.cursor >= last_time_us(frames[-1:]):
                done.set()

        nursery.start_soon(functools.partial(
            run_ingest, writer_db, source_for(emulator), start=0, on_commit=committed,
            settings=IngestSettings(batch_max_size=100, batch_max_latency_s=0.01)))
        with trio.fail_after(20):  # wait for the sender to stop making progress
            sent = -1
            while emulator.stats.frames_sent != sent:
                sent = emulator.stats.frames_sent
                await trio.sleep(0.3)
        print(f"sender stalled after {sent} of {len(frames)} frames")
        assert 0 < sent < len(frames) // 2, sent
        release.append(True)
        with trio.fail_after(60):
            await done.wait()
        nursery.cancel_scope.cancel()
    assert await subscriber_count(writer_db) == 20_000
