"""An independent in-memory model of ingest semantics, and random histories to feed it.

The model is the clean in-order run: each record ends as its last event left it (a delete
leaves a tombstone that keeps the record's immutable references); every counter is recomputed
from the final records the way the product defines it:

* communities.subscriber_count: distinct users with a live subscription to the community;
* communities.post_count: live posts in the community;
* posts.comment_count / comments.reply_count: live comments whose parent is the post / comment;
* up/down/score: per voter, only their newest live vote on the subject counts;
* hot_key: sign(s)·log10(max(|s|,1)) + (created − 2024-01-01)/45000.

Histories are valid: a record's references (a post's author, a comment's parent, a vote's or a
subscription's subject) are fixed per record key, as the lexicons' immutability requires. A
voter's vote records often share a subject, so histories hold several live votes of one voter on
one subject, deletes of the newest (an older one counts again) and re-creates.

`account` ops (a deleted or reactivated account) are for histories checked against a recount
(invariant 4) only: a purge tombstones what the repo holds when it arrives, so its result depends
on the delivery order and `model()` does not take them.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from hypothesis import strategies as st

from engine.db import Database
from tests import factories as f
from tests.helpers import table

COMMUNITIES = [f.did(f"c{i}") for i in range(3)]
USERS = [f.did(f"u{i}") for i in range(3)]
RKEYS = [f.tid(10_000 + i) for i in range(3)]
OPERATIONS = ["create", "update", "delete"]
CREATED = datetime(2026, 1, 1, tzinfo=timezone.utc)
HOT_EPOCH_S = 1704067200
KINDS = ("profile", "subscription", "post", "comment", "vote")


@dataclass(frozen=True)
class Op:
    """One event of the clean history; `rev` increases along the history.

    `ref` is the record's immutable reference (subscription/vote subject, post author, comment
    parent); `root` a comment's post; `value` its mutable payload (name, title, content,
    direction or visibility).
    """

    kind: str
    repo: str
    rkey: str
    operation: str
    rev: str
    ref: str | None = None
    root: str | None = None
    value: Any = None

    @property
    def key(self) -> str:
        if self.kind == "profile":
            return self.repo
        if self.kind == "account":
            return f"account:{self.repo}"
        collection = {"subscription": f.SUBSCRIPTION, "post": f.POST, "comment": f.COMMENT,
                      "vote": f.VOTE}[self.kind]
        return f.uri(self.repo, collection, self.rkey)

    def frame(self) -> bytes:
        common = {"rev": self.rev, "operation": self.operation}
        if self.kind == "profile":
            return f.profile(self.repo, name=self.value or "n", **common)
        if self.kind == "account":  # each delivery is a newer account event (time_us grows)
            deleted = self.value == "deleted"
            return f.account(self.repo, not deleted, "deleted" if deleted else None)
        if self.kind == "subscription":
            extra = {} if self.value is None else {"contentVisibility": self.value}
            return f.subscription(self.repo, self.rkey, self.ref or "", **common, **extra)
        if self.kind == "post":
            return f.post(self.repo, self.rkey, author=self.ref, title=self.value or "t", **common)
        if self.kind == "comment":
            return f.comment(self.repo, self.rkey, root=self.root or "", parent=self.ref,
                             content=self.value or "c", **common)
        return f.vote(self.repo, self.rkey, self.ref or "", self.value or "up", **common)


class Universe:
    """Every record key a history may touch, with its fixed references."""

    def __init__(self, choose: Any, focus: bool = False) -> None:
        """`choose(options)` picks one option (a Hypothesis draw or a Random.choice); `focus`
        puts every vote on one post or one comment (many vote records per voter and subject)."""
        self.posts = [(c, k, choose(USERS)) for c in COMMUNITIES for k in RKEYS[:2]]
        post_uris = [f.uri(c, f.POST, k) for c, k, _ in self.posts]
        comment_uris = [f.uri(u, f.COMMENT, k) for u in USERS for k in RKEYS[:2]]
        self.comments = []
        for user in USERS:
            for rkey in RKEYS[:2]:
                own = f.uri(user, f.COMMENT, rkey)
                root = choose(post_uris)
                parent = choose([root] + [c for c in comment_uris if c != own])
                self.comments.append((user, rkey, root, parent))
        # Half the time a vote record shares the subject of the voter's first one: several
        # vote records of one voter on one subject, where only the newest live one counts.
        subjects = [post_uris[0], comment_uris[0]] if focus else post_uris + comment_uris
        self.votes = []
        for user in USERS:
            first = choose(subjects)
            for rkey in RKEYS:
                self.votes.append((user, rkey, choose([first, choose(subjects)])))
        self.subscriptions = [(u, k, choose(COMMUNITIES)) for u in USERS for k in RKEYS[:2]]

    def op(self, kind: str, index: int, operation: str, rev: str, value: Any) -> Op:
        if kind == "profile":
            return Op(kind, COMMUNITIES[index % 3], "self", operation, rev, value=value)
        if kind == "subscription":
            user, rkey, subject = self.subscriptions[index % len(self.subscriptions)]
            return Op(kind, user, rkey, operation, rev, ref=subject, value=value)
        if kind == "post":
            community, rkey, author = self.posts[index % len(self.posts)]
            return Op(kind, community, rkey, operation, rev, ref=author, value=value)
        if kind == "comment":
            user, rkey, root, parent = self.comments[index % len(self.comments)]
            return Op(kind, user, rkey, operation, rev, ref=parent, root=root, value=value)
        voter, rkey, subject = self.votes[index % len(self.votes)]
        return Op(kind, voter, rkey, operation, rev, ref=subject, value=value)


def _value(kind: str, pick: int) -> Any:
    if kind == "subscription":
        return [None, 1, 5][pick % 3]
    if kind == "vote":
        return ["up", "down"][pick % 2]
    return ["alpha", "beta", "gamma"][pick % 3]


@st.composite
def histories(draw: Any, kinds: tuple[str, ...] = KINDS, max_size: int = 30,
              focus: bool = False, min_size: int = 1) -> list[Op]:
    universe = Universe(lambda options: draw(st.sampled_from(options)), focus)
    steps = draw(st.lists(st.tuples(st.sampled_from(kinds), st.integers(0, 8),
                                    st.sampled_from(OPERATIONS), st.integers(0, 5)),
                          min_size=min_size, max_size=max_size))
    return [universe.op(kind, index, operation, f.tid(position + 1), _value(kind, pick))
            for position, (kind, index, operation, pick) in enumerate(steps)]


def random_history(rng: random.Random, length: int, kinds: tuple[str, ...] = KINDS) -> list[Op]:
    """A long random history (crash and outage tests), same shape as `histories()`."""
    universe = Universe(rng.choice)
    ops = []
    for position in range(length):
        kind = rng.choice(kinds)
        operation = rng.choice(["create", "create", "update", "delete"])
        ops.append(universe.op(kind, rng.randrange(9), operation, f.tid(position + 1),
                               _value(kind, rng.randrange(6))))
    return ops


@st.composite
def deliveries(draw: Any, kinds: tuple[str, ...] = KINDS, focus: bool = False,
               min_size: int = 1) -> tuple[list[Op], list[list[Op]]]:
    """A history, and that history delivered: duplicated, shuffled, cut into runs of the engine."""
    history = draw(histories(kinds, focus=focus, min_size=min_size))
    extra = draw(st.lists(st.sampled_from(history), max_size=len(history)))
    stream = draw(st.permutations(history + extra))
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=3)))
    runs = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)])]
    return history, [run for run in runs if run]


def hot_key(score: int, created: datetime = CREATED) -> float:
    sign = (score > 0) - (score < 0)
    return round(sign * math.log10(max(abs(score), 1)) + (created.timestamp() - HOT_EPOCH_S) / 45000, 7)


@st.composite
def purging_deliveries(draw: Any, kinds: tuple[str, ...] = ("post", "comment", "vote")
                       ) -> list[list[Op]]:
    """`deliveries()` of a history, with account deletions and reactivations of voters,
    commenters and communities dropped in anywhere (for the recount check only)."""
    _history, runs = draw(deliveries(kinds, focus=True, min_size=10))
    accounts = st.builds(lambda repo, value: Op("account", repo, "self", "update", "", value=value),
                         st.sampled_from(USERS + COMMUNITIES), st.sampled_from(["deleted", "active"]))
    out = []
    for run in runs:
        extra = draw(st.lists(st.tuples(st.integers(0, len(run)), accounts), max_size=3))
        run = list(run)
        for at, op in sorted(extra, key=lambda item: -item[0]):
            run.insert(at, op)
        out.append(run)
    return out


def model(history: list[Op]) -> dict[str, dict[str, dict[str, Any]]]:
    """The state of the clean in-order run, as {table: {key: row}}."""
    assert all(op.kind != "account" for op in history), "purges depend on delivery order"
    last: dict[str, Op] = {}
    live_ref: dict[str, Op] = {}
    for op in history:
        last[op.key] = op
        if op.operation != "delete":
            live_ref[op.key] = op
    state: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in (
        "communities", "subscriptions", "posts", "comments", "votes")}
    live = {key: op for key, op in last.items() if op.operation != "delete"}
    for key, op in last.items():
        deleted = op.operation == "delete"
        ref_op = live_ref.get(key)
        value = None if deleted else op.value
        if op.kind == "profile":
            state["communities"][key] = {"rev": op.rev, "deleted": deleted, "name": value or None}
        elif op.kind == "subscription":
            state["subscriptions"][key] = {
                "rev": op.rev, "deleted": deleted, "subject": ref_op.ref if ref_op else None,
                "content_visibility": None if deleted else (op.value or 3)}
        elif op.kind == "post":
            state["posts"][key] = {"rev": op.rev, "deleted": deleted, "title": value,
                                   "community_did": op.repo, "author_did": ref_op.ref if ref_op else None}
        elif op.kind == "comment":
            state["comments"][key] = {"rev": op.rev, "deleted": deleted, "content": value,
                                      "parent_uri": ref_op.ref if ref_op else None,
                                      "root_uri": ref_op.root if ref_op else None}
        else:
            state["votes"][key] = {"rev": op.rev, "deleted": deleted, "direction": value,
                                   "subject_uri": ref_op.ref if ref_op else None}

    def live_of(kind: str) -> list[Op]:
        return [op for op in live.values() if op.kind == kind]

    for did, row in state["communities"].items():
        row["subscriber_count"] = len({op.repo for op in live_of("subscription") if op.ref == did})
        row["post_count"] = sum(1 for op in live_of("post") if op.repo == did)
    newest_votes: dict[tuple[str, str], Op] = {}
    for op in sorted(live_of("vote"), key=lambda o: o.rev):
        newest_votes[(op.repo, op.ref or "")] = op
    for kind, children in (("posts", "comment_count"), ("comments", "reply_count")):
        for uri, row in state[kind].items():
            row[children] = sum(1 for op in live_of("comment") if op.ref == uri)
            up = sum(1 for (_, s), v in newest_votes.items() if s == uri and v.value == "up")
            down = sum(1 for (_, s), v in newest_votes.items() if s == uri and v.value == "down")
            row.update(upvote_count=up, downvote_count=down, score=up - down,
                       hot_key=hot_key(up - down))
    return state


_COLUMNS = {
    "communities": ("did", "rev, deleted_at IS NOT NULL AS deleted, name, subscriber_count, post_count"),
    "subscriptions": ("uri", "rev, deleted_at IS NOT NULL AS deleted, subject, content_visibility"),
    "posts": ("uri", "rev, deleted_at IS NOT NULL AS deleted, title, community_did, author_did, "
                     "comment_count, upvote_count, downvote_count, score, hot_key"),
    "comments": ("uri", "rev, deleted_at IS NOT NULL AS deleted, content, parent_uri, root_uri, "
                        "reply_count, upvote_count, downvote_count, score, hot_key"),
    "votes": ("uri", "rev, deleted_at IS NOT NULL AS deleted, direction, subject_uri"),
}


async def stored(db: Database) -> dict[str, dict[str, dict[str, Any]]]:
    """The database in the model's shape."""
    state: dict[str, dict[str, dict[str, Any]]] = {}
    for name, (key, columns) in _COLUMNS.items():
        rows = await table(db, f"SELECT {key} AS key, {columns} FROM {name}")
        state[name] = {row.pop("key"): row for row in rows}
    return state


def assert_same(got: dict[str, dict[str, dict[str, Any]]],
                want: dict[str, dict[str, dict[str, Any]]]) -> None:
    """Equal, with hot keys compared to 1e-5 (float rounding of Postgres' numeric). A tombstone's
    hot key is not compared: it ranks nothing, and its createdAt is gone."""
    for state in (got, want):
        for rows in state.values():
            for row in rows.values():
                if "hot_key" in row:
                    row["hot_key"] = None if row["deleted"] else round(row["hot_key"], 5)
    assert got == want
