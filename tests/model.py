"""An independent in-memory model of ingest semantics, and random histories to feed it.

The model is the clean in-order run: each record ends as its last event left it; a community's
subscriber_count is the number of distinct users with a live subscription to it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from engine.db import Database
from tests import factories as f
from tests.helpers import table

COMMUNITIES = [f.did(f"c{i}") for i in range(3)]
USERS = [f.did(f"u{i}") for i in range(3)]
SUB_RKEYS = [f.tid(10_000 + i) for i in range(2)]
OPERATIONS = st.sampled_from(["create", "update", "delete"])


@dataclass(frozen=True)
class Op:
    """One event of the clean history; `rev` increases along the history."""

    kind: str  # "profile" | "subscription"
    repo: str
    rkey: str
    operation: str
    rev: str
    name: str | None = None
    subject: str | None = None
    visibility: int | None = None

    def frame(self) -> bytes:
        if self.kind == "profile":
            return f.profile(self.repo, name=self.name or "n", rev=self.rev, operation=self.operation)
        extra = {} if self.visibility is None else {"contentVisibility": self.visibility}
        return f.subscription(self.repo, self.rkey, self.subject or COMMUNITIES[0], rev=self.rev,
                              operation=self.operation, **extra)


@st.composite
def histories(draw: Any) -> list[Op]:
    """Valid histories: a subscription record keeps its subject (immutable) across versions."""
    subjects = draw(st.lists(st.sampled_from(COMMUNITIES), min_size=6, max_size=6))
    steps = draw(st.lists(st.tuples(
        st.booleans(), st.integers(0, 2), st.integers(0, 1), OPERATIONS,
        st.sampled_from(["alpha", "beta", "gamma"]),
        st.one_of(st.none(), st.integers(1, 5))), min_size=1, max_size=25))
    ops = []
    for position, (is_profile, who, rkey, operation, name, visibility) in enumerate(steps):
        rev = f.tid(position + 1)
        if is_profile:
            ops.append(Op("profile", COMMUNITIES[who], "self", operation, rev, name=name))
        else:
            ops.append(Op("subscription", USERS[who], SUB_RKEYS[rkey], operation, rev,
                          subject=subjects[who * 2 + rkey], visibility=visibility))
    return ops


@st.composite
def deliveries(draw: Any) -> tuple[list[Op], list[list[Op]]]:
    """A history, and that history delivered: duplicated, shuffled, cut into runs of the engine."""
    history = draw(histories())
    extra = draw(st.lists(st.sampled_from(history), max_size=len(history)))
    stream = draw(st.permutations(history + extra))
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=3)))
    runs = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)])]
    return history, [run for run in runs if run]


def model(history: list[Op]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The clean in-order run: each record ends as its last event left it, except that a
    tombstone keeps the immutable subject of the record's live versions."""
    last: dict[tuple[str, str, str], Op] = {}
    subject: dict[tuple[str, str, str], str | None] = {}
    for op in history:
        last[(op.kind, op.repo, op.rkey)] = op
        if op.operation != "delete":
            subject[(op.kind, op.repo, op.rkey)] = op.subject
    communities: dict[str, Any] = {}
    subscriptions: dict[str, Any] = {}
    for (kind, repo, rkey), op in last.items():
        deleted = op.operation == "delete"
        if kind == "profile":
            communities[repo] = {"rev": op.rev, "deleted": deleted,
                                 "name": None if deleted else op.name}
        else:
            subscriptions[f"at://{repo}/{f.SUBSCRIPTION}/{rkey}"] = {
                "rev": op.rev, "deleted": deleted, "subject": subject.get((kind, repo, rkey)),
                "content_visibility": None if deleted else (op.visibility or 3)}
    for community, row in communities.items():
        row["subscriber_count"] = len({uri.split("/")[2] for uri, sub in subscriptions.items()
                                       if not sub["deleted"] and sub["subject"] == community})
    return communities, subscriptions


async def stored(db: Database) -> tuple[dict[str, Any], dict[str, Any]]:
    communities = {r.pop("did"): r for r in await table(
        db, "SELECT did, rev, deleted_at IS NOT NULL AS deleted, name, subscriber_count FROM communities")}
    subscriptions = {r.pop("uri"): r for r in await table(
        db, "SELECT uri, rev, deleted_at IS NOT NULL AS deleted, subject, content_visibility "
            "FROM subscriptions")}
    return communities, subscriptions


def random_history(rng: random.Random, length: int, *, communities: int = 20, users: int = 200
                   ) -> list[Op]:
    """A long random history (for crash and outage tests), same shape as `histories()`."""
    community_dids = [f.did(f"rc{i}") for i in range(communities)]
    user_dids = [f.did(f"ru{i}") for i in range(users)]
    subjects = {(user, rkey): rng.choice(community_dids) for user in user_dids for rkey in SUB_RKEYS}
    ops = []
    for position in range(length):
        rev = f.tid(position + 1)
        if rng.random() < 0.1:
            ops.append(Op("profile", rng.choice(community_dids), "self",
                          rng.choice(["create", "update", "update", "delete"]), rev,
                          name=rng.choice(["alpha", "beta"])))
        else:
            user, rkey = rng.choice(user_dids), SUB_RKEYS[rng.randrange(2)]
            ops.append(Op("subscription", user, rkey,
                          rng.choice(["create", "create", "update", "delete"]), rev,
                          subject=subjects[(user, rkey)], visibility=rng.choice([None, 1, 5])))
    return ops
