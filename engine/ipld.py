"""DAG-CBOR and CAR for the raw firehose and repo exports: blocks by CID, records as JSON values.

libipld decodes DAG-CBOR fast, but hands back CID links and byte strings alike as `bytes`.
Jetstream renders them differently (`{"$link": "bafy…"}` vs `{"$bytes": "<base64>"}`), so we
split CAR files into raw blocks ourselves and tell a link from bytes by its encoding in the
record's own block: a link is CBOR tag 42 over `0x00 + CID bytes`, which plain bytes never are.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any, Final

import libipld

from .errors import RejectedEvent, RejectReason

__all__ = ["RecordTree", "cid_string", "read_car", "record_json", "walk_mst"]

_TAG_42: Final = b"\xd8\x2a"  # CBOR tag 42 (a CID link), as DAG-CBOR always encodes it
_CIDV0_PREFIX: Final = b"\x12\x20"  # sha2-256 multihash, 32 bytes: a bare CIDv0


def cid_string(raw: bytes) -> str:
    """The textual CID (`bafy…`) of a binary CID."""
    return libipld.encode_cid(raw)


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise ValueError("truncated or overlong varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def _cid_end(data: bytes, at: int) -> int:
    """Where the binary CID starting at `at` ends."""
    if data[at:at + 2] == _CIDV0_PREFIX:
        return at + 34
    for _ in range(3):  # version, codec, multihash code
        _, at = _varint(data, at)
    length, at = _varint(data, at)
    return at + length


def read_car(data: bytes) -> tuple[list[bytes], dict[bytes, bytes]]:
    """Split a CAR v1 file into its roots and raw blocks keyed by binary CID.

    Raises:
        RejectedEvent: INVALID_FRAME when the CAR is truncated or malformed.
    """
    try:
        length, at = _varint(data, 0)
        header = libipld.decode_dag_cbor(data[at:at + length])
        at += length
        blocks: dict[bytes, bytes] = {}
        while at < len(data):
            length, at = _varint(data, at)
            end = at + length
            if end > len(data):
                raise ValueError("truncated block")
            cid_end = _cid_end(data, at)
            if cid_end > end:
                raise ValueError("block shorter than its CID")
            blocks[data[at:cid_end]] = data[cid_end:end]
            at = end
        roots = header.get("roots") if type(header) is dict else None
        if type(roots) is not list:
            raise ValueError("header has no roots")
    except (ValueError, IndexError) as exc:
        raise RejectedEvent(RejectReason.INVALID_FRAME, f"CAR: {exc}"[:200]) from None
    return roots, blocks


def _cbor_bytes_head(length: int) -> bytes:
    """The CBOR head of a byte string of `length` (major type 2, shortest form)."""
    if length < 24:
        return bytes((0x40 + length,))
    if length < 0x100:
        return bytes((0x58, length))
    if length < 0x10000:
        return b"\x59" + length.to_bytes(2, "big")
    return b"\x5a" + length.to_bytes(4, "big")


def record_json(block: bytes) -> Any:
    """Decode one DAG-CBOR block into a JSON-compatible value, as Jetstream renders it.

    Links become `{"$link": "bafy…"}` (so a blob is `{"$type": "blob", "ref": {"$link": …},
    "mimeType": …, "size": …}`), byte strings `{"$bytes": "<base64, no padding>"}`.

    Raises:
        RejectedEvent: INVALID_FRAME when the block is not DAG-CBOR.
    """
    try:
        value = libipld.decode_dag_cbor(block)
    except (ValueError, RecursionError) as exc:
        raise RejectedEvent(RejectReason.INVALID_FRAME, f"record: {exc}"[:200]) from None
    has_links = _TAG_42 in block

    def convert(item: Any) -> Any:
        kind = type(item)
        if kind is dict:
            return {key: convert(inner) for key, inner in item.items()}
        if kind is list:
            return [convert(inner) for inner in item]
        if kind is bytes:
            if has_links and _TAG_42 + _cbor_bytes_head(len(item) + 1) + b"\x00" + item in block:
                return {"$link": cid_string(item)}
            return {"$bytes": base64.b64encode(item).decode().rstrip("=")}
        return item

    return convert(value)


class RecordTree:
    """The records of a repository export (CAR of `com.atproto.sync.getRepo`).

    Attributes:
        did, rev: from the signed commit at the CAR's root.
    """

    def __init__(self, car: bytes) -> None:
        roots, self.blocks = read_car(car)
        commit = self._node(roots[0] if roots else b"", "commit")
        did, rev, data = commit.get("did"), commit.get("rev"), commit.get("data")
        if type(did) is not str or type(rev) is not str or type(data) is not bytes:
            raise RejectedEvent(RejectReason.INVALID_FRAME, "commit block lacks did, rev or data")
        self.did: str = did
        self.rev: str = rev
        self._data = data

    def _node(self, cid: bytes, what: str) -> dict[str, Any]:
        block = self.blocks.get(cid)
        if block is None:
            raise RejectedEvent(RejectReason.INVALID_FRAME, f"{what} block missing from the CAR")
        try:
            node = libipld.decode_dag_cbor(block)
        except ValueError as exc:
            raise RejectedEvent(RejectReason.INVALID_FRAME, f"{what}: {exc}"[:200]) from None
        if type(node) is not dict:
            raise RejectedEvent(RejectReason.INVALID_FRAME, f"{what} block is not a map")
        return node

    def entries(self) -> Iterator[tuple[str, bytes]]:
        """Every `(collection/rkey, record CID)` of the repo, in key order."""
        return walk_mst(self._node, self._data)


def walk_mst(node_at: Callable[[bytes, str], dict[str, Any]], root: bytes
             ) -> Iterator[tuple[str, bytes]]:
    """Walk a Merkle Search Tree from `root`: yield (key, value CID) in key order.

    Each node is `{l: left subtree | null, e: [{p, k, v, t}]}`; an entry's key is the first
    `p` bytes of the previous entry's key in the same node followed by `k`, and `t` is the
    subtree of keys between it and the next entry (atproto repository spec). The tree's depth
    is logarithmic in its size, so recursion stays shallow.

    Raises:
        RejectedEvent: INVALID_FRAME for a node that is missing or not an MST node.
    """
    node = node_at(root, "MST node")
    if node.get("l"):
        yield from walk_mst(node_at, node["l"])
    previous = b""
    for entry in node.get("e") or ():
        try:
            key = previous[:entry["p"]] + entry["k"]
            value, subtree = entry["v"], entry.get("t")
            name = key.decode()
        except (KeyError, TypeError, UnicodeDecodeError) as exc:
            raise RejectedEvent(RejectReason.INVALID_FRAME, f"MST entry: {exc!r}"[:200]) from None
        previous = key
        yield name, value
        if subtree:
            yield from walk_mst(node_at, subtree)
