"""Builders of raw firehose frames, CAR files and repo exports for tests (bytes, as on the wire).

libipld encodes Python bytes as CBOR byte strings; a CID link must be tag 42. `Link` values are
encoded as placeholders and patched into real tag-42 links afterwards.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Sequence
from typing import Any

import libipld

from engine.syntax import make_tid

BASE_TIME_US = 1_790_000_000_000_000
_placeholders = itertools.count(1)


class Link:
    """A CID link inside a value given to `dag_cbor`."""

    def __init__(self, cid: bytes) -> None:
        self.cid = cid


def _bytes_head(length: int) -> bytes:
    if length < 24:
        return bytes((0x40 + length,))
    if length < 0x100:
        return bytes((0x58, length))
    return b"\x59" + length.to_bytes(2, "big")


def dag_cbor(value: Any) -> bytes:
    """DAG-CBOR of `value`, with `Link`s as tag-42 links."""
    patches: dict[bytes, bytes] = {}

    def swap(item: Any) -> Any:
        if isinstance(item, Link):
            marker = b"LINK%08d" % next(_placeholders) + b"\xff" * (len(item.cid) - 12)
            patches[_bytes_head(len(marker)) + marker] = (
                b"\xd8\x2a" + _bytes_head(len(item.cid) + 1) + b"\x00" + item.cid)
            return marker
        if isinstance(item, dict):
            return {k: swap(v) for k, v in item.items()}
        if isinstance(item, list):
            return [swap(v) for v in item]
        return item

    encoded = libipld.encode_dag_cbor(swap(value))
    for marker, link in patches.items():
        encoded = encoded.replace(marker, link)
    return encoded


def cid_of(block: bytes) -> bytes:
    """The CIDv1 (dag-cbor, sha2-256) of a block."""
    return b"\x01\x71\x12\x20" + hashlib.sha256(block).digest()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def car(roots: Sequence[bytes], blocks: Iterable[bytes]) -> bytes:
    """A CAR v1 file holding `blocks` (each keyed by its own CID)."""
    header = dag_cbor({"version": 1, "roots": [Link(r) for r in roots]})
    out = [_varint(len(header)), header]
    for block in blocks:
        cid = cid_of(block)
        out += [_varint(len(cid) + len(block)), cid, block]
    return b"".join(out)


def tid(n: int) -> str:
    return make_tid(BASE_TIME_US + n)


def frame(kind: str, body: dict[str, Any], op: int = 1) -> bytes:
    header: dict[str, Any] = {"op": op} if op == -1 else {"op": op, "t": kind}
    return libipld.encode_dag_cbor(header) + dag_cbor(body)


def commit(seq: int, repo: str, rev: str, ops: Sequence[tuple[str, str, dict[str, Any] | None]],
           *, time: str = "2026-08-01T12:00:00.000Z", **extra: Any) -> bytes:
    """A #commit frame; each op is (action, "collection/rkey", record or None for deletes)."""
    blocks = [dag_cbor(record) for _, _, record in ops if record is not None]
    body_ops: list[dict[str, Any]] = []
    records = iter(blocks)
    for action, path, record in ops:
        body_ops.append({"action": action, "path": path,
                         "cid": Link(cid_of(next(records))) if record is not None else None})
    commit_block = dag_cbor({"did": repo, "rev": rev, "version": 3})
    body = {"seq": seq, "repo": repo, "rev": rev, "since": None, "time": time, "ops": body_ops,
            "blocks": car([cid_of(commit_block)], [commit_block, *blocks]),
            "commit": Link(cid_of(commit_block)), "rebase": False, "tooBig": False, "blobs": [],
            **extra}
    return frame("#commit", body)


def identity(seq: int, did: str, handle: str | None = None) -> bytes:
    body: dict[str, Any] = {"seq": seq, "did": did, "time": "2026-08-01T12:00:00.000Z"}
    if handle:
        body["handle"] = handle
    return frame("#identity", body)


def account(seq: int, did: str, active: bool, status: str | None = None) -> bytes:
    body: dict[str, Any] = {"seq": seq, "did": did, "time": "2026-08-01T12:00:00.000Z",
                            "active": active}
    if status:
        body["status"] = status
    return frame("#account", body)


def sync(seq: int, did: str, rev: str) -> bytes:
    return frame("#sync", {"seq": seq, "did": did, "rev": rev, "blocks": b"",
                           "time": "2026-08-01T12:00:00.000Z"})


def info(name: str, message: str | None = None) -> bytes:
    return frame("#info", {"name": name, "message": message})


def error(name: str, message: str | None = None) -> bytes:
    return frame("", {"error": name, "message": message}, op=-1)


def repo_car(did: str, rev: str, records: dict[str, dict[str, Any]], *, fanout: int = 0) -> bytes:
    """A getRepo export: signed-commit shape, an MST over `records` ("collection/rkey" → record).

    With `fanout` > 0 the keys are spread over a root and child nodes (left subtree and entry
    subtrees) so that walking the tree is exercised beyond one node.
    """
    blocks: list[bytes] = []
    leaves = sorted((key, dag_cbor(value)) for key, value in records.items())
    blocks += [block for _, block in leaves]

    def node(entries: list[tuple[str, bytes]], left: bytes | None = None,
             subtrees: dict[int, bytes] | None = None) -> bytes:
        out, previous = [], b""
        for index, (key, block) in enumerate(entries):
            raw = key.encode()
            prefix = 0
            while prefix < min(len(raw), len(previous)) and raw[prefix] == previous[prefix]:
                prefix += 1
            tree = (subtrees or {}).get(index)
            out.append({"p": prefix, "k": raw[prefix:], "v": Link(cid_of(block)),
                        "t": Link(tree) if tree else None})
            previous = raw
        encoded = dag_cbor({"l": Link(left) if left else None, "e": out})
        blocks.append(encoded)
        return cid_of(encoded)

    if fanout and len(leaves) > 2 * fanout:
        # root holds every (fanout+1)-th key; the keys before the first go to the left subtree,
        # the keys after each root entry to that entry's subtree.
        root_at = list(range(fanout, len(leaves), fanout + 1))
        left = node(leaves[:root_at[0]])
        subtrees = {}
        for position, at in enumerate(root_at):
            end = root_at[position + 1] if position + 1 < len(root_at) else len(leaves)
            if leaves[at + 1:end]:
                subtrees[position] = node(leaves[at + 1:end])
        data = node([leaves[at] for at in root_at], left, subtrees)
    else:
        data = node(leaves)
    commit_block = dag_cbor({"did": did, "rev": rev, "version": 3, "data": Link(data),
                             "prev": None, "sig": b"\x00" * 64})
    return car([cid_of(commit_block)], [commit_block, *blocks])
