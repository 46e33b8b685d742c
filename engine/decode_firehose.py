"""Raw firehose frames (`com.atproto.sync.subscribeRepos`) → Events shaped as Jetstream's.

A frame is two DAG-CBOR objects: a header `{op, t}` and a body. `op: -1` is an error frame;
`t` names the body: `#commit` (one Event per wanted op, its record read from the CAR slice),
`#identity`, `#account`, `#sync` (the repo must be re-read whole), `#info`. Pure: bytes in,
`Frame` out, or RejectedEvent for a frame that cannot be read at all.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any, Final

import libipld

from . import syntax
from .errors import RejectedEvent, RejectReason
from .events import ACCOUNT, COMMIT, CREATE, DELETE, IDENTITY, SYNC, UPDATE, Event
from .ipld import cid_string, read_car, record_json
from .render import jetstream_json

__all__ = ["ERROR", "Frame", "FirehoseDecoder", "MAX_FRAME_BYTES"]

# Relays cap a frame at ~5 MB (facts.md); a PDS writes at most 1 MiB per record. Beyond 8 MiB a
# frame is not something we can store: reject it (its head is kept) rather than decode it.
MAX_FRAME_BYTES: Final = 8 * 1024 * 1024
ERROR: Final = "error"  # Frame.type of an `op: -1` frame
_ACTIONS: Final = frozenset({CREATE, UPDATE, DELETE})


@dataclasses.dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame.

    Attributes:
        type: the header's `t` ("#commit", "#sync", …), or ERROR for an error frame.
        seq: the frame's sequence number (None for #info and error frames).
        events: what to deliver. A frame with a seq but nothing wanted still carries one event
            (an op of an unwanted collection, or an unhandled kind) so the cursor moves past it.
        rejects: ops that could not be turned into events, with what is known of them.
        name, message: an error frame's error and message; an #info frame's name and message.
    """

    type: str
    seq: int | None
    events: tuple[Event, ...] = ()
    rejects: tuple[tuple[RejectedEvent, Event], ...] = ()
    name: str | None = None
    message: str | None = None


def _shape(detail: str) -> RejectedEvent:
    return RejectedEvent(RejectReason.INVALID_SHAPE, detail)


def _time_us(value: object) -> int:
    moment = syntax.parse_datetime(value)
    if moment is None:  # not ours to refuse: lag reads it, nothing else
        return time.time_ns() // 1000
    return int(moment.timestamp() * 1_000_000)


def _text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    return value if type(value) is str else None


class FirehoseDecoder:
    """Decodes frames, keeping only the commit ops whose collection is wanted.

    Args:
        wanted: collection NSID → whether to deliver its ops (e.g. a `WantedCollections`).
    """

    def __init__(self, wanted: Callable[[str], bool]) -> None:
        self._wanted = wanted
        self._bodies: dict[str, Callable[[dict[str, Any], int], Frame]] = {
            "#commit": self._commit, "#identity": self._identity, "#account": self._account,
            "#sync": self._sync,
        }

    def decode(self, frame: bytes) -> Frame:
        """Decode one binary WebSocket message.

        Raises:
            RejectedEvent: OVERSIZE past MAX_FRAME_BYTES; INVALID_FRAME when it is not a header
                and a body; INVALID_SHAPE when a known body lacks its seq or repo.
        """
        if len(frame) > MAX_FRAME_BYTES:
            raise RejectedEvent(RejectReason.OVERSIZE, f"{len(frame)} bytes > {MAX_FRAME_BYTES}")
        try:
            parts = libipld.decode_dag_cbor_multi(frame)
        except (ValueError, RecursionError) as exc:
            raise RejectedEvent(RejectReason.INVALID_FRAME, f"DAG-CBOR: {exc}"[:200]) from None
        if len(parts) != 2 or type(parts[0]) is not dict or type(parts[1]) is not dict:
            raise RejectedEvent(RejectReason.INVALID_FRAME, "not a header map and a body map")
        header, body = parts
        op = header.get("op")
        if op == -1:
            return Frame(ERROR, None, name=_text(body, "error"), message=_text(body, "message"))
        kind = header.get("t")
        if op != 1 or type(kind) is not str:
            raise RejectedEvent(RejectReason.INVALID_FRAME, f"header op={op!r} t={kind!r}")
        if kind == "#info":
            return Frame(kind, None, name=_text(body, "name"), message=_text(body, "message"))
        seq = body.get("seq")
        if type(seq) is not int or seq < 0:
            raise _shape(f"{kind} without a non-negative seq")
        handler = self._bodies.get(kind)
        if handler is None:  # a type this client does not know: skip it, keep its position
            did = _text(body, "did") or _text(body, "repo") or ""
            marker = Event(did=did, kind=kind.lstrip("#"), time_us=_time_us(body.get("time")),
                           cursor=seq, seq=seq)
            return Frame(kind, seq, (marker,))
        return handler(body, seq)

    # ---- bodies ----

    def _repo(self, body: dict[str, Any], name: str) -> str:
        did = body.get(name)
        if not syntax.is_did(did):
            raise _shape(f"{name} is missing or not a DID")
        return did

    def _commit(self, body: dict[str, Any], seq: int) -> Frame:
        repo = self._repo(body, "repo")
        rev, ops = body.get("rev"), body.get("ops")
        if not syntax.is_tid(rev) or type(ops) is not list:
            raise _shape("#commit lacks a TID rev or an ops list")
        time_us = _time_us(body.get("time"))
        base = Event(did=repo, kind=COMMIT, time_us=time_us, cursor=seq, rev=rev)
        if body.get("tooBig"):
            # Deprecated: the ops' blocks were left out. Only a re-read of the repo gets them.
            return Frame("#commit", seq, (base._replace(kind=SYNC, seq=seq),))
        wanted = []
        for op in ops:
            path = op.get("path") if type(op) is dict else None
            collection, _, rkey = path.partition("/") if type(path) is str else ("", "", "")
            if self._wanted(collection):
                wanted.append((op, collection, rkey))
        if not wanted:
            first = ops[0] if ops and type(ops[0]) is dict else {}
            path = first.get("path")
            collection, _, rkey = path.partition("/") if type(path) is str else ("", "", "")
            marker = base._replace(operation=str(first.get("action", "")),
                                         collection=collection, rkey=rkey)
            return Frame("#commit", seq, (marker,))
        blocks: dict[bytes, bytes] = {}
        events: list[Event] = []
        rejects: list[tuple[RejectedEvent, Event]] = []
        for op, collection, rkey in wanted:
            event = base._replace(operation=str(op.get("action")), collection=collection,
                                        rkey=rkey)
            try:
                if not blocks and event.operation != DELETE:
                    _, blocks = read_car(body.get("blocks") or b"")
                events.append(self._op(event, op, blocks))
            except RejectedEvent as rejected:
                rejects.append((rejected, event))
        return Frame("#commit", seq, tuple(events), tuple(rejects))

    @staticmethod
    def _op(event: Event, op: dict[str, Any], blocks: dict[bytes, bytes]) -> Event:
        if event.operation not in _ACTIONS:
            raise _shape(f"op action {event.operation[:40]!r} is not create|update|delete")
        if not syntax.is_nsid(event.collection) or not syntax.is_rkey(event.rkey):
            raise _shape(f"op path {event.collection[:100]}/{event.rkey[:100]} is not collection/rkey")
        if event.operation == DELETE:
            return event._replace(raw=jetstream_json(event))
        cid = op.get("cid")
        block = blocks.get(cid) if type(cid) is bytes else None
        if type(cid) is not bytes or block is None:
            raise RejectedEvent(RejectReason.INVALID_FRAME,
                                f"{event.operation} of {event.collection}/{event.rkey}: "
                                "record block missing from the commit")
        record = record_json(block)
        if type(record) is not dict:
            raise _shape(f"record of {event.collection}/{event.rkey} is not a map")
        event = event._replace(cid=cid_string(cid), record=record)
        return event._replace(raw=jetstream_json(event))

    def _identity(self, body: dict[str, Any], seq: int) -> Frame:
        did = self._repo(body, "did")
        handle = body.get("handle")
        if handle is not None and not syntax.is_handle(handle):
            raise _shape("#identity handle is not a handle")
        event = Event(did=did, kind=IDENTITY, time_us=_time_us(body.get("time")), cursor=seq,
                      handle=handle, seq=seq)
        return Frame("#identity", seq, (event._replace(raw=jetstream_json(event)),))

    def _account(self, body: dict[str, Any], seq: int) -> Frame:
        did = self._repo(body, "did")
        active, status = body.get("active"), body.get("status")
        if type(active) is not bool:
            raise _shape("#account active is missing or not a boolean")
        if status is not None and (type(status) is not str or len(status) > 64):
            raise _shape("#account status is not a short string")
        event = Event(did=did, kind=ACCOUNT, time_us=_time_us(body.get("time")), cursor=seq,
                      active=active, status=status, seq=seq)
        return Frame("#account", seq, (event._replace(raw=jetstream_json(event)),))

    def _sync(self, body: dict[str, Any], seq: int) -> Frame:
        did = self._repo(body, "did")
        rev = body.get("rev")
        if not syntax.is_tid(rev):
            raise _shape("#sync rev is missing or not a TID")
        event = Event(did=did, kind=SYNC, time_us=_time_us(body.get("time")), cursor=seq, rev=rev,
                      seq=seq)
        return Frame("#sync", seq, (event._replace(raw=jetstream_json(event)),))
