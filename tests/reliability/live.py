"""A real Hypercorn serving the API over a seeded forum, shared by a test module."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import trio

from tests import factories as f
from tests.api.live import LiveServer
from tests.api.world import new_comment, new_post, vote_frames
from tests.conftest import TEMPLATE_DB, _admin, with_database

COMMUNITY = f.did("fuzz")
HANDLE = "c-fuzz.coves.test"


def forum() -> tuple[list[bytes], dict[str, str]]:
    """A small forum (a community, a post, a thread, votes, a subscription) and its keys."""
    post, post_frame = new_post(COMMUNITY)
    comment, comment_frame = new_comment(f.did("u"), post)
    frames = [f.profile(COMMUNITY, name="fuzz", handle=HANDLE), post_frame, comment_frame,
              new_comment(f.did("v"), post, parent=comment)[1], *vote_frames(post, 3),
              f.subscription(f.did("u"), f.tid(), COMMUNITY)]
    return frames, {"community": COMMUNITY, "handle": HANDLE, "post": post, "comment": comment,
                    "actor": f.did("u")}


@contextmanager
def live_api(pg_admin_url: str, name: str, frames: list[bytes], **env: str) -> Iterator[LiveServer]:
    """A database of its own seeded with `frames`, served by a real Hypercorn."""
    database = f"coves_test_{name}_{os.getpid()}"
    trio.run(_admin, pg_admin_url, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)",
             f"CREATE DATABASE {database} TEMPLATE {TEMPLATE_DB}")
    try:
        with LiveServer(with_database(pg_admin_url, database), frames, **env) as server:
            yield server
    finally:
        trio.run(_admin, pg_admin_url, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
