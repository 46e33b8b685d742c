"""A real Hypercorn serving the API on 127.0.0.1 from a background thread, for sync clients
(schemathesis, httpx) that would block a Trio loop shared with the server."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import trio

from api.server import serve_api
from engine.db import open_bridge, open_database
from tests.helpers import ingest
from engine.pipeline import open_writer_database

from .conftest import api_config
from .keys import KeyResolver

START_TIMEOUT_S = 30.0


class LiveServer:
    """`with LiveServer(url, frames) as live:` → `live.url` serves the API over database `url`,
    seeded first with `frames` through the engine."""

    def __init__(self, database_url: str, frames: Sequence[bytes] = (), **env: str) -> None:
        self.database_url = database_url
        self.frames = list(frames)
        self.config = api_config(API_PORT="0", **env)
        self.resolver = KeyResolver()
        self.url = ""
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: trio.Event | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._thread = threading.Thread(target=self._run, name="live-api", daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S) or self._error is not None:
            raise RuntimeError("the live API did not start") from self._error
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._stop is not None and self._token is not None:
            trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(START_TIMEOUT_S)

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # reported to the test thread by __enter__
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._stop = trio.Event()
        self._token = trio.lowlevel.current_trio_token()
        async with open_bridge():
            if self.frames:
                async with open_writer_database(self.database_url) as writer:
                    await ingest(writer, self.frames)
            async with open_database(self.database_url) as db, trio.open_nursery() as nursery:
                urls: Any = await nursery.start(lambda task_status: serve_api(
                    self.config, db, self.resolver, shutdown_trigger=self._stop.wait,  # type: ignore[union-attr]
                    task_status=task_status))
                self.url = urls[0]
                self._ready.set()
