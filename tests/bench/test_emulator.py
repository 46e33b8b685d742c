"""Tests for bench/emulator.py with a real trio-websocket client over loopback."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
import pytest
import trio
import trio.testing
import zstandard
from trio_websocket import (
    CloseReason,
    ConnectionClosed,
    ConnectionRejected,
    WebSocketConnection,
    open_websocket_url,
)

from bench.emulator import CLOSE_REASON, GARBAGE_FRAME, Fault, JetstreamEmulator

SAMPLES = Path("/work/shared/jetstream-samples")
V1_EVENTS = SAMPLES / "expected_v1.jsonl"
V1_DICTIONARY = SAMPLES / "binary" / "legacy_subscribe.zdict"
V1_DICTIONARY_ID = 1612007021
MAX_MESSAGE_BYTES = 16 * 2**20
REPO_ROOT = Path(__file__).resolve().parents[2]
T0 = 1_783_175_888_000_000
POST, VOTE, COMMENT = ("social.coves.community.post", "social.coves.feed.vote",
                       "social.coves.community.comment")
LIKE = "app.bsky.feed.like"


def commit(n: int, collection: str = POST, *, did: str = "did:plc:alice",
           time_us: int | None = None) -> bytes:
    """A synthetic v1 commit event; `n` makes it unique."""
    return orjson.dumps({
        "did": did, "time_us": T0 + n if time_us is None else time_us, "kind": "commit",
        "commit": {"rev": f"3mptbyp{n:06d}", "operation": "create", "collection": collection,
                   "rkey": f"3mpt{n:09d}", "cid": f"bafyreig{n:052d}",
                   "record": {"$type": collection, "title": f"post number {n}",
                              "createdAt": "2026-07-04T14:38:08.999Z"}}})


def identity(n: int, did: str = "did:plc:alice") -> bytes:
    return orjson.dumps({"did": did, "time_us": T0 + n, "kind": "identity",
                         "identity": {"did": did, "seq": n, "time": "2026-07-04T14:38:08Z"}})


def account(n: int, did: str = "did:plc:alice") -> bytes:
    return orjson.dumps({"did": did, "time_us": T0 + n, "kind": "account",
                         "account": {"active": True, "did": did, "seq": n,
                                     "time": "2026-07-04T14:38:08Z"}})


@asynccontextmanager
async def subscribe(url: str, query: str = "",
                    headers: list[tuple[bytes, bytes]] | None = None,
                    ) -> AsyncIterator[WebSocketConnection]:
    async with open_websocket_url(url + query, max_message_size=MAX_MESSAGE_BYTES,
                                  extra_headers=headers) as ws:
        yield ws


async def receive(ws: WebSocketConnection, n: int) -> list[bytes]:
    """Receive `n` messages as bytes (text messages encoded back to UTF-8)."""
    messages = []
    for _ in range(n):
        message = await ws.get_message()
        messages.append(message.encode() if isinstance(message, str) else message)
    return messages


async def receive_binary(ws: WebSocketConnection, n: int) -> list[bytes]:
    """Receive `n` messages, checking each is binary (a compressed frame)."""
    frames = []
    for _ in range(n):
        frame = await ws.get_message()
        assert isinstance(frame, bytes)
        frames.append(frame)
    return frames


async def close_reason(ws: WebSocketConnection) -> CloseReason:
    """Expect the next receive to fail because the connection closed; return why."""
    with pytest.raises(ConnectionClosed) as closed:
        await ws.get_message()
    assert closed.value.reason is not None
    return closed.value.reason


async def assert_next_is(ws: WebSocketConnection, emulator: JetstreamEmulator,
                         sentinel: bytes) -> None:
    """Publish `sentinel` and check it is the very next message: nothing else was queued."""
    emulator.publish(sentinel)
    assert await receive(ws, 1) == [sentinel]


async def test_wanted_collections_match_exact_and_prefix_and_pass_identity_and_account(
        nursery: trio.Nursery) -> None:
    events = [commit(1, POST), commit(2, VOTE), commit(3, LIKE), identity(4), account(5),
              commit(6, COMMENT), commit(7, "social.coves.communityx.post"),
              commit(8, "social.coves.feed.voteX")]
    emulator = JetstreamEmulator(events)
    url = await nursery.start(emulator.serve)
    query = f"?cursor=0&wantedCollections=social.coves.community.*&wantedCollections={VOTE}"
    async with subscribe(url, query) as ws:
        assert await receive(ws, 5) == [events[0], events[1], events[3], events[4], events[5]]
        await assert_next_is(ws, emulator, commit(9, POST))


async def test_wanted_dids_filter_every_kind(nursery: trio.Nursery) -> None:
    bob = "did:plc:bob"
    events = [commit(1, did=bob), commit(2), identity(3), identity(4, bob), account(5),
              account(6, bob), commit(7, LIKE, did=bob)]
    emulator = JetstreamEmulator(events)
    url = await nursery.start(emulator.serve)
    async with subscribe(url, f"?cursor=0&wantedDids={bob}&wantedDids=did:web:carol.test") as ws:
        assert await receive(ws, 4) == [events[0], events[3], events[5], events[6]]
        await assert_next_is(ws, emulator, commit(8, did="did:web:carol.test"))


async def test_cursor_replays_events_at_or_after_it_in_buffer_order_then_live(
        nursery: trio.Nursery) -> None:
    events = [commit(n, time_us=t) for n, t in enumerate([10, 20, 30, 25, 40])]
    emulator = JetstreamEmulator(events)
    url = await nursery.start(emulator.serve)
    async with subscribe(url, "?cursor=25") as ws:
        assert await receive(ws, 3) == [events[2], events[3], events[4]]
        await assert_next_is(ws, emulator, commit(5, time_us=50))


async def test_cursor_older_than_buffer_starts_at_oldest(nursery: trio.Nursery) -> None:
    events = [commit(n) for n in range(5)]
    emulator = JetstreamEmulator(events)
    url = await nursery.start(emulator.serve)
    async with subscribe(url, f"?cursor={T0 - 10**9}") as ws:
        assert await receive(ws, 5) == events
        await assert_next_is(ws, emulator, commit(5))


async def test_no_cursor_or_future_cursor_gets_only_the_live_tail(nursery: trio.Nursery) -> None:
    emulator = JetstreamEmulator([commit(n) for n in range(5)])
    url = await nursery.start(emulator.serve)
    async with subscribe(url) as live, subscribe(url, f"?cursor={T0 + 10**9}") as future:
        await emulator.wait_for_connections(2)
        live_event = commit(6)
        emulator.publish(live_event)
        assert await receive(live, 1) == [live_event]
        assert await receive(future, 1) == [live_event]


async def test_last_query_reports_parsed_params_and_ignores_unknown_ones(
        nursery: trio.Nursery) -> None:
    emulator = JetstreamEmulator()
    url = await nursery.start(emulator.serve)
    query = (f"?wantedCollections={POST}&wantedCollections=social.coves.*&wantedDids=did:plc:a"
             "&cursor=123&maxMessageSizeBytes=10&surprise=1")
    async with subscribe(url, query):
        await emulator.wait_for_connections(1)
    assert emulator.stats.last_query == {
        "wantedCollections": [POST, "social.coves.*"], "wantedDids": ["did:plc:a"],
        "cursor": 123, "compress": False}


@pytest.mark.parametrize(("query", "status"), [
    ("?wantedCollections=social.*.post", 400), ("?wantedCollections=*", 400),
    ("?wantedDids=alice", 400), ("?cursor=yesterday", 400), ("?compress=true", 400),
])
async def test_bad_requests_are_refused_with_http_400(nursery: trio.Nursery, query: str,
                                                      status: int) -> None:
    emulator = JetstreamEmulator()  # no dictionary: compress=true is refused too
    url = await nursery.start(emulator.serve)
    with pytest.raises(ConnectionRejected) as rejected:
        async with subscribe(url, query):
            pass
    assert rejected.value.status_code == status
    assert emulator.stats.connections == 0


async def test_unknown_path_is_refused_with_http_404(nursery: trio.Nursery) -> None:
    emulator = JetstreamEmulator()
    url = await nursery.start(emulator.serve)
    with pytest.raises(ConnectionRejected) as rejected:
        async with subscribe(url.replace("/subscribe", "/xrpc/other")):
            pass
    assert rejected.value.status_code == 404


def train_dictionary(events: Sequence[bytes]) -> zstandard.ZstdCompressionDict:
    return zstandard.train_dictionary(8192, list(events))


@pytest.mark.parametrize("how", ["query", "header"])
async def test_compressed_frames_decompress_with_a_trained_dictionary(
        nursery: trio.Nursery, how: str) -> None:
    samples = [commit(n, (POST, VOTE, COMMENT)[n % 3], did=f"did:plc:user{n % 13}")
               for n in range(2000)]
    dictionary = train_dictionary(samples)
    events = samples[:50] + [identity(5000), account(5001)]
    emulator = JetstreamEmulator(events, zstd_dictionary=dictionary.as_bytes())
    url = await nursery.start(emulator.serve)
    query, headers = ("?cursor=0&compress=true", None) if how == "query" else (
        "?cursor=0", [(b"Socket-Encoding", b"zstd")])
    async with subscribe(url, query, headers) as ws:
        frames = await receive_binary(ws, len(events))
    decompressor = zstandard.ZstdDecompressor(
        dict_data=zstandard.ZstdCompressionDict(dictionary.as_bytes()))
    assert [decompressor.decompress(frame) for frame in frames] == events
    dict_ids = {zstandard.get_frame_parameters(frame).dict_id for frame in frames}
    assert dict_ids == {dictionary.dict_id()}
    assert emulator.stats.last_query["compress"] is True


@pytest.mark.skipif(not (V1_DICTIONARY.exists() and V1_EVENTS.exists()),
                    reason="needs /work/shared/jetstream-samples (v1 dictionary and events)")
async def test_real_v1_events_filter_and_compress_with_the_v1_dictionary(
        nursery: trio.Nursery) -> None:
    events = V1_EVENTS.read_bytes().splitlines()
    wanted = [event for event in events
              if orjson.loads(event)["kind"] != "commit"
              or orjson.loads(event)["commit"]["collection"].startswith("app.bsky.feed.")]
    dictionary = V1_DICTIONARY.read_bytes()
    emulator = JetstreamEmulator(events, zstd_dictionary=dictionary)
    url = await nursery.start(emulator.serve)
    async with subscribe(url, "?cursor=0&compress=true&wantedCollections=app.bsky.feed.*") as ws:
        frames = await receive_binary(ws, len(wanted))
    decompressor = zstandard.ZstdDecompressor(dict_data=zstandard.ZstdCompressionDict(dictionary))
    assert [decompressor.decompress(frame) for frame in frames] == wanted
    assert zstandard.get_frame_parameters(frames[0]).dict_id == V1_DICTIONARY_ID
    with pytest.raises(zstandard.ZstdError):
        zstandard.ZstdDecompressor().decompress(frames[0])


async def test_abrupt_close_drops_tcp_without_close_frame_once(nursery: trio.Nursery) -> None:
    events = [commit(n) for n in range(10)]
    emulator = JetstreamEmulator(events)
    emulator.schedule_fault(Fault.ABRUPT_CLOSE, after=3)
    url = await nursery.start(emulator.serve)
    async with subscribe(url, "?cursor=0") as ws:
        assert await receive(ws, 3) == events[:3]
        assert (await close_reason(ws)).code == 1006  # abnormal closure: no close frame came
    async with subscribe(url, "?cursor=0") as ws:
        assert await receive(ws, 10) == events


async def test_stall_keeps_the_connection_open_and_silent_once(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    events = [commit(n) for n in range(5)]
    emulator = JetstreamEmulator(events)
    emulator.schedule_fault(Fault.STALL, after=2)
    url = await nursery.start(emulator.serve)
    async with subscribe(url, "?cursor=0") as ws:
        assert await receive(ws, 2) == events[:2]
        emulator.publish(commit(5))
        with trio.move_on_after(3600) as silence:
            await ws.get_message()
        assert silence.cancelled_caught
        assert ws.closed is None
        await ws.ping()  # the socket still answers
    async with subscribe(url, "?cursor=0") as ws:
        assert await receive(ws, 6) == [*events, commit(5)]


async def test_garbage_frame_comes_at_its_position_then_the_stream_goes_on(
        nursery: trio.Nursery) -> None:
    events = [commit(n) for n in range(5)]
    emulator = JetstreamEmulator(events)
    emulator.schedule_fault(Fault.GARBAGE, after=2)
    url = await nursery.start(emulator.serve)
    async with subscribe(url, "?cursor=0") as ws:
        assert await receive(ws, 6) == [*events[:2], GARBAGE_FRAME, *events[2:]]
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(GARBAGE_FRAME)
    async with subscribe(url, "?cursor=0") as ws:
        assert await receive(ws, 5) == events


async def test_oversize_frame_comes_at_its_position_then_the_stream_goes_on(
        nursery: trio.Nursery) -> None:
    events = [commit(n) for n in range(3)]
    emulator = JetstreamEmulator(events)
    emulator.schedule_fault(Fault.OVERSIZE, after=1)
    url = await nursery.start(emulator.serve)
    async with subscribe(url, "?cursor=0") as ws:
        first, oversize, *rest = await receive(ws, 4)
    assert [first, *rest] == events
    assert len(oversize) == 5 * 2**20
    assert orjson.loads(oversize)["time_us"] == T0  # the previous event's, not a jump ahead


async def test_oversize_frame_is_compressed_like_the_others(nursery: trio.Nursery) -> None:
    samples = [commit(n) for n in range(1000)]
    dictionary = train_dictionary(samples).as_bytes()
    emulator = JetstreamEmulator(samples[:2], zstd_dictionary=dictionary)
    emulator.schedule_fault(Fault.OVERSIZE, after=1, oversize_bytes=3 * 2**20)
    url = await nursery.start(emulator.serve)
    async with subscribe(url, "?cursor=0&compress=true") as ws:
        frames = await receive_binary(ws, 3)
    decompressor = zstandard.ZstdDecompressor(dict_data=zstandard.ZstdCompressionDict(dictionary))
    first, oversize, last = (decompressor.decompress(frame) for frame in frames)
    assert [first, last] == samples[:2]
    assert len(oversize) == 3 * 2**20


async def test_close_fault_closes_cleanly_with_1011_once(nursery: trio.Nursery) -> None:
    events = [commit(n) for n in range(6)]
    emulator = JetstreamEmulator(events)
    emulator.schedule_fault(Fault.CLOSE, after=4)
    url = await nursery.start(emulator.serve)
    async with subscribe(url, "?cursor=0") as ws:
        assert await receive(ws, 4) == events[:4]
        reason = await close_reason(ws)
        assert (reason.code, reason.reason) == (1011, CLOSE_REASON)
    async with subscribe(url, "?cursor=0") as ws:
        assert await receive(ws, 6) == events


async def test_faults_queue_one_per_connection_in_order(nursery: trio.Nursery) -> None:
    events = [commit(n) for n in range(4)]
    emulator = JetstreamEmulator(events)
    emulator.schedule_fault(Fault.CLOSE, after=1)
    emulator.schedule_fault(Fault.ABRUPT_CLOSE, after=2)
    url = await nursery.start(emulator.serve)
    for after, code in [(1, 1011), (2, 1006)]:
        async with subscribe(url, "?cursor=0") as ws:
            assert await receive(ws, after) == events[:after]
            assert (await close_reason(ws)).code == code
    async with subscribe(url, "?cursor=0") as ws:
        assert await receive(ws, 4) == events
    assert emulator.stats.connections == 3


async def test_rate_paces_1000_events_at_500_per_second_over_2_virtual_seconds(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    events = [commit(n) for n in range(1000)]
    emulator = JetstreamEmulator(events, rate=500)
    url = await nursery.start(emulator.serve)
    async with subscribe(url, "?cursor=0") as ws:
        start = trio.current_time()
        assert await receive(ws, 1000) == events
        elapsed = trio.current_time() - start
    assert 1.8 <= elapsed <= 2.2


async def test_stamp_time_with_a_rate_stamps_each_event_with_when_it_was_due(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    """As Jetstream stamps an event when it arrives: the k-th event sent at 500/s is stamped
    first + k × 2 ms, however late the subscriber reads it; nothing else in it changes."""
    events = [commit(n) for n in range(50)]
    emulator = JetstreamEmulator(events, rate=500, stamp_time=True)
    url = await nursery.start(emulator.serve)
    async with subscribe(url, "?cursor=0") as ws:
        received = [orjson.loads(raw) for raw in await receive(ws, 50)]
    stamps = [event.pop("time_us") for event in received]
    assert [stamp - stamps[0] for stamp in stamps] == [k * 2000 for k in range(50)]
    originals = [orjson.loads(raw) for raw in events]
    for original in originals:
        del original["time_us"]
    assert received == originals


async def test_options_update_changes_the_filter_mid_stream(nursery: trio.Nursery) -> None:
    emulator = JetstreamEmulator()
    url = await nursery.start(emulator.serve)
    async with subscribe(url, f"?wantedCollections={POST}") as ws:
        await emulator.wait_for_connections(1)
        emulator.publish(commit(1, VOTE))
        await assert_next_is(ws, emulator, commit(2, POST))
        await ws.send_message(orjson.dumps({"type": "options_update", "payload": {
            "wantedCollections": [VOTE], "wantedDids": [], "maxMessageSizeBytes": 0}}).decode())
        await trio.testing.wait_all_tasks_blocked()
        emulator.publish(commit(3, POST))
        await assert_next_is(ws, emulator, commit(4, VOTE))


async def test_require_hello_waits_for_the_first_options_update(nursery: trio.Nursery) -> None:
    events = [commit(1, POST), commit(2, VOTE)]
    emulator = JetstreamEmulator(events)
    url = await nursery.start(emulator.serve)
    async with subscribe(url, "?cursor=0&requireHello=true") as ws:
        await emulator.wait_for_connections(1)
        await trio.testing.wait_all_tasks_blocked()
        assert emulator.stats.frames_sent == 0
        await ws.send_message('{"type":"options_update","payload":{"wantedCollections":'
                              f'["{VOTE}"]}}}}')
        assert await receive(ws, 1) == [events[1]]


async def test_malformed_client_message_closes_the_connection(nursery: trio.Nursery) -> None:
    emulator = JetstreamEmulator()
    url = await nursery.start(emulator.serve)
    async with subscribe(url) as ws:
        await ws.send_message("not json")
        assert (await close_reason(ws)).code == 1000


async def test_close_all_drops_live_clients_and_keeps_serving(nursery: trio.Nursery) -> None:
    emulator = JetstreamEmulator()
    url = await nursery.start(emulator.serve)
    async with subscribe(url) as first, subscribe(url, "?cursor=0") as second:
        await emulator.wait_for_connections(2)
        emulator.close_all()
        for ws in (first, second):
            assert (await close_reason(ws)).code == 1006
    async with subscribe(url) as ws:
        await emulator.wait_for_connections(3)
        await assert_next_is(ws, emulator, commit(1))


async def test_loop_replays_the_buffer_endlessly_and_idles_when_nothing_matches(
        nursery: trio.Nursery) -> None:
    events = [commit(n) for n in range(3)]
    emulator = JetstreamEmulator(events, loop=True)
    url = await nursery.start(emulator.serve)
    async with subscribe(url) as ws:
        assert await receive(ws, 7) == [*events, *events, events[0]]
    async with subscribe(url, f"?wantedCollections={VOTE}") as ws:
        with trio.fail_after(5):  # a sender spinning over the buffer would never block
            await emulator.wait_for_connections(2)
            await trio.testing.wait_all_tasks_blocked()


def test_events_that_are_not_v1_events_are_refused() -> None:
    with pytest.raises(ValueError, match="not a Jetstream v1 event"):
        JetstreamEmulator([b'{"kind":"commit"}'])
    with pytest.raises(ValueError, match="not a Jetstream v1 event"):
        JetstreamEmulator().publish(b"\x00\xff")


async def test_cli_serves_a_zstd_jsonl_file_and_prints_ready(tmp_path: Path) -> None:
    events = [commit(n) for n in range(20)]
    path = tmp_path / "events.jsonl.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(b"\n".join(events) + b"\n"))
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "bench.emulator", str(path), "--port", "0"],
        stdout=subprocess.PIPE, cwd=REPO_ROOT)
    try:
        assert process.stdout is not None
        line = b""
        with trio.fail_after(20):
            while not line.endswith(b"\n"):
                chunk = await process.stdout.receive_some(1)
                assert chunk, "the emulator exited before READY"
                line += chunk
            word, url = line.decode().split()
            assert word == "READY" and url.startswith("ws://127.0.0.1:")
            async with subscribe(url, "?cursor=0") as ws:
                assert await receive(ws, 20) == events
    finally:
        process.kill()
        await process.wait()


async def test_cli_help_documents_the_options() -> None:
    result = await trio.run_process([sys.executable, "-m", "bench.emulator", "--help"],
                                    capture_stdout=True, cwd=REPO_ROOT)
    for option in (b"--host", b"--port", b"--rate", b"--zstd-dictionary", b"--loop"):
        assert option in result.stdout
