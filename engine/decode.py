"""Jetstream v1 frames → Event. Pure: bytes in, Event out, or RejectedEvent with a reason.

Frames are JSON text, or (with compress=true) one zstd frame per message made with the v1
dictionary. Envelope fields are checked here; record contents are the handlers' business.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import orjson
import zstandard

from . import syntax
from .errors import RejectedEvent, RejectReason
from .events import ACCOUNT, COMMIT, CREATE, DELETE, IDENTITY, UPDATE, Event

__all__ = ["MAX_EVENT_BYTES", "JetstreamDecoder", "decode_jetstream"]

# atproto caps a record at 1 MiB of CBOR (its JSON is larger, typically < 2x); a relay frame at
# 5 MB. Anything over 4 MiB of JSON is not a record we can store: reject it, keep its head.
MAX_EVENT_BYTES: Final = 4 * 1024 * 1024
_OPERATIONS: Final = frozenset({CREATE, UPDATE, DELETE})
# time_us and seq are stored as Postgres bigint (cursors, rejects, identities): a larger value
# could not even be written, and would fail the whole batch it sits in.
MAX_BIGINT: Final = 2**63 - 1
_ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"


def _reject_shape(detail: str) -> RejectedEvent:
    return RejectedEvent(RejectReason.INVALID_SHAPE, detail)


def _excerpt(value: object) -> str:
    """A short text for a value an event sent where a string belongs: the string's start, else
    the type's name (str() of a deeply nested list recurses past Python's limit)."""
    return repr(value[:40]) if isinstance(value, str) else f"a {type(value).__name__}"


def decode_jetstream(frame: bytes, cursor: int | None = None) -> Event:
    """Decode one Jetstream v1 JSON event.

    Args:
        frame: the JSON text as bytes.
        cursor: the source position to record; defaults to the event's time_us (Jetstream's cursor).

    Raises:
        RejectedEvent: oversize, not JSON, or not a well-formed v1 event.
    """
    if len(frame) > MAX_EVENT_BYTES:
        raise RejectedEvent(RejectReason.OVERSIZE, f"{len(frame)} bytes > {MAX_EVENT_BYTES}")
    try:
        data = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        raise RejectedEvent(RejectReason.INVALID_JSON, str(exc)[:200]) from None
    if type(data) is not dict:
        raise _reject_shape(f"event is a JSON {type(data).__name__}, not an object")
    did = data.get("did")
    time_us = data.get("time_us")
    kind = data.get("kind")
    if not syntax.is_did(did):
        raise _reject_shape("did is missing or not a DID")
    if type(time_us) is not int or not 0 <= time_us <= MAX_BIGINT:
        raise _reject_shape("time_us is missing or not a non-negative 64-bit integer")
    position = time_us if cursor is None else cursor
    if kind == COMMIT:
        return _commit(data, did, time_us, position, frame)
    if kind == IDENTITY:
        return _identity(data, did, time_us, position, frame)
    if kind == ACCOUNT:
        return _account(data, did, time_us, position, frame)
    raise _reject_shape(f"unknown kind {_excerpt(kind)}")


def _commit(data: dict[str, Any], did: str, time_us: int, cursor: int, frame: bytes) -> Event:
    commit = data.get("commit")
    if type(commit) is not dict:
        raise _reject_shape("commit is missing or not an object")
    operation = commit.get("operation")
    collection = commit.get("collection")
    rkey = commit.get("rkey")
    rev = commit.get("rev")
    if type(operation) is not str or operation not in _OPERATIONS:  # a dict or list is unhashable
        raise _reject_shape(f"commit.operation {_excerpt(operation)} is not create|update|delete")
    if not syntax.is_nsid(collection):
        raise _reject_shape("commit.collection is missing or not an NSID")
    if not syntax.is_rkey(rkey):
        raise _reject_shape("commit.rkey is missing or not a record key")
    if not syntax.is_tid(rev):
        raise _reject_shape("commit.rev is missing or not a TID")
    record = commit.get("record")
    cid = commit.get("cid")
    if operation == DELETE:
        record, cid = None, None
    else:
        if type(record) is not dict:
            raise _reject_shape(f"commit.record is missing on {operation}")
        if not syntax.is_cid(cid):
            raise _reject_shape(f"commit.cid is missing or not a CID on {operation}")
    return Event(did=did, kind=COMMIT, time_us=time_us, cursor=cursor, operation=operation,
                 collection=collection, rkey=rkey, rev=rev, cid=cid, record=record, raw=frame)


def _seq(body: dict[str, Any], name: str) -> int | None:
    seq = body.get("seq")
    if seq is not None and (type(seq) is not int or not 0 <= seq <= MAX_BIGINT):
        raise _reject_shape(f"{name}.seq is not a non-negative 64-bit integer")
    return seq


def _identity(data: dict[str, Any], did: str, time_us: int, cursor: int, frame: bytes) -> Event:
    identity = data.get("identity")
    if type(identity) is not dict:
        raise _reject_shape("identity is missing or not an object")
    handle = identity.get("handle")
    if handle is not None and not syntax.is_handle(handle):
        raise _reject_shape("identity.handle is not a handle")
    return Event(did=did, kind=IDENTITY, time_us=time_us, cursor=cursor, handle=handle,
                 seq=_seq(identity, "identity"), raw=frame)


def _account(data: dict[str, Any], did: str, time_us: int, cursor: int, frame: bytes) -> Event:
    account = data.get("account")
    if type(account) is not dict:
        raise _reject_shape("account is missing or not an object")
    active = account.get("active")
    status = account.get("status")
    if type(active) is not bool:
        raise _reject_shape("account.active is missing or not a boolean")
    if status is not None and (type(status) is not str or len(status) > 64):
        raise _reject_shape("account.status is not a short string")
    return Event(did=did, kind=ACCOUNT, time_us=time_us, cursor=cursor, active=active,
                 status=status, seq=_seq(account, "account"), raw=frame)


class JetstreamDecoder:
    """Decodes text or zstd-compressed Jetstream frames.

    Args:
        dictionary: the Jetstream v1 zstd dictionary, needed for compress=true streams.
    """

    def __init__(self, dictionary: Path | None = None) -> None:
        self._decompressor: zstandard.ZstdDecompressor | None = None
        if dictionary is not None:
            zdict = zstandard.ZstdCompressionDict(dictionary.read_bytes())
            self._decompressor = zstandard.ZstdDecompressor(dict_data=zdict)

    def decode(self, frame: bytes | str) -> Event:
        """Decode one WebSocket message (text JSON, or binary zstd when compressed).

        Raises:
            RejectedEvent: as `decode_jetstream`, or INVALID_FRAME for a binary frame that does not
                decompress.
        """
        if isinstance(frame, str):
            return decode_jetstream(frame.encode())
        if frame[:4] != _ZSTD_MAGIC:
            return decode_jetstream(frame)
        if self._decompressor is None:
            raise RejectedEvent(RejectReason.INVALID_FRAME,
                                "zstd frame but no JETSTREAM_ZSTD_DICTIONARY configured")
        try:
            size = zstandard.frame_content_size(frame)
            if size > MAX_EVENT_BYTES:
                raise RejectedEvent(RejectReason.OVERSIZE, f"{size} bytes once decompressed")
            text = self._decompressor.decompress(frame, max_output_size=MAX_EVENT_BYTES + 1)
        except zstandard.ZstdError as exc:
            raise RejectedEvent(RejectReason.INVALID_FRAME, f"zstd: {exc}"[:200]) from None
        return decode_jetstream(text)
