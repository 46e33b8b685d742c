"""decode: real Jetstream v1 events decode; every malformed shape is refused with a reason."""

from __future__ import annotations

import orjson
import pytest
import zstandard

from engine.decode import MAX_EVENT_BYTES, JetstreamDecoder, decode_jetstream
from engine.errors import RejectedEvent, RejectReason
from engine.events import ACCOUNT, COMMIT, IDENTITY
from tests import factories as f
from tests.conftest import shared_path


def reject_reason(frame: bytes) -> tuple[RejectReason, str]:
    with pytest.raises(RejectedEvent) as caught:
        decode_jetstream(frame)
    return caught.value.reason, caught.value.detail


def test_real_v1_samples_all_decode() -> None:
    lines = shared_path("jetstream-samples", "expected_v1.jsonl").read_bytes().splitlines()
    lines += shared_path("jetstream-samples", "golden_v1.jsonl").read_bytes().splitlines()
    events = [decode_jetstream(line) for line in lines if line.strip()]
    kinds = {e.kind for e in events}
    assert kinds == {COMMIT, IDENTITY, ACCOUNT}
    assert all(e.cursor == e.time_us for e in events)
    deletes = [e for e in events if e.operation == "delete"]
    assert deletes and all(e.record is None and e.cid is None for e in deletes)


def test_commit_fields() -> None:
    event = decode_jetstream(f.subscription(f.did(1), "3k7a3dmb5bk2c", f.did(2), rev="3mptbypluud2a"))
    assert (event.collection, event.rkey, event.rev, event.operation) == (
        f.SUBSCRIPTION, "3k7a3dmb5bk2c", "3mptbypluud2a", "create")
    assert event.uri == f"at://{f.did(1)}/{f.SUBSCRIPTION}/3k7a3dmb5bk2c"
    assert event.record["subject"] == f.did(2)


def test_an_event_cannot_be_changed_only_copied_with_changes() -> None:
    # Handlers and the writer share each Event: none may change it under the others.
    event = decode_jetstream(f.subscription(f.did(1), "3k7a3dmb5bk2c", f.did(2)))
    with pytest.raises(AttributeError):
        event.rev = "3zzzzzzzzzzzz"  # type: ignore[misc]
    copy = event._replace(raw=b"{}")
    assert (copy.raw, copy.did, event.raw != b"{}") == (b"{}", event.did, True)


def envelope(**changes: object) -> bytes:
    data = orjson.loads(f.profile(f.did(1)))
    for key, value in changes.items():
        if key.startswith("commit_"):
            data["commit"][key[7:]] = value
        else:
            data[key] = value
    return orjson.dumps(data)


@pytest.mark.parametrize(("frame", "reason", "detail"), [
    (b"{not json", RejectReason.INVALID_JSON, None),
    (b"\xff\xfe", RejectReason.INVALID_JSON, None),
    (b"[1, 2]", RejectReason.INVALID_SHAPE, "event is a JSON list, not an object"),
    (envelope(did="alice"), RejectReason.INVALID_SHAPE, "did is missing or not a DID"),
    (envelope(time_us="soon"), RejectReason.INVALID_SHAPE, None),
    (envelope(time_us=True), RejectReason.INVALID_SHAPE, None),
    # beyond bigint: the reject row itself could not be written, and the batch failed with it
    (envelope(time_us=2**64 - 1), RejectReason.INVALID_SHAPE,
     "time_us is missing or not a non-negative 64-bit integer"),
    (b'{"did":"did:plc:x","time_us":1,"kind":"account","account":{"active":true,"seq":'
     b'18446744073709551615}}', RejectReason.INVALID_SHAPE,
     "account.seq is not a non-negative 64-bit integer"),
    (envelope(kind="sync"), RejectReason.INVALID_SHAPE, "unknown kind 'sync'"),
    (envelope(commit=None), RejectReason.INVALID_SHAPE, "commit is missing or not an object"),
    (envelope(commit_operation="upsert"), RejectReason.INVALID_SHAPE, None),
    # unhashable values once escaped decode as TypeError and stopped the whole source
    (envelope(commit_operation={"op": "create"}), RejectReason.INVALID_SHAPE, None),
    (envelope(commit_operation=["create"]), RejectReason.INVALID_SHAPE, None),
    (envelope(commit_collection="not an nsid"), RejectReason.INVALID_SHAPE, None),
    (envelope(commit_rkey="../x"), RejectReason.INVALID_SHAPE, None),
    (envelope(commit_rev="notatid"), RejectReason.INVALID_SHAPE, "commit.rev is missing or not a TID"),
    (envelope(commit_record="x"), RejectReason.INVALID_SHAPE, "commit.record is missing on create"),
    (envelope(commit_cid=None), RejectReason.INVALID_SHAPE, None),
    (b'{"did":"did:plc:x","time_us":1,"kind":"account","account":{"active":"yes"}}',
     RejectReason.INVALID_SHAPE, "account.active is missing or not a boolean"),
    (b'{"did":"did:plc:x","time_us":1,"kind":"identity","identity":{"handle":"no spaces"}}',
     RejectReason.INVALID_SHAPE, "identity.handle is not a handle"),
])
def test_malformed_events_are_rejected_with_reason(frame: bytes, reason: RejectReason,
                                                   detail: str | None) -> None:
    got_reason, got_detail = reject_reason(frame)
    assert got_reason is reason
    if detail is not None:
        assert got_detail == detail


@pytest.mark.parametrize("field", ["kind", "operation"])
def test_a_deeply_nested_value_where_a_string_belongs_is_rejected_not_a_crash(field: str) -> None:
    """str() of a 990-deep list recurses past Python's limit: the reason names its type."""
    deep = b"[" * 990 + b"1" + b"]" * 990
    event = orjson.loads(f.post(f.did(1), "3kabc"))
    mark = orjson.dumps("DEEP")
    if field == "kind":
        event["kind"] = "DEEP"
    else:
        event["commit"]["operation"] = "DEEP"
    frame = orjson.dumps(event).replace(mark, deep, 1)
    with pytest.raises(RejectedEvent) as rejected:
        decode_jetstream(frame)
    assert rejected.value.reason is RejectReason.INVALID_SHAPE
    assert "a list" in str(rejected.value)


def test_oversize_event_is_rejected_before_parsing() -> None:
    frame = b'{"did":"' + b"x" * MAX_EVENT_BYTES + b'"}'
    assert reject_reason(frame)[0] is RejectReason.OVERSIZE


def test_zstd_frames_decode_with_the_v1_dictionary() -> None:
    dictionary = shared_path("jetstream-samples", "binary", "legacy_subscribe.zdict")
    compressor = zstandard.ZstdCompressor(dict_data=zstandard.ZstdCompressionDict(dictionary.read_bytes()))
    frame = f.profile(f.did(1), name="zipped")
    event = JetstreamDecoder(dictionary).decode(compressor.compress(frame))
    assert event.record["name"] == "zipped"


def test_zstd_bomb_and_garbage_are_refused(tmp_path) -> None:  # noqa: ANN001
    samples = [f.profile(f.did(n)) for n in range(200)]
    zdict = zstandard.train_dictionary(4096, samples)
    path = tmp_path / "d.zdict"
    path.write_bytes(zdict.as_bytes())
    decoder = JetstreamDecoder(path)
    bomb = zstandard.ZstdCompressor(dict_data=zdict).compress(b" " * (MAX_EVENT_BYTES + 10))
    with pytest.raises(RejectedEvent) as caught:
        decoder.decode(bomb)
    assert caught.value.reason is RejectReason.OVERSIZE
    with pytest.raises(RejectedEvent) as caught:
        decoder.decode(b"\x28\xb5\x2f\xfd garbage")
    assert caught.value.reason is RejectReason.INVALID_FRAME
    assert decoder.decode("{" + f.profile(f.did(1)).decode()[1:]).kind == COMMIT  # text frames too
