"""Small Coves worlds for API tests, as Jetstream frames for the real ingest pipeline."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from tests import factories as f

_voters = itertools.count(1)


def rkey_of(uri: str) -> str:
    return uri.rsplit("/", 1)[1]


def post_uri(community: str) -> str:
    return f.uri(community, f.POST, f.tid())


def new_post(community: str, *, author: str | None = None, title: str = "hello",
             **extra: Any) -> tuple[str, bytes]:
    """(uri, frame) of a new post in `community`."""
    uri = post_uri(community)
    return uri, f.post(community, rkey_of(uri), author=author, title=title, **extra)


def new_comment(author: str, post: str, *, parent: str | None = None, content: str = "hi",
                **extra: Any) -> tuple[str, bytes]:
    """(uri, frame) of a new comment by `author` under `post` (replying to `parent`)."""
    uri = f.uri(author, f.COMMENT, f.tid())
    return uri, f.comment(author, rkey_of(uri), root=post, parent=parent, content=content, **extra)


def votes(subject: str, score: int) -> list[tuple[str, bytes]]:
    """(vote uri, frame) of |score| fresh voters voting up (score > 0) or down on `subject`."""
    direction = "up" if score > 0 else "down"
    out = []
    for _ in range(abs(score)):
        voter = f.did(f"voter{next(_voters)}")
        uri = f.uri(voter, f.VOTE, f.tid())
        out.append((uri, f.vote(voter, rkey_of(uri), subject, direction)))
    return out


def vote_frames(subject: str, score: int) -> list[bytes]:
    return [frame for _uri, frame in votes(subject, score)]


def ago(**delta: float) -> str:
    """A createdAt this long before now (feeds' `top` windows look back from the real now)."""
    when = datetime.now(UTC) - timedelta(**delta)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
