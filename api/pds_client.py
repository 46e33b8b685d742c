"""The AppView's own calls to a PDS: accounts, sessions, record writes, blob uploads.

Every call goes through `PdsClient._call`, which
  * refuses at once while the "pds" circuit breaker is open (engine/breaker.py), and lets one
    trial call through after BREAKER_COOLDOWN_S (half-open: its outcome closes or reopens it);
  * times out after PDS_TIMEOUT_S;
  * counts `coves_pds_calls_total{method, outcome}` (outcome: ok, client_error, server_error,
    timeout, unreachable, breaker_open — what ops/prometheus/alerts.yml CovesPdsHealthFailing
    reads);
  * translates httpx errors and non-2xx answers into the PdsError tree below. Only failures of
    the PDS itself (unreachable, timeout, 5xx) count against the breaker: a 4xx is the PDS
    answering.

    PdsError
    ├── PdsRefused      the PDS answered 4xx (status, error, message): our request was refused
    └── PdsDown         the PDS could not do it (retry later)
        ├── PdsFailed       it answered 5xx
        └── PdsUnreachable  connection failed, timed out, or the breaker is open
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Final

import httpx
from prometheus_client import Counter

from engine.breaker import Breaker

__all__ = ["BREAKER_COOLDOWN_S", "PDS_CALLS", "PdsClient", "PdsDown", "PdsError", "PdsFailed",
           "PdsRefused", "PdsUnreachable", "Session"]

LOGGER = logging.getLogger(__name__)
PDS_CALLS: Final = Counter(
    "coves_pds_calls_total", "Calls the AppView made to a PDS, by XRPC method and outcome.",
    ["method", "outcome"])
# Five failures in a row open the breaker (engine/breaker.py's default); while open, calls fail
# fast for this long, then one trial call decides. Short enough that a PDS restart (~seconds)
# is noticed soon, long enough that a dead PDS is not hammered by every request.
BREAKER_COOLDOWN_S: Final = 5.0
BREAKER_NAME: Final = "pds"

Json = dict[str, Any]


class PdsError(Exception):
    """A PDS call did not succeed."""

    def __init__(self, method: str, message: str) -> None:
        super().__init__(f"{method}: {message}")
        self.method = method
        self.message = message


class PdsRefused(PdsError):
    """The PDS answered 4xx: `error` is its XRPC error name (e.g. InvalidSwap, HandleNotAvailable)."""

    def __init__(self, method: str, status: int, error: str | None, message: str | None) -> None:
        super().__init__(method, f"HTTP {status} {error or ''}: {message or ''}")
        self.status = status
        self.error = error
        self.detail = message or ""


class PdsDown(PdsError):
    """The PDS could not serve the call; trying later may work."""


class PdsFailed(PdsDown):
    """The PDS answered 5xx."""


class PdsUnreachable(PdsDown):
    """No answer: connection refused, timeout, or the breaker is open (fail fast).

    `maybe_done` is False when the request surely never reached the PDS (no connection, or the
    breaker refused it), True when it may have been carried out with its answer lost.
    """

    def __init__(self, method: str, message: str, *, maybe_done: bool) -> None:
        super().__init__(method, message)
        self.maybe_done = maybe_done


class Session:
    """Tokens of one account's session (createAccount, createSession, refreshSession)."""

    def __init__(self, body: Json) -> None:
        self.did: str = body["did"]
        self.handle: str = body.get("handle", "")
        self.access_jwt: str = body["accessJwt"]
        self.refresh_jwt: str = body["refreshJwt"]


class PdsClient:
    """XRPC calls to PDSes over one httpx client.

    Args:
        http: the client (timeouts set by its owner: PDS_TIMEOUT_S).
        breaker: the "pds" breaker (shared by every call).
        clock: monotonic seconds (tests move it).
    """

    def __init__(self, http: httpx.AsyncClient, *, breaker: Breaker | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._http = http
        self.breaker = breaker or Breaker(BREAKER_NAME)
        self._clock = clock
        self._opened_at = 0.0

    # ---- accounts and sessions ----

    async def describe_server(self, pds: str) -> Json:
        return await self._call(pds, "GET", "com.atproto.server.describeServer")

    async def create_account(self, pds: str, handle: str, email: str, password: str) -> Session:
        body = {"handle": handle, "email": email, "password": password}
        return Session(await self._call(pds, "POST", "com.atproto.server.createAccount", json=body))

    async def create_session(self, pds: str, identifier: str, password: str) -> Session:
        body = {"identifier": identifier, "password": password}
        return Session(await self._call(pds, "POST", "com.atproto.server.createSession", json=body))

    async def refresh_session(self, pds: str, refresh_jwt: str) -> Session:
        return Session(await self._call(pds, "POST", "com.atproto.server.refreshSession",
                                        token=refresh_jwt))

    # ---- records and blobs ----

    async def get_record(self, pds: str, repo: str, collection: str, rkey: str) -> Json:
        """`{uri, cid, value}` of a record. Raises PdsRefused (RecordNotFound) when absent."""
        params = {"repo": repo, "collection": collection, "rkey": rkey}
        return await self._call(pds, "GET", "com.atproto.repo.getRecord", params=params)

    async def create_record(self, pds: str, token: str, repo: str, collection: str,
                            record: Json) -> Json:
        """`{uri, cid, commit: {cid, rev}}` of the created record."""
        body = {"repo": repo, "collection": collection, "record": record, "validate": False}
        return await self._call(pds, "POST", "com.atproto.repo.createRecord", json=body, token=token)

    async def put_record(self, pds: str, token: str, repo: str, collection: str, rkey: str,
                         record: Json, *, swap_record: str | None = None) -> Json:
        """Create or replace; with `swap_record`, only if the record's current CID is that."""
        body: Json = {"repo": repo, "collection": collection, "rkey": rkey, "record": record,
                      "validate": False}
        if swap_record is not None:
            body["swapRecord"] = swap_record
        return await self._call(pds, "POST", "com.atproto.repo.putRecord", json=body, token=token)

    async def delete_record(self, pds: str, token: str, repo: str, collection: str, rkey: str,
                            *, swap_record: str | None = None) -> Json:
        """`{commit: {cid, rev}}`; with `swap_record`, only if the current CID is that."""
        body: Json = {"repo": repo, "collection": collection, "rkey": rkey}
        if swap_record is not None:
            body["swapRecord"] = swap_record
        return await self._call(pds, "POST", "com.atproto.repo.deleteRecord", json=body, token=token)

    async def upload_blob(self, pds: str, token: str, data: bytes, mime: str) -> Json:
        """The blob ref (`{$type: blob, ref: {$link}, mimeType, size}`)."""
        out = await self._call(pds, "POST", "com.atproto.repo.uploadBlob", content=data,
                               headers={"Content-Type": mime}, token=token)
        blob: Json = out["blob"]
        return blob

    # ---- the one place that talks HTTP ----

    def _admit(self, method: str) -> None:
        if not self.breaker.is_open:
            return
        if self._clock() - self._opened_at < BREAKER_COOLDOWN_S:
            PDS_CALLS.labels(method, "breaker_open").inc()
            raise PdsUnreachable(method, "PDS circuit breaker is open", maybe_done=False)
        self.breaker.probe_succeeded()  # half-open: this call is the trial

    def _failed(self) -> None:
        was_open = self.breaker.is_open
        self.breaker.record_failure()
        if self.breaker.is_open and not was_open:
            self._opened_at = self._clock()

    async def _call(self, pds: str, http_method: str, method: str, *,
                    params: dict[str, str] | None = None, json: Json | None = None,
                    content: bytes | None = None, headers: dict[str, str] | None = None,
                    token: str | None = None) -> Json:
        """One XRPC call; see the module docstring for breaker, metrics and errors.

        Error handling: httpx's errors are translated here (PdsUnreachable), never leak.
        """
        self._admit(method)
        headers = dict(headers or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        url = f"{pds.rstrip('/')}/xrpc/{method}"
        try:
            response = await self._http.request(http_method, url, params=params, json=json,
                                                content=content, headers=headers)
        except httpx.TimeoutException as exc:
            PDS_CALLS.labels(method, "timeout").inc()
            self._failed()
            raise PdsUnreachable(method, "PDS did not answer in time",
                                 maybe_done=not isinstance(exc, httpx.ConnectTimeout)) from exc
        except httpx.TransportError as exc:
            PDS_CALLS.labels(method, "unreachable").inc()
            self._failed()
            raise PdsUnreachable(method, f"PDS unreachable ({type(exc).__name__})",
                                 maybe_done=not isinstance(exc, httpx.ConnectError)) from exc
        if response.status_code >= 500:
            PDS_CALLS.labels(method, "server_error").inc()
            self._failed()
            LOGGER.warning("PDS call failed", extra={"method": method, "status": response.status_code})
            raise PdsFailed(method, f"PDS answered HTTP {response.status_code}")
        self.breaker.record_success()
        if response.status_code >= 400:
            PDS_CALLS.labels(method, "client_error").inc()
            body = _json_or_empty(response)
            raise PdsRefused(method, response.status_code, body.get("error"), body.get("message"))
        PDS_CALLS.labels(method, "ok").inc()
        return _json_or_empty(response)


def _json_or_empty(response: httpx.Response) -> Json:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
