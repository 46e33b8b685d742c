"""What the write procedures share: the PDS client, hosted communities' credentials and tokens,
the writer connection for read-after-write rows, and the aggregator budget.

`open_writes` builds it for one API process (it owns the httpx client); api/app.py hands it to
the handlers as `call.api.writes`. `pds_error` turns a PDS failure into the client's answer:
unreachable or breaker open → 503 PdsUnavailable (Retry-After), 5xx → 502 UpstreamFailure.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Final

import httpx

from engine.config import Config
from engine.db import Database

from engine.errors import RejectedEvent
from engine.lexicon import load_default

from .credentials import CommunityTokens, CredentialStore
from .errors import InvalidRequest, NotFound, ServiceUnavailable, UpstreamFailure, XrpcError
from .pds_client import BREAKER_COOLDOWN_S, PdsClient, PdsDown, PdsError, PdsFailed
from .ratelimit import RateLimiter
from .secretbox import SecretBox, load_or_create_dev_key, parse_key
from .xrpc import Call

__all__ = ["Writes", "now_iso", "open_writes", "pds_error", "validate_record", "writes_of"]

# Connecting to a healthy PDS takes milliseconds; a dead host should fail fast even when
# PDS_TIMEOUT_S is long (a large blob upload may need it).
_CONNECT_TIMEOUT_S: Final = 5.0


@dataclasses.dataclass
class Writes:
    """The write path's services (one per API process)."""

    config: Config
    pds: PdsClient
    store: CredentialStore
    tokens: CommunityTokens
    writer: Database
    budgets: RateLimiter  # aggregator posts per community and hour
    handle_domain_cache: str | None = None

    async def handle_domain(self) -> str:
        """COMMUNITY_HANDLE_DOMAIN, else the PDS's first availableUserDomains entry."""
        if self.config.community_handle_domain:
            return self.config.community_handle_domain
        if self.handle_domain_cache is None:
            described = await self.pds.describe_server(self.config.pds_url)
            domains = [d for d in described.get("availableUserDomains", ()) if isinstance(d, str)]
            if not domains:
                raise UpstreamFailure("PDS_URL lists no availableUserDomains: set "
                                      "COMMUNITY_HANDLE_DOMAIN", error="UpstreamFailure")
            self.handle_domain_cache = domains[0].lstrip(".").lower()
        return self.handle_domain_cache


def encryption_key(config: Config) -> bytes:
    """COVES_ENCRYPTION_KEY, or (development) the key file in COVES_DATA_DIR."""
    if config.encryption_key:
        return parse_key(config.encryption_key)
    return load_or_create_dev_key(config.data_dir)


@asynccontextmanager
async def open_writes(config: Config, db: Database, writer: Database, *,
                      clock: Callable[[], float] = time.monotonic,
                      wall_clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
                      key: bytes | None = None) -> AsyncIterator[Writes]:
    """The write path over `db` (reads, credentials) and `writer` (optimistic rows).

    Args:
        clock: monotonic seconds for the breaker cool-down and the aggregator budget.
        wall_clock: now, for token expiry.
        key: the AES key (default: from the config).
    """
    box = SecretBox(key if key is not None else encryption_key(config))
    timeout = httpx.Timeout(config.pds_timeout_s, connect=min(_CONNECT_TIMEOUT_S, config.pds_timeout_s))
    async with httpx.AsyncClient(timeout=timeout) as http:
        pds = PdsClient(http, clock=clock)
        store = CredentialStore(db, box)
        yield Writes(config=config, pds=pds, store=store,
                     tokens=CommunityTokens(store, pds, clock=wall_clock), writer=writer,
                     budgets=RateLimiter(clock=clock))


def pds_error(exc: PdsError) -> XrpcError:
    """The XRPC error a client gets for a PDS that failed us (PdsRefused is the caller's case)."""
    if isinstance(exc, PdsFailed):
        return UpstreamFailure(f"The PDS failed ({exc.method}); nothing was written. Retry later.")
    if isinstance(exc, PdsDown):
        return ServiceUnavailable(f"The PDS is unavailable ({exc.message}); nothing was written. "
                                  "Retry later.", error="PdsUnavailable",
                                  headers={"Retry-After": str(int(BREAKER_COOLDOWN_S))})
    return UpstreamFailure(f"The PDS refused {exc.method}: {exc.message}")


def writes_of(call: Call) -> Writes:
    """The write path of this API process (404 MethodNotImplemented when it has none)."""
    writes: Writes | None = call.api.writes
    if writes is None:
        raise NotFound(f"{call.nsid} is not enabled on this AppView", error="MethodNotImplemented")
    return writes


def now_iso() -> str:
    """Now as a lexicon datetime (UTC, milliseconds, Z)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def validate_record(record: dict[str, Any]) -> None:
    """Refuse (400) a record its own lexicon refuses: the indexer would reject it."""
    try:
        load_default().validate_record(record["$type"], record)
    except RejectedEvent as exc:
        raise InvalidRequest(f"Invalid record: {exc.detail}") from None
