"""API test harness: a real Postgres seeded through the engine, the app over it, a test client.

Tests seed with `seed(frames)` (the real pipeline, tests/helpers.ingest) and call the API with
`client.get(...)`. Tokens come from `keys.token(...)`: service-auth JWTs signed with keys whose
DID documents the in-test resolver serves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client

from api.app import create_app
from api.ratelimit import RateLimiter
from engine.config import Config, load_config
from engine.db import Database
from tests.helpers import ingest

from .keys import KeyResolver

API_ENV = {
    "INSTANCE_DID": "did:web:appview.test",
    "INSTANCE_DOMAIN": "appview.test",
    "PDS_URL": "https://pds.test",
    "CURSOR_SECRET": "test-cursor-secret-0123456789",
    "SKIP_DID_WEB_VERIFICATION": "true",
}


class FakeClock:
    """Monotonic seconds that only move when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def api_config(**env: str) -> Config:
    return load_config(environ={**API_ENV, **env})


@pytest.fixture
def config() -> Config:
    return api_config()


@pytest.fixture
def resolver() -> KeyResolver:
    return KeyResolver()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def client(db: Database, config: Config, resolver: KeyResolver,
                 clock: FakeClock) -> AsyncIterator[Client]:
    app = create_app(config, db, resolver, limiter=RateLimiter(clock=clock))
    async with app.test_app() as test_app:
        yield test_app.test_client()


MakeClient = Callable[..., AbstractAsyncContextManager[Client]]


@pytest.fixture
def make_client(db: Database, resolver: KeyResolver, clock: FakeClock) -> MakeClient:
    """A client of an app built with extra settings: `async with make_client(FOO="1") as c`."""

    @asynccontextmanager
    async def open_client(**env: str) -> AsyncIterator[Client]:
        app = create_app(api_config(**env), db, resolver, limiter=RateLimiter(clock=clock))
        async with app.test_app() as test_app:
            yield test_app.test_client()

    return open_client


async def get_json(client: Client, path: str, *, headers: dict[str, str] | None = None,
                   **params: Any) -> tuple[int, Any]:
    """GET `path` with `params` (None values left out): (status, JSON body)."""
    query = {k: v for k, v in params.items() if v is not None}
    response = await client.get(path, headers=headers, query_string=query or None)
    return response.status_code, await response.get_json()


Seed = Callable[[Sequence[bytes]], Awaitable[Any]]


@pytest.fixture
def seed(writer_db: Database) -> Seed:
    """Ingest Jetstream frames through the real engine pipeline."""

    async def run(frames: Sequence[bytes]) -> Any:
        return await ingest(writer_db, list(frames))

    return run
