"""A realistic, deterministic Coves event stream written as Jetstream v1 JSONL.

The mix follows what a forum produces: votes ~60 %, comments ~20 %, posts ~8 %, subscriptions
~8 %, and the rest community and actor profiles, blocks, edits and deletes. Popularity is Zipf-
distributed (a few communities and posts get most of the activity), DIDs and TIDs are well
formed, and every record is valid against our lexicons. The same seed gives the same bytes.

    python -m bench.workload --events 200000 --seed 1 --out /tmp/events.jsonl[.zst]

A seed's stream does not depend on how long it is (`generate(n)` is the head of `generate(m)`),
so the lag and overload runs read the head of one file kept between runs (`cached_workload`).
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import itertools
import os
import random
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson
import zstandard

from engine import syntax
from engine.syntax import make_tid

__all__ = ["MIXES", "EventFile", "Workload", "cached_workload", "generate", "main", "write_jsonl"]

# Share of each kind of event; each mix sums to 1.
MIXES: Final = {
    # What a forum produces (issue 8: votes ~60 %, comments ~20 %, posts ~8 %, subscriptions ~8 %,
    # the rest community updates, profiles, blocks, post edits and deletes): the default.
    "coves": (("vote", 0.60), ("comment", 0.20), ("post", 0.08), ("subscription", 0.08),
              ("edit", 0.0125), ("delete", 0.0125), ("block", 0.005), ("actor_profile", 0.005),
              ("community_update", 0.005)),
    # Only the record kinds of the engine-core milestone (profiles and subscriptions): the
    # baseline the full mix is compared with.
    "core": (("subscription", 0.97), ("community_update", 0.03)),
}
VOCABULARY_WORDS: Final = 5000
ZIPF_S: Final = 1.1  # Zipf exponent of community and post popularity
START_TIME_US: Final = 1_780_000_000_000_000  # 2026-05-28, a fixed start for determinism
CID: Final = "bafyreigj3fwnwjuzr35k2kuzmb5dixxczrzjhqkr5srlqplsh6gq3bj3si"
_B32: Final = "abcdefghijklmnopqrstuvwxyz234567"


class _Zipf:
    """Draws indexes 0..n-1 with P(i) ∝ 1/(i+1)^s, for a list that may grow."""

    def __init__(self, rng: random.Random, s: float = ZIPF_S) -> None:
        self.rng, self.s = rng, s
        self.cumulative: list[float] = []

    def grow(self) -> None:
        weight = 1 / (len(self.cumulative) + 1) ** self.s
        self.cumulative.append((self.cumulative[-1] if self.cumulative else 0.0) + weight)

    def draw(self) -> int:
        return bisect.bisect_left(self.cumulative, self.rng.random() * self.cumulative[-1])


@dataclass
class Workload:
    """The world the stream describes, and the state needed to keep it valid."""

    seed: int = 1
    communities: int = 200
    users: int = 5000
    rate: float = 10_000  # events per second of event time (spacing of time_us)
    rng: random.Random = field(init=False)
    time_us: int = START_TIME_US
    clock: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        # Texts draw words from a fixed vocabulary (one `choices` call per text, not one per word:
        # generation ran at ~36 µs per event, too slow for the lag runs' million events).
        self.vocabulary = ["".join(self.rng.choices(string.ascii_lowercase, k=self.rng.randint(2, 9)))
                           for _ in range(VOCABULARY_WORDS)]
        self.community_dids = [self._did("c", i) for i in range(self.communities)]
        self.user_dids = [self._did("u", i) for i in range(self.users)]
        self.community_pick = _Zipf(self.rng)
        for _ in self.community_dids:
            self.community_pick.grow()
        self.posts: list[str] = []
        self.post_pick = _Zipf(self.rng)
        self.comments: dict[str, list[str]] = {}  # post uri -> its comments
        self.votes: list[tuple[str, str]] = []  # (voter, rkey) of live votes
        self.live_posts: dict[str, tuple[str, str, dict[str, Any]]] = {}

    def _did(self, kind: str, n: int) -> str:
        chars = random.Random(f"{self.seed}-{kind}-{n}").choices(_B32, k=24)
        return "did:plc:" + "".join(chars)

    def _next(self) -> tuple[int, str]:
        """Event time and a TID that increases with it (the rev of the event's commit).

        Times are evenly spaced at `rate`, so a replay paced at the same rate sends each event
        at its own time: the lag benchmark measures commit time against it.
        """
        self.time_us += max(1, round(1_000_000 / self.rate))
        self.clock += 1
        return self.time_us, make_tid(self.time_us, self.clock)

    def _commit(self, repo: str, collection: str, rkey: str, record: dict[str, Any] | None,
                operation: str = "create") -> bytes:
        time_us, rev = self._next()
        body: dict[str, Any] = {"rev": rev, "operation": operation, "collection": collection,
                                "rkey": rkey}
        if record is not None:
            body["record"] = {"$type": collection, **record}
            body["cid"] = CID
        return orjson.dumps({"did": repo, "time_us": time_us, "kind": "commit", "commit": body})

    def _created(self) -> str:
        seconds, micros = divmod(self.time_us, 1_000_000)
        import datetime as dt
        stamp = dt.datetime.fromtimestamp(seconds, dt.timezone.utc)
        return stamp.strftime("%Y-%m-%dT%H:%M:%S") + f".{micros // 1000:03d}Z"

    def _text(self, words: int) -> str:
        return " ".join(self.rng.choices(self.vocabulary, k=words))

    def profiles(self) -> Iterator[bytes]:
        for index, did in enumerate(self.community_dids):
            yield self._commit(did, "social.coves.community.profile", "self", {
                "name": f"community{index}", "displayName": f"Community {index}",
                "description": self._text(12), "createdBy": self.rng.choice(self.user_dids),
                "hostedBy": "did:web:coves.social", "visibility": "public",
                "createdAt": self._created()})

    def post(self) -> bytes:
        community = self.community_dids[self.community_pick.draw()]
        rkey = make_tid(self.time_us + 1, self.clock % 1024)
        record = {"community": community, "author": self.rng.choice(self.user_dids),
                  "title": self._text(6).capitalize(), "content": self._text(40),
                  "createdAt": self._created()}
        uri = f"at://{community}/social.coves.community.post/{rkey}"
        self.posts.append(uri)
        self.post_pick.grow()
        self.comments[uri] = []
        self.live_posts[uri] = (community, rkey, record)
        return self._commit(community, "social.coves.community.post", rkey, record)

    def _post(self) -> str:
        # Recent posts are popular: index 0 of the Zipf is the newest post.
        return self.posts[len(self.posts) - 1 - self.post_pick.draw()]

    def comment(self) -> bytes:
        root = self._post()
        siblings = self.comments[root]
        parent = self.rng.choice(siblings) if siblings and self.rng.random() < 0.5 else root
        author = self.rng.choice(self.user_dids)
        rkey = make_tid(self.time_us + 1, self.clock % 1024)
        siblings.append(f"at://{author}/social.coves.community.comment/{rkey}")
        return self._commit(author, "social.coves.community.comment", rkey, {
            "reply": {"root": {"uri": root, "cid": CID}, "parent": {"uri": parent, "cid": CID}},
            "content": self._text(15), "createdAt": self._created()})

    def vote(self) -> bytes:
        post = self._post()
        subject = post
        if self.comments[post] and self.rng.random() < 0.3:
            subject = self.rng.choice(self.comments[post])
        voter = self.rng.choice(self.user_dids)
        rkey = make_tid(self.time_us + 1, self.clock % 1024)
        self.votes.append((voter, rkey))
        direction = "up" if self.rng.random() < 0.8 else "down"
        return self._commit(voter, "social.coves.feed.vote", rkey, {
            "subject": {"uri": subject, "cid": CID}, "direction": direction,
            "createdAt": self._created()})

    def subscription(self) -> bytes:
        return self._commit(self.rng.choice(self.user_dids), "social.coves.community.subscription",
                            make_tid(self.time_us + 1, self.clock % 1024), {
                                "subject": self.community_dids[self.community_pick.draw()],
                                "contentVisibility": self.rng.randint(1, 5),
                                "createdAt": self._created()})

    def edit(self) -> bytes:
        community, rkey, record = self.live_posts[self._post()]
        return self._commit(community, "social.coves.community.post", rkey,
                            {**record, "content": self._text(30)}, operation="update")

    def delete(self) -> bytes:
        if self.votes and self.rng.random() < 0.7:
            voter, rkey = self.votes.pop(self.rng.randrange(len(self.votes)))
            return self._commit(voter, "social.coves.feed.vote", rkey, None, operation="delete")
        uri = self._post()
        community, rkey, _ = self.live_posts[uri]
        return self._commit(community, "social.coves.community.post", rkey, None, operation="delete")

    def block(self) -> bytes:
        return self._commit(self.rng.choice(self.user_dids), "social.coves.community.block",
                            make_tid(self.time_us + 1, self.clock % 1024),
                            {"subject": self.rng.choice(self.community_dids), "createdAt": self._created()})

    def community_update(self) -> bytes:
        index = self.community_pick.draw()
        did = self.community_dids[index]
        return self._commit(did, "social.coves.community.profile", "self", {
            "name": f"community{index}", "displayName": self._text(2).title(),
            "description": self._text(12), "createdBy": self.user_dids[0],
            "hostedBy": "did:web:coves.social", "createdAt": self._created()}, operation="update")

    def actor_profile(self) -> bytes:
        return self._commit(self.rng.choice(self.user_dids), "social.coves.actor.profile", "self",
                            {"displayName": self._text(2), "bio": self._text(10),
                             "createdAt": self._created()})


def generate(events: int, *, seed: int = 1, communities: int = 200, users: int = 5000,
             rate: float = 10_000, mix: str = "coves") -> Iterator[bytes]:
    """`events` Jetstream v1 events (community profiles first, then the mix)."""
    world = Workload(seed, communities, users, rate)
    kinds = [kind for kind, _ in MIXES[mix]]
    cumulative = list(itertools.accumulate(share for _, share in MIXES[mix]))
    produced = 0
    for frame in itertools.islice(world.profiles(), events):
        produced += 1
        yield frame
    for _ in range(min(20, events - produced) if "post" in kinds else 0):  # posts before votes
        produced += 1
        yield world.post()
    while produced < events:
        kind = world.rng.choices(kinds, cum_weights=cumulative)[0]
        produced += 1
        yield getattr(world, kind)()


def write_jsonl(path: Path, frames: Iterator[bytes]) -> int:
    """Write frames one per line (zstd-compressed when the name ends in .zst); return the count."""
    count = 0
    with path.open("wb") as raw:
        compressor = (zstandard.ZstdCompressor(level=3).stream_writer(raw)
                      if path.suffix == ".zst" else None)
        writer = compressor or raw
        for frame in frames:
            writer.write(frame + b"\n")
            count += 1
        if compressor is not None:
            compressor.flush(zstandard.FLUSH_FRAME)
    return count


@dataclass(frozen=True)
class EventFile:
    """The first `events` events of a JSONL file (it may hold more)."""

    path: Path
    events: int


_CACHED_NAME: Final = re.compile(r"(?P<stream>[a-z]+-seed\d+)-(?P<code>[0-9a-f]{12})-(?P<events>\d+)"
                                 r"\.jsonl\.zst")


def _code_fingerprint() -> str:
    """Changes whenever the generator's code (or the TIDs it makes) could change the stream."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(Path(syntax.__file__).read_bytes())
    return digest.hexdigest()[:12]


def cached_workload(directory: Path, events: int, *, mix: str, seed: int) -> EventFile:
    """`generate(events, mix=mix, seed=seed)` as the head of a zstd JSONL file kept in `directory`.

    A kept file of the same stream and code with at least `events` events serves as it is (the
    overload's 6M forum events take ~70 s to generate here, and 0.4 GB kept); otherwise the
    stream is generated and replaces the smaller file. Files made by other code are removed.
    """
    directory.mkdir(parents=True, exist_ok=True)
    code, stream = _code_fingerprint(), f"{mix}-seed{seed}"
    kept = None
    for path in directory.glob("*.jsonl.zst"):
        found = _CACHED_NAME.fullmatch(path.name)
        if found is None or found["code"] != code:
            path.unlink()
        elif found["stream"] == stream and int(found["events"]) >= events:
            kept = path
    if kept is not None:
        return EventFile(kept, events)
    target = directory / f"{stream}-{code}-{events}.jsonl.zst"
    partial = directory / f".partial-{os.getpid()}-{target.name}"  # removed above if left
    write_jsonl(partial, generate(events, mix=mix, seed=seed))
    partial.replace(target)
    for path in directory.glob(f"{stream}-{code}-*.jsonl.zst"):
        if path != target:
            path.unlink()  # a shorter head of the same stream
    return EventFile(target, events)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.workload", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000, help="number of events")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--communities", type=int, default=200)
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--mix", choices=sorted(MIXES), default="coves",
                        help="event mix: coves (the forum) or core (profiles + subscriptions)")
    parser.add_argument("--out", type=Path, required=True, help="output .jsonl or .jsonl.zst")
    args = parser.parse_args(argv)
    count = write_jsonl(args.out, generate(args.events, seed=args.seed, mix=args.mix,
                                           communities=args.communities, users=args.users))
    print(f"wrote {count} events to {args.out}")


if __name__ == "__main__":
    main()
