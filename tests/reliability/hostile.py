"""Hostile Jetstream frames drawn with Hypothesis: valid forum events (bench.workload) taken apart.

`HostileStream(seeds, rng).frames(n)` gives n frames. Each starts from a valid event and suffers
zero to three mutations: a field deleted, a field given a value of the wrong type, a
bogus DID, TID, CID, record key or NSID, an unknown kind, a huge string, a deeply nested value,
a NUL or a lone surrogate inside a string, invalid UTF-8 bytes, a truncated or non-object
document, an integer beyond 64 bits. Large parts are drawn as small recipes (a text and a repeat
count, a depth) and built afterwards, so Hypothesis draws little and the frames can be big.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import Any, Final

import orjson
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

__all__ = ["MUTATIONS", "HostileStream", "draw_pool"]

VALID_SHARE: Final = 0.25  # frames left as the valid seed they come from

_PATHS: Final = (
    ("did",), ("time_us",), ("kind",), ("commit",), ("commit", "rev"), ("commit", "operation"),
    ("commit", "collection"), ("commit", "rkey"), ("commit", "cid"), ("commit", "record"),
    ("commit", "record", "$type"), ("commit", "record", "createdAt"),
    ("commit", "record", "subject"), ("commit", "record", "subject", "uri"),
    ("commit", "record", "direction"), ("commit", "record", "community"),
    ("commit", "record", "author"), ("commit", "record", "title"), ("commit", "record", "content"),
    ("commit", "record", "reply"), ("commit", "record", "reply", "parent", "uri"),
    ("commit", "record", "reply", "root", "cid"), ("commit", "record", "name"),
    ("commit", "record", "contentVisibility"), ("commit", "record", "hostedBy"),
    ("commit", "record", "facets"), ("commit", "record", "embed"), ("commit", "record", "labels"),
    ("identity",), ("identity", "handle"), ("account",), ("account", "active"),
    ("account", "status"),
)
_KINDS: Final = ("commit", "identity", "account", "sync", "info", "Commit", "", "commit ", "#commit")
_COLLECTIONS: Final = (
    "social.coves.community.post", "social.coves.community.comment", "social.coves.feed.vote",
    "social.coves.community.profile", "social.coves.community.subscription",
    "social.coves.community.block", "social.coves.actor.profile", "social.coves.aggregator.service",
    "social.coves.aggregator.authorization", "app.bsky.feed.post", "social.coves.unknown.thing")
_BOGUS_DIDS: Final = st.one_of(
    st.text(max_size=40), st.just("did:plc:"), st.just("did:web:"), st.just("did:key:z"),
    st.builds(lambda s: f"did:plc:{s}", st.text(max_size=40)),
    st.builds(lambda s: f"did:web:{s}", st.text(max_size=40)),
    st.builds(lambda n: "did:plc:" + "a" * n, st.integers(0, 3000)),
    st.just("DID:PLC:AAAAAAAAAAAAAAAAAAAAAAAA"), st.just("did:plc:aaaaaaaaaaaaaaaaaaaaaaa\n"))
_BOGUS_TIDS: Final = st.one_of(
    st.text(max_size=20), st.text("234567abcdefghij", min_size=13, max_size=13),
    st.text("01890ABCDEFGHIJKLMNOPQRSTUVWXYZklmnopqrstuvwxyz", min_size=13, max_size=13),
    st.just("zzzzzzzzzzzzz"), st.just("2222222222222"), st.just("3mmwu7vas2c4m\u0000"))
_SCALARS: Final = st.one_of(
    # orjson writes integers within 64 bits; larger ones come as raw text (`raw_number`)
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30),
    st.sampled_from([2**63, 2**63 - 1, -(2**63), 2**64 - 1, -1, 0, 1e308]))
_VALUES: Final = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=10)
_PATH: Final = st.sampled_from(_PATHS)
# Mutations by category, each a small recipe applied by `_apply`; the weight is how often a
# mutation of the category is picked.
MUTATIONS: Final[dict[str, tuple[float, st.SearchStrategy[tuple[Any, ...]]]]] = {
    "missing field": (15, st.tuples(st.just("delete"), _PATH)),
    "wrong type": (20, st.tuples(st.just("set"), _PATH, _VALUES)),
    "bogus DID": (10, st.tuples(st.just("set"), st.sampled_from(
        [("did",), ("commit", "record", "subject"), ("commit", "record", "author"),
         ("commit", "record", "community"), ("commit", "record", "createdBy")]), _BOGUS_DIDS)),
    "bogus TID or rkey": (10, st.tuples(st.just("set"), st.sampled_from(
        [("commit", "rev"), ("commit", "rkey")]), _BOGUS_TIDS)),
    "unknown kind": (5, st.tuples(st.just("set"), st.just(("kind",)),
                                  st.one_of(st.sampled_from(_KINDS), st.text(max_size=10)))),
    "odd collection": (8, st.tuples(st.just("set"), st.just(("commit", "collection")),
                                    st.one_of(st.sampled_from(_COLLECTIONS), st.text(max_size=30)))),
    "bogus CID": (5, st.tuples(st.just("set"), st.just(("commit", "cid")), st.one_of(
        st.text(max_size=60), st.just("bafy"), st.just("Qm" + "1" * 44)))),
    "huge string": (0.7, st.tuples(st.just("huge"), _PATH, st.text(min_size=1, max_size=8),
                                   st.sampled_from([1_000, 10_000, 100_000]))),
    "deep nesting": (2, st.tuples(st.just("deep"), _PATH, st.integers(10, 3000))),
    "NUL in a string": (3, st.tuples(st.just("nul"), _PATH)),
    "lone surrogate": (3, st.tuples(st.just("surrogate"), _PATH)),
    "invalid UTF-8": (5, st.tuples(st.just("bad_utf8"), st.sampled_from(
        [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf"]))),
    "truncated": (5, st.tuples(st.just("truncate"), st.floats(0, 1))),
    "not an object": (3, st.tuples(st.just("not_object"), _VALUES)),
    "number out of range": (3, st.tuples(st.just("raw_number"), st.sampled_from(["time_us", "seq"]),
                                         st.sampled_from(["18446744073709551615",
                                                          "9223372036854775808", "1e400", "-0",
                                                          "00012", "1.5", "-1",
                                                          "99999999999999999999999999"]))),
}
_DEEP_MARK: Final = "\x00deep\x00"
_SURROGATE_MARK: Final = "\x00surrogate\x00"


def _set(event: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node: Any = event
    for key in path[:-1]:
        if not isinstance(node, dict):
            return
        node = node.setdefault(key, {})
    if isinstance(node, dict):
        node[path[-1]] = value


def _delete(event: dict[str, Any], path: tuple[str, ...]) -> None:
    node: Any = event
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(path[-1], None)


def _apply(seed: bytes, mutations: Sequence[tuple[Any, ...]]) -> bytes:
    """Build the frame: JSON-level mutations on the parsed seed, then byte-level ones."""
    event = orjson.loads(seed)
    if not mutations:
        return seed
    deep: list[int] = []
    byte_level: list[tuple[Any, ...]] = []
    for mutation in mutations:
        kind = mutation[0]
        if kind == "delete":
            _delete(event, mutation[1])
        elif kind == "set":
            _set(event, mutation[1], mutation[2])
        elif kind == "huge":
            _set(event, mutation[1], mutation[2] * (mutation[3] // len(mutation[2]) + 1))
        elif kind == "deep":
            _set(event, mutation[1], _DEEP_MARK)
            deep.append(mutation[2])
        elif kind == "nul":
            _set(event, mutation[1], "before\x00after")
        elif kind == "surrogate":
            _set(event, mutation[1], _SURROGATE_MARK)
        elif kind == "not_object":
            event = mutation[1]
        else:
            byte_level.append(mutation)
    frame = orjson.dumps(event)
    for depth in deep:  # orjson will not write it: splice nested arrays in as text
        frame = frame.replace(orjson.dumps(_DEEP_MARK), b"[" * depth + b"1" + b"]" * depth, 1)
    frame = frame.replace(orjson.dumps(_SURROGATE_MARK), b'"x\\ud800y"')
    for mutation in byte_level:
        kind = mutation[0]
        if kind == "bad_utf8":
            at = frame.find(b'"', frame.find(b":") + 1) + 1  # inside the first string value
            frame = frame[:at] + mutation[1] + frame[at:]
        elif kind == "truncate":
            frame = frame[:int(len(frame) * mutation[1])]
        elif kind == "raw_number":
            marker = b'"%s":' % mutation[1].encode()
            at = frame.find(marker)
            if at >= 0:
                start = at + len(marker)
                end = start
                while end < len(frame) and frame[end:end + 1] in b"-0123456789.eE+":
                    end += 1
                frame = frame[:start] + mutation[2].encode() + frame[end:]
    return frame


def draw_pool(strategy: st.SearchStrategy[Any], n: int) -> list[Any]:
    """`n` values of `strategy`, drawn by Hypothesis deterministically (derandomized)."""
    pool: list[Any] = []

    @settings(max_examples=n, derandomize=True, database=None, phases=[Phase.generate],
              deadline=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(value: Any) -> None:
        pool.append(value)

    collect()
    return pool


class HostileStream:
    """Frames from `seeds` with mutations drawn from Hypothesis pools, composed by a seeded RNG.

    Hypothesis draws a few hundred recipes per category (slow per draw, but few); the RNG picks
    a seed and zero to three recipes per frame (fast), so 100k frames take seconds.
    """

    def __init__(self, seeds: Sequence[bytes], rng: random.Random, *, pool_size: int = 300) -> None:
        self.seeds, self.rng = list(seeds), rng
        self.categories = list(MUTATIONS)
        self.weights = [MUTATIONS[name][0] for name in self.categories]
        self.pools = {name: draw_pool(MUTATIONS[name][1], pool_size) for name in self.categories}
        self.used: Counter[str] = Counter()

    def frame(self) -> bytes:
        seed = self.rng.choice(self.seeds)
        if self.rng.random() < VALID_SHARE:
            self.used["(none: valid)"] += 1
            return seed
        picked = self.rng.choices(self.categories, self.weights, k=self.rng.randint(1, 3))
        self.used.update(picked)
        return _apply(seed, [self.rng.choice(self.pools[name]) for name in picked])

    def frames(self, n: int) -> list[bytes]:
        return [self.frame() for _ in range(n)]
