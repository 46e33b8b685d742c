"""API test harness: a real Postgres seeded through the engine, the app over it, a test client.

Tests seed with `seed(frames)` (the real pipeline, tests/helpers.ingest) and call the API with
`client.get(...)`. Tokens come from `keys.token(...)`: service-auth JWTs signed with keys whose
DID documents the in-test resolver serves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client

from api.app import create_app
from api.ratelimit import RateLimiter
from engine.config import Config, load_config
from engine.db import Database, open_database
from engine.service import API_SERVER_SETTINGS
from tests.helpers import ingest

from .keys import KeyResolver

API_ENV = {
    "INSTANCE_DID": "did:web:appview.test",
    "INSTANCE_DOMAIN": "appview.test",
    "PDS_URL": "https://pds.test",
    "CURSOR_SECRET": "test-cursor-secret-0123456789",
    "SKIP_DID_WEB_VERIFICATION": "true",
    # Tests read right after they seed; tests/api/test_shared_answers.py turns sharing on.
    "ANONYMOUS_CACHE_TTL_S": "0",
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
async def db(bridge: None, database_url: str) -> AsyncIterator[Database]:
    """The API's read pool as `coves api` opens it: generic plans (engine/service.py)."""
    async with open_database(database_url, server_settings=API_SERVER_SETTINGS) as database:
        yield database


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


# ---- the write path, over the session's real PDS (tests/pds) ----

@dataclasses.dataclass
class WriteWorld:
    """A test client of an app with the write path, and what tests reach into."""

    client: Client
    writes: Any  # api.writes.Writes
    resolver: KeyResolver
    clock: FakeClock
    pds_url: str

    async def call(self, nsid: str, body: Any = None, *, caller: str | None = None,
                   headers: dict[str, str] | None = None, **kwargs: Any) -> tuple[int, Any]:
        """POST a procedure as `caller` (a service-auth token of theirs): (status, JSON)."""
        sent = dict(headers or {})
        if caller is not None:
            sent.update(self.resolver.bearer(caller, nsid))
        if body is not None and "data" not in kwargs:
            kwargs["json"] = body
        response = await self.client.post(f"/xrpc/{nsid}", headers=sent, **kwargs)
        return response.status_code, await response.get_json()


WRITE_ENV = {"COMMUNITY_HANDLE_DOMAIN": "test",
             "COVES_ENCRYPTION_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}


@pytest.fixture
def make_write_world(db: Database, writer_db: Database, resolver: KeyResolver, clock: FakeClock,
                     pds_network: Any) -> Callable[..., AbstractAsyncContextManager[WriteWorld]]:
    """`async with make_write_world(**env) as world`: the API with writes to the session PDS."""
    from api.writes import open_writes

    @asynccontextmanager
    async def open_world(**env: str) -> AsyncIterator[WriteWorld]:
        settings = {"PDS_URL": pds_network.pds_urls[0], **WRITE_ENV, **env}
        pds_url = settings["PDS_URL"]
        config = api_config(**settings)
        async with open_writes(config, db, writer_db, clock=clock) as writes:
            app = create_app(config, db, resolver, limiter=RateLimiter(clock=clock), writes=writes)
            async with app.test_app() as test_app:
                yield WriteWorld(test_app.test_client(), writes, resolver, clock, pds_url)

    return open_world


@pytest.fixture
async def world(make_write_world: Callable[..., AbstractAsyncContextManager[WriteWorld]]
                ) -> AsyncIterator[WriteWorld]:
    async with make_write_world() as opened:
        yield opened
