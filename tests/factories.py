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


POST = "social.coves.community.post"
COMMENT = "social.coves.community.comment"
VOTE = "social.coves.feed.vote"
BLOCK = "social.coves.community.block"
ACTOR_PROFILE = "social.coves.actor.profile"


def uri(repo: str, collection: str, rkey: str) -> str:
    return f"at://{repo}/{collection}/{rkey}"


def post(community: str, rkey: str, *, author: str | None = None, title: str = "hello",
         rev: str | None = None, operation: str = "create", time_us: int | None = None,
         **extra: Any) -> bytes:
    record = {"community": community, "author": author or did("author"), "title": title,
              "createdAt": "2026-01-01T00:00:00Z", **extra}
    return commit(community, POST, rkey, rev=rev, operation=operation, record=record, time_us=time_us)


def comment(author: str, rkey: str, *, root: str, parent: str | None = None, content: str = "hi",
            rev: str | None = None, operation: str = "create", time_us: int | None = None,
            **extra: Any) -> bytes:
    record = {"reply": {"root": {"uri": root, "cid": CID}, "parent": {"uri": parent or root, "cid": CID}},
              "content": content, "createdAt": "2026-01-01T00:00:00Z", **extra}
    return commit(author, COMMENT, rkey, rev=rev, operation=operation, record=record, time_us=time_us)


def vote(voter: str, rkey: str, subject: str, direction: str = "up", *, rev: str | None = None,
         operation: str = "create", time_us: int | None = None) -> bytes:
    record = {"subject": {"uri": subject, "cid": CID}, "direction": direction,
              "createdAt": "2026-01-01T00:00:00Z"}
    return commit(voter, VOTE, rkey, rev=rev, operation=operation, record=record, time_us=time_us)


def block(user: str, rkey: str, subject: str, *, rev: str | None = None,
          operation: str = "create") -> bytes:
    record = {"subject": subject, "createdAt": "2026-01-01T00:00:00Z"}
    return commit(user, BLOCK, rkey, rev=rev, operation=operation, record=record)


def account(repo: str, active: bool, status: str | None = None, *, time_us: int | None = None) -> bytes:
    body: dict[str, Any] = {"did": repo, "seq": 1, "time": "2026-01-01T00:00:00.000Z", "active": active}
    if status:
        body["status"] = status
    return orjson.dumps({"did": repo, "time_us": time_us or BASE_TIME_US + next(_clock),
                         "kind": "account", "account": body})
