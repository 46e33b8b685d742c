"""Raw firehose frames → Events: the real relay capture decodes to what Jetstream gave for it;
crafted frames check filtering, links and bytes, every frame type, and every reject path."""

from __future__ import annotations

import base64
import struct
from typing import Any

import libipld
import orjson
import pytest
import zstandard

from engine.decode import decode_jetstream
from engine.decode_firehose import ERROR, MAX_FRAME_BYTES, FirehoseDecoder
from engine.errors import RejectedEvent, RejectReason
from engine.events import ACCOUNT, COMMIT, IDENTITY, SYNC
from engine.wanted import WantedCollections
from tests.conftest import shared_path
from engine.ipld import read_car
from tests.firehose_frames import Link, account, car, cid_of, commit, error, frame, identity, info, sync, tid

REPO = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
VOTE = "social.coves.feed.vote"
COVES = FirehoseDecoder(WantedCollections(("social.coves.*",)))
EVERYTHING = FirehoseDecoder(WantedCollections())


def capture_frames() -> list[bytes]:
    path = shared_path("jetstream-samples", "binary", "frames.bin.zst")
    data = zstandard.ZstdDecompressor().stream_reader(path.open("rb")).read()
    frames, at = [], 0
    while at < len(data):
        (length,) = struct.unpack_from("<I", data, at)
        frames.append(data[at + 4:at + 4 + length])
        at += 4 + length
    return frames


def jetstream_key(event: dict[str, Any]) -> tuple[Any, ...]:
    if event["kind"] == "commit":
        c = event["commit"]
        return (event["did"], c["rev"], c["collection"], c["rkey"], c["operation"])
    return (event["did"], event["kind"], event[event["kind"]]["seq"])


def test_relay_capture_decodes_to_the_events_jetstream_gave() -> None:
    expected = {jetstream_key(e): e for e in map(orjson.loads,
                shared_path("jetstream-samples", "expected_v1.jsonl").read_bytes().splitlines())}
    got: dict[tuple[Any, ...], dict[str, Any]] = {}
    for raw in capture_frames():
        decoded = EVERYTHING.decode(raw)
        assert decoded.rejects == ()
        for event in decoded.events:
            got[jetstream_key(orjson.loads(event.raw))] = orjson.loads(event.raw)
    assert got.keys() == expected.keys()
    for key, want in expected.items():
        if want["kind"] == "commit" and want["commit"]["operation"] != "delete":
            assert got[key]["commit"]["record"] == want["commit"]["record"], key
            assert got[key]["commit"]["cid"] == want["commit"]["cid"], key
        elif want["kind"] != "commit":
            assert got[key][want["kind"]] | {"time": None} == want[want["kind"]] | {"time": None}


def test_only_wanted_ops_become_events_with_the_commit_rev_seq_and_time() -> None:
    rev, rkey = tid(1), tid(2)
    decoded = COVES.decode(commit(7, REPO, rev, [
        ("create", f"{VOTE}/{rkey}", {"$type": VOTE, "direction": "up"}),
        ("create", f"app.bsky.feed.like/{tid(3)}", {"$type": "app.bsky.feed.like"}),
        ("delete", f"social.coves.community.post/{tid(4)}", None),
    ], time="2026-08-01T12:00:00.250Z"))
    assert [(e.collection, e.operation) for e in decoded.events] == [
        (VOTE, "create"), ("social.coves.community.post", "delete")]
    vote = decoded.events[0]
    assert (vote.did, vote.rev, vote.rkey, vote.cursor) == (REPO, rev, rkey, 7)
    assert vote.time_us == 1_785_585_600_250_000
    assert vote.record == {"$type": VOTE, "direction": "up"}
    assert vote.cid == libipld.encode_cid(cid_of(libipld.encode_dag_cbor(vote.record)))


def test_a_frame_with_nothing_wanted_still_carries_its_seq() -> None:
    decoded = COVES.decode(commit(9, REPO, tid(1), [("create", f"app.bsky.feed.like/{tid(2)}", {})]))
    (marker,) = decoded.events
    assert (marker.kind, marker.collection, marker.cursor) == (COMMIT, "app.bsky.feed.like", 9)
    assert marker.record is None  # the unwanted record is not even decoded


def test_prefix_pattern_needs_a_dot_after_the_prefix() -> None:
    wanted = WantedCollections(("social.coves.*", "app.bsky.feed.like"))
    assert wanted("social.coves.feed.vote") and wanted("app.bsky.feed.like")
    assert not wanted("social.coves") and not wanted("social.covesx.a") and not wanted("app.bsky.feed.post")


def test_links_bytes_and_blobs_render_as_jetstream_does() -> None:
    image = cid_of(b"image bytes")
    record = {"$type": VOTE, "avatar": {"$type": "blob", "ref": Link(image), "mimeType": "image/png",
                                        "size": 11},
              "link": Link(image), "sig": b"\x01\x02\x03\x04"}
    # Plain bytes that happen to spell a CID stay bytes: only tag 42 makes a link. (Links are
    # told from bytes by value within one record's block; a record holding the same CID both
    # as a link and as bytes would render both as links — no lexicon does that.)
    ops = [("create", f"{VOTE}/{tid(2)}", record),
           ("create", f"{VOTE}/{tid(3)}", {"$type": VOTE, "lookalike": b"\xff" * len(image)})]
    # libipld itself encodes CID-shaped bytes as links: put the CID in as plain bytes by hand.
    raw = commit(1, REPO, tid(1), ops)
    header, body = libipld.decode_dag_cbor_multi(raw)
    roots, blocks = read_car(body["blocks"])
    plain = next(b for b in blocks.values() if b"\xff" * len(image) in b).replace(b"\xff" * len(image), image)
    body["blocks"] = car(roots, [b for b in blocks.values() if b"\xff" * len(image) not in b] + [plain])
    body["ops"][1]["cid"] = cid_of(plain)
    first, second = COVES.decode(libipld.encode_dag_cbor(header) + libipld.encode_dag_cbor(body)).events
    link = {"$link": libipld.encode_cid(image)}
    assert first.record == {
        "$type": VOTE, "avatar": {"$type": "blob", "ref": link, "mimeType": "image/png", "size": 11},
        "link": link, "sig": {"$bytes": "AQIDBA"}}  # base64 without padding, as in atproto JSON
    assert second.record == {"$type": VOTE,
                             "lookalike": {"$bytes": base64.b64encode(image).decode().rstrip("=")}}


def test_identity_account_and_sync_frames() -> None:
    (ident,) = COVES.decode(identity(3, REPO, "alice.test")).events
    assert (ident.kind, ident.handle, ident.seq, ident.cursor) == (IDENTITY, "alice.test", 3, 3)
    (acct,) = COVES.decode(account(4, REPO, False, "takendown")).events
    assert (acct.kind, acct.active, acct.status, acct.seq) == (ACCOUNT, False, "takendown", 4)
    (resync,) = COVES.decode(sync(5, REPO, tid(9))).events
    assert (resync.kind, resync.rev, resync.cursor) == (SYNC, tid(9), 5)


def test_too_big_commit_asks_for_a_resync_of_the_repo() -> None:
    decoded = COVES.decode(commit(6, REPO, tid(1), [("create", f"{VOTE}/{tid(2)}", {})], tooBig=True))
    assert [(e.kind, e.did, e.rev) for e in decoded.events] == [(SYNC, REPO, tid(1))]


def test_error_and_info_frames() -> None:
    failed = COVES.decode(error("FutureCursor", "Cursor in the future."))
    assert (failed.type, failed.name, failed.message, failed.events) == (
        ERROR, "FutureCursor", "Cursor in the future.", ())
    note = COVES.decode(info("OutdatedCursor", "too old"))
    assert (note.type, note.name, note.seq) == ("#info", "OutdatedCursor", None)


def test_unknown_frame_type_is_skipped_but_keeps_its_seq() -> None:
    (marker,) = COVES.decode(frame("#labels", {"seq": 12, "labels": []})).events
    assert (marker.kind, marker.cursor) == ("labels", 12)


@pytest.mark.parametrize(("raw", "reason"), [
    (b"\xff\x00garbage", RejectReason.INVALID_FRAME),
    (libipld.encode_dag_cbor({"op": 1, "t": "#commit"}), RejectReason.INVALID_FRAME),
    (frame("#commit", {"repo": REPO, "rev": tid(1), "ops": []}), RejectReason.INVALID_SHAPE),
    (frame("#commit", {"seq": 1, "repo": "nope", "rev": tid(1), "ops": []}), RejectReason.INVALID_SHAPE),
    (frame("#identity", {"seq": 1, "did": REPO, "handle": "not a handle"}), RejectReason.INVALID_SHAPE),
    (b"\x00" * (MAX_FRAME_BYTES + 1), RejectReason.OVERSIZE),
])
def test_frames_that_cannot_be_read_are_rejected(raw: bytes, reason: RejectReason) -> None:
    with pytest.raises(RejectedEvent) as rejected:
        COVES.decode(raw)
    assert rejected.value.reason is reason


def test_an_op_whose_block_is_missing_is_rejected_alone() -> None:
    good, bad = tid(2), tid(3)
    raw = commit(8, REPO, tid(1), [("create", f"{VOTE}/{good}", {"a": 1}),
                                   ("create", f"{VOTE}/{bad}", {"b": 2})])
    header, body = libipld.decode_dag_cbor_multi(raw)
    body["ops"][1]["cid"] = cid_of(b"not in the CAR")  # plain bytes are fine for the decoder
    decoded = COVES.decode(libipld.encode_dag_cbor(header) + libipld.encode_dag_cbor(body))
    assert [e.rkey for e in decoded.events] == [good]
    ((rejected, event),) = decoded.rejects
    assert (rejected.reason, event.rkey, event.cursor) == (RejectReason.INVALID_FRAME, bad, 8)


def test_event_raw_is_jetstream_json_that_decodes_to_the_same_event() -> None:
    (event,) = COVES.decode(commit(2, REPO, tid(1), [("update", f"{VOTE}/{tid(2)}",
                                                       {"subject": {"uri": "at://x", "cid": "y"}})])).events
    again = decode_jetstream(event.raw, cursor=event.cursor)
    assert again == event
