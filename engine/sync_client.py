"""`com.atproto.sync.*` over HTTP for backfill: one client per host, with a request-rate limit,
a concurrency cap and retries with backoff. httpx runs under Trio (through anyio).

Everything backfill asks a PDS or relay goes through `SyncClient`, so the limits hold for the
whole run whatever the number of workers.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, Final

import httpx
import trio

from . import metrics
from .backoff import backoff_delay
from .errors import HostError

__all__ = ["HTTP_TIMEOUT", "RateLimit", "SyncClient"]

LOGGER = logging.getLogger(__name__)

# A getRepo of a big repo (tens of MB) streams for a while: a generous read timeout, a short
# connect timeout so an unreachable host fails fast and is retried.
HTTP_TIMEOUT: Final = httpx.Timeout(60.0, connect=10.0)
# Transient failures (unreachable, 429, 5xx) are retried this many times in all, waiting
# 0.5 s doubling to 30 s: a host restarting within a minute costs no repo.
ATTEMPTS: Final = 6
RETRY_BASE_S: Final = 0.5
RETRY_CAP_S: Final = 30.0
LIST_PAGE: Final = 1000  # listRepos / listReposByCollection page size (the lexicons' maximum)


class RateLimit:
    """At most `per_s` starts per second, evenly spaced (no bursts to be sorry for)."""

    def __init__(self, per_s: float) -> None:
        self.interval_s = 1.0 / per_s
        self._next = -float("inf")

    async def wait(self) -> None:
        now = trio.current_time()
        start = max(now, self._next)
        self._next = start + self.interval_s
        if start > now:
            await trio.sleep_until(start)


class SyncClient:
    """Calls to one PDS or relay.

    Args:
        base_url: `http[s]://host[:port]`.
        http: a shared httpx.AsyncClient (its own timeouts; HTTP_TIMEOUT is the default).
        rate_per_s: requests started per second at most (BACKFILL_RATE).
        concurrency: requests in flight at most (BACKFILL_CONCURRENCY).
    """

    def __init__(self, base_url: str, http: httpx.AsyncClient, *, rate_per_s: float = 10.0,
                 concurrency: int = 5, attempts: int = ATTEMPTS) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = http
        self._rate = RateLimit(rate_per_s)
        self._slots = trio.CapacityLimiter(concurrency)
        self._attempts = attempts

    async def get_repo(self, did: str) -> bytes:
        """The repo as a CAR file (`com.atproto.sync.getRepo`)."""
        response = await self._call("com.atproto.sync.getRepo", {"did": did})
        return response.content

    async def resolve_handle(self, handle: str) -> str:
        """The DID a handle points at, as this host knows it."""
        body = (await self._call("com.atproto.identity.resolveHandle", {"handle": handle})).json()
        did = body.get("did") if type(body) is dict else None
        if type(did) is not str:
            raise HostError("com.atproto.identity.resolveHandle", 502, "BadResponse", "no did")
        return did

    async def list_repos(self) -> AsyncIterator[dict[str, Any]]:
        """Every repo the host has (`{did, head, rev, active?, status?}`), page by page."""
        async for repo in self._pages("com.atproto.sync.listRepos", {}):
            yield repo

    async def list_repos_by_collection(self, collection: str) -> AsyncIterator[dict[str, Any]]:
        """Repos holding records of `collection` (a relay's index; `{did}` each).

        Raises:
            HostError: e.g. 400/404/501 when the host does not offer it (a plain PDS).
        """
        async for repo in self._pages("com.atproto.sync.listReposByCollection",
                                      {"collection": collection}):
            yield repo

    async def _pages(self, method: str, params: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        cursor: str | None = None
        while True:
            page = {**params, "limit": LIST_PAGE, **({"cursor": cursor} if cursor else {})}
            body = (await self._call(method, page)).json()
            repos = body.get("repos") if type(body) is dict else None
            if type(repos) is not list:
                raise HostError(method, 502, "BadResponse", "no repos list")
            for repo in repos:
                if type(repo) is dict and type(repo.get("did")) is str:
                    yield repo
            cursor = body.get("cursor")
            if not repos or type(cursor) is not str or not cursor:
                return

    async def _call(self, method: str, params: dict[str, Any]) -> httpx.Response:
        """GET /xrpc/<method>, within the limits.

        Error handling: transient failures (unreachable, 429, 5xx) are retried with backoff up
        to the attempt limit; the last one, or any other failure, raises HostError.
        """
        attempt = 0
        while True:
            try:
                async with self._slots:
                    await self._rate.wait()
                    return await self._get(method, params)
            except HostError as exc:
                if not exc.transient or attempt + 1 >= self._attempts:
                    metrics.BACKFILL_REQUESTS.labels(method, "error").inc()
                    raise
                delay = backoff_delay(attempt, base_s=RETRY_BASE_S, cap_s=RETRY_CAP_S)
                metrics.BACKFILL_REQUESTS.labels(method, "retry").inc()
                LOGGER.warning("%s failed, retrying in %.1f s: %s", method, delay, exc,
                               extra={"host": self.base_url, "attempt": attempt,
                                      "delay_s": round(delay, 2)})
                attempt += 1
                await trio.sleep(delay)

    async def _get(self, method: str, params: dict[str, Any]) -> httpx.Response:
        try:
            response = await self._http.get(f"{self.base_url}/xrpc/{method}", params=params)
        except httpx.HTTPError as exc:  # connect, read, timeout, protocol: the host, not us
            raise HostError(method, 0, type(exc).__name__, str(exc)[:200]) from exc
        if response.is_success:
            metrics.BACKFILL_REQUESTS.labels(method, "ok").inc()
            return response
        try:
            body = response.json()
        except ValueError:
            body = {}
        body = body if type(body) is dict else {}
        raise HostError(method, response.status_code, body.get("error"),
                        str(body.get("message") or response.text[:200]))
