"""Build the identity machinery from the Config: one fetcher, resolver, handle and host verifier.

`coves run/engine` opens it once (engine/service.py) and hands its parts to the tasks; the
API's service-auth check will take `resolver` from the same place.
"""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import dns.asyncresolver

from ..config import Config
from .fetch import Fetcher, Resolve, open_fetcher, resolve_host
from .handles import HandleVerifier, system_dns_resolver
from .hosting import HostVerifier
from .resolver import DidResolver

__all__ = ["IdentityTools", "open_identity"]


@dataclasses.dataclass(frozen=True, slots=True)
class IdentityTools:
    """The parts, all sharing one fetcher (and so its limits and address rules)."""

    fetcher: Fetcher
    resolver: DidResolver
    handles: HandleVerifier
    hosting: HostVerifier


@asynccontextmanager
async def open_identity(config: Config, *, ssl_context: ssl.SSLContext | None = None,
                        resolve: Resolve = resolve_host,
                        dns_resolver: dns.asyncresolver.Resolver | Literal["system"] | None = "system",
                        ) -> AsyncIterator[IdentityTools]:
    """Open the fetcher (closed on exit) and build the rest on it from `config`.

    Args:
        ssl_context, resolve: trust store and name lookup for the fetcher (tests replace them).
        dns_resolver: for handle TXT lookups; default the system's, None to leave DNS out.
    """
    async with open_fetcher(timeout_s=config.identity_fetch_timeout_s,
                            max_bytes=config.identity_fetch_max_bytes,
                            allow_private=config.identity_allow_private_addresses,
                            ssl_context=ssl_context, resolve=resolve) as fetcher:
        dns = (system_dns_resolver(config.identity_fetch_timeout_s) if isinstance(dns_resolver, str)
               else dns_resolver)
        yield IdentityTools(
            fetcher=fetcher,
            resolver=DidResolver(fetcher, plc_url=config.plc_url, ttl_s=config.did_cache_ttl_s,
                                 failure_ttl_s=config.did_cache_failure_ttl_s),
            handles=HandleVerifier(fetcher, dns_resolver=dns, via_pds=config.handle_verify_via_pds),
            hosting=HostVerifier(fetcher, skip=config.skip_did_web_verification))
