"""The whole AppView in one test process, over real services: the engine on each PDS's raw
firehose (one writer per PDS), the XRPC API on a real Hypercorn socket on 127.0.0.1 with the
write path, callers authenticated with service-auth JWTs their PDS signs (`getServiceAuth`),
DID documents from the harness's PLC (the test-only identity settings allow its plain-http
loopback address).

    async with open_appview(network, database_url) as app:
        alice = await app.user()                       # an account on the first PDS
        status, out = await app.call(alice, "social.coves.community.create", {...})
        await app.eventually(lambda: ...)              # re-checked after each committed batch
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final

import httpx
import trio

from api.ratelimit import RateLimiter
from api.server import serve_api
from api.writes import Writes, open_writes
from engine.config import Config, load_config
from engine.db import Database, open_database
from engine.identity import open_identity
from engine.pipeline import open_writer_database, run_ingest
from engine.sources.firehose import FirehoseSource
from tests.e2e.test_firehose_e2e import Commits, firehose_url
from tests.pds.harness import Account, PdsClient, PdsNetwork, unique_handle

__all__ = ["INSTANCE_DID", "AppView", "User", "open_appview"]

INSTANCE_DID: Final = "did:web:appview.test"
ENV: Final = {
    "INSTANCE_DID": INSTANCE_DID, "INSTANCE_DOMAIN": "appview.test", "API_HOST": "127.0.0.1",
    "API_PORT": "0", "CURSOR_SECRET": "e2e-cursor-secret-0123456789",
    "COVES_ENCRYPTION_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    # tests only: the PLC and PDS listen on plain-http loopback, handles end in .test, and no
    # did:web of ours is published
    "IDENTITY_ALLOW_PRIVATE_ADDRESSES": "true", "HANDLE_VERIFY_VIA_PDS": "true",
    "SKIP_DID_WEB_VERIFICATION": "true",
}
WAIT_S: Final = 30.0


@dataclasses.dataclass(frozen=True)
class User:
    """An account and the PDS it lives on."""

    account: Account
    pds: PdsClient

    @property
    def did(self) -> str:
        return self.account.did

    async def create(self, collection: str, record: dict[str, Any]) -> tuple[str, str]:
        return await self.pds.create_record(self.account, collection, record)

    async def delete(self, uri: str) -> None:
        _, collection, rkey = uri.removeprefix("at://").split("/")
        await self.pds.delete_record(self.account, collection, rkey)


@dataclasses.dataclass
class AppView:
    """The running AppView and what tests use to drive and observe it."""

    url: str
    http: httpx.AsyncClient
    db: Database
    config: Config
    writes: Writes
    commits: Commits
    pds: list[PdsClient]

    async def user(self, prefix: str = "user", pds: int = 0) -> User:
        return User(await self.pds[pds].create_account(unique_handle(prefix)), self.pds[pds])

    async def users(self, count: int, prefix: str = "user", pds: int = 0) -> list[User]:
        made: list[User] = []

        async def one() -> None:
            made.append(await self.user(prefix, pds))

        async with trio.open_nursery() as nursery:
            for _ in range(count):
                nursery.start_soon(one)
        return made

    async def headers(self, user: User | None, nsid: str) -> dict[str, str]:
        if user is None:
            return {}
        token = await user.pds.get_service_auth(user.account, INSTANCE_DID, nsid)
        return {"Authorization": f"Bearer {token}"}

    async def call(self, user: User | None, nsid: str, body: Any = None, *,
                   http: httpx.AsyncClient | None = None) -> tuple[int, Any]:
        """POST a procedure as `user` (a token from their PDS): (status, JSON)."""
        response = await (http or self.http).post(f"/xrpc/{nsid}", json=body,
                                                  headers=await self.headers(user, nsid))
        return response.status_code, response.json()

    async def get(self, nsid: str, user: User | None = None, *,
                  http: httpx.AsyncClient | None = None, **params: Any) -> tuple[int, Any]:
        """GET a query (as `user` when given): (status, JSON)."""
        query = {k: v for k, v in params.items() if v is not None}
        response = await (http or self.http).get(f"/xrpc/{nsid}", params=query,
                                                 headers=await self.headers(user, nsid))
        return response.status_code, response.json()

    async def eventually(self, check: Callable[[], Awaitable[bool]], timeout_s: float = WAIT_S,
                         what: str = "condition") -> None:
        """Wait until `check()` holds, re-checking after each committed batch (and at least
        every 0.5 s, for conditions that do not come from the engine)."""
        try:
            with trio.fail_after(timeout_s):
                while not await check():
                    with trio.move_on_after(0.5):
                        await self.commits.changed()
        except trio.TooSlowError:
            raise AssertionError(f"{what} did not hold within {timeout_s} s") from None


async def _ingest(url: str, firehose: str, commits: Commits) -> None:
    async with open_writer_database(url) as writer:
        await run_ingest(writer, FirehoseSource(firehose, ("social.coves.*",)), start=0,
                         resume=False, on_commit=commits)


@asynccontextmanager
async def open_appview(network: PdsNetwork, database_url: str, *, db: Database | None = None,
                       pds_url: str | None = None, firehoses: Sequence[str] | None = None,
                       limiter: RateLimiter | None = None, clock: Callable[[], float] | None = None,
                       **env: str) -> AsyncIterator[AppView]:
    """Run engine + API over `database_url` and `network` until the block ends.

    Args:
        pds_url: PDS_URL of the write path (default: the first PDS; a proxy in outage tests).
        firehoses: the firehoses to index (default: every PDS of the network).
        limiter, clock: rate-limit state and monotonic clock of the API (tests move them).
    """
    config = load_config(environ={**ENV, "PDS_URL": pds_url or network.pds_urls[0],
                                  "PLC_URL": network.plc_url, **env})
    commits = Commits()
    extra = {"clock": clock} if clock is not None else {}
    async with _read_pool(database_url, db) as read_db, \
            open_writer_database(database_url) as api_writer, open_identity(config) as identity, \
            open_writes(config, read_db, api_writer, **extra) as writes, \
            trio.open_nursery() as nursery:
        for firehose in firehoses or [firehose_url(u) for u in network.pds_urls]:
            nursery.start_soon(_ingest, database_url, firehose, commits)
        stop = trio.Event()
        urls: Any = await nursery.start(functools.partial(
            serve_api, config, read_db, identity.resolver, writes=writes, limiter=limiter,
            shutdown_trigger=stop.wait))
        clients = [PdsClient(u) for u in network.pds_urls]
        try:
            async with httpx.AsyncClient(base_url=urls[0], timeout=30) as http:
                yield AppView(urls[0], http, read_db, config, writes, commits, clients)
        finally:
            for client in clients:
                await client.aclose()
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def _read_pool(url: str, db: Database | None) -> AsyncIterator[Database]:
    """The test's own pool when it has one, else a new pool on `url`."""
    if db is not None:
        yield db
        return
    async with open_database(url) as opened:
        yield opened
