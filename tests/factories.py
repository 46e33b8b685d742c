"""Builders of Jetstream v1 events for tests (bytes, as they come off the wire)."""

from __future__ import annotations

import itertools
from typing import Any

import orjson

from engine.syntax import make_tid

PROFILE = "social.coves.community.profile"
SUBSCRIPTION = "social.coves.community.subscription"
BASE_TIME_US = 1_780_000_000_000_000
CID = "bafyreigj3fwnwjuzr35k2kuzmb5dixxczrzjhqkr5srlqplsh6gq3bj3si"
_clock = itertools.count(1)


def did(n: int | str) -> str:
    return f"did:plc:{str(n).rjust(24, 'a')}"


def tid(n: int | None = None) -> str:
    return make_tid(BASE_TIME_US + (next(_clock) if n is None else n))


def commit(repo: str, collection: str, rkey: str, *, rev: str | None = None,
           operation: str = "create", record: dict[str, Any] | None = None,
           time_us: int | None = None) -> bytes:
    body: dict[str, Any] = {"rev": rev or tid(), "operation": operation,
                            "collection": collection, "rkey": rkey}
    if operation != "delete":
        body["record"] = {"$type": collection, **(record or {})}
        body["cid"] = CID
    return orjson.dumps({"did": repo, "time_us": time_us or BASE_TIME_US + next(_clock),
                         "kind": "commit", "commit": body})


def profile(community: str, *, name: str = "test", rev: str | None = None,
            operation: str = "create", time_us: int | None = None, **extra: Any) -> bytes:
    record = {"name": name, "createdBy": did("creator"), "hostedBy": "did:web:coves.test",
              "createdAt": "2026-01-01T00:00:00Z", **extra}
    return commit(community, PROFILE, "self", rev=rev, operation=operation, record=record,
                  time_us=time_us)


def subscription(user: str, rkey: str, subject: str, *, rev: str | None = None,
                 operation: str = "create", time_us: int | None = None,
                 **extra: Any) -> bytes:
    record = {"subject": subject, "createdAt": "2026-01-01T00:00:00Z", **extra}
    return commit(user, SUBSCRIPTION, rkey, rev=rev, operation=operation, record=record,
                  time_us=time_us)


def identity(repo: str, handle: str | None = None, *, time_us: int | None = None) -> bytes:
    body: dict[str, Any] = {"did": repo, "seq": 1, "time": "2026-01-01T00:00:00.000Z"}
    if handle:
        body["handle"] = handle
    return orjson.dumps({"did": repo, "time_us": time_us or BASE_TIME_US + next(_clock),
                         "kind": "identity", "identity": body})
