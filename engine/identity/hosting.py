"""hostedBy verification: may this community claim to be hosted by that did:web instance?

A community profile names its host instance (`hostedBy`). The claim holds when (issue 3):
  1. hostedBy is a did:web naming a host (no path);
  2. the community's handle and that host share a registrable domain (eTLD+1 by the Public
     Suffix List): `c-gaming.coves.social` may be hosted by `did:web:coves.social`, not by
     `did:web:evil.example`;
  3. `https://<host>/.well-known/did.json` (safe fetcher: time limit, size cap, public
     addresses only) is a DID document whose `id` is hostedBy and whose `alsoKnownAs` holds
     `at://<host>`.
SKIP_DID_WEB_VERIFICATION=true (development only) accepts every claim unchecked.

Registrable domains come from tldextract's bundled PSL snapshot, never the network
(`suffix_list_urls=()`), with the PSL's private section included — so `alice.github.io` and
`bob.github.io` are different sites. For a TLD the list does not know (`.test`), the PSL's
default rule `*` applies: the last label is the suffix, so `coves.test` is registrable.

The document check (3) is cached per hostedBy: many communities share one host.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
from typing import Final

import tldextract

from .cache import SharedCache
from .errors import DidDocumentInvalid, FetchError
from .fetch import Fetcher
from .ratelimit import TokenBucket
from .resolver import DidDocument, DidWeb, parse_did_web

__all__ = [
    "HOST_CACHE_ENTRIES", "HOST_FETCHES_PER_S", "HOST_INVALID_TTL_S", "HOST_VALID_TTL_S",
    "HostCheck", "HostVerifier", "registrable_domain",
]

# The numbers: remember a valid host a day and an invalid one 5 minutes (a fixed
# did.json is picked up quickly), keep 1000 hosts, and fetch at most 10 documents a second
# so a flood of communities naming random hosts cannot turn us into a scanner.
HOST_CACHE_ENTRIES: Final = 1000
HOST_VALID_TTL_S: Final = 24 * 3600.0
HOST_INVALID_TTL_S: Final = 5 * 60.0
HOST_FETCHES_PER_S: Final = 10.0


@dataclasses.dataclass(frozen=True, slots=True)
class HostCheck:
    """The verdict on one (hostedBy, handle) claim, with a sentence saying why."""

    ok: bool
    detail: str


@functools.cache
def _extractor() -> tldextract.TLDExtract:
    # Offline: no suffix list download, no cache directory; the snapshot in the wheel is used.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None,
                                 include_psl_private_domains=True)


def registrable_domain(host: str) -> str | None:
    """The eTLD+1 of `host` (`c-x.coves.social` → `coves.social`); None for a bare public suffix
    (`co.uk`, `localhost`), an IP address or an empty name."""
    host = host.lower().rstrip(".")
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    labels = host.split(".")
    if not host or not all(labels):
        return None
    suffix = _extractor()(host).suffix
    suffix_labels = len(suffix.split(".")) if suffix else 1  # the PSL's default rule "*"
    if len(labels) <= suffix_labels:
        return None
    return ".".join(labels[-(suffix_labels + 1):])


def _fail(detail: str) -> HostCheck:
    return HostCheck(False, detail)


class HostVerifier:
    """Verify communities' hostedBy claims (see the module docstring).

    Args:
        fetcher: the safe fetcher.
        skip: SKIP_DID_WEB_VERIFICATION (development only).
        rate: shared limit of document fetches.
    """

    def __init__(self, fetcher: Fetcher, *, skip: bool = False,
                 rate: TokenBucket | None = None) -> None:
        self._fetcher = fetcher
        self.skip = skip
        self._rate = rate or TokenBucket(HOST_FETCHES_PER_S)
        self._cache: SharedCache[str, HostCheck] = SharedCache(
            "host", maxsize=HOST_CACHE_ENTRIES,
            ttl_of=lambda check: HOST_VALID_TTL_S if check.ok else HOST_INVALID_TTL_S)

    async def verify(self, hosted_by: str | None, handle: str | None) -> HostCheck:
        """Check one claim. Never raises for remote trouble: the result says what failed."""
        if self.skip:
            return HostCheck(True, "not checked: SKIP_DID_WEB_VERIFICATION=true")
        if not hosted_by:
            return _fail("the profile has no hostedBy")
        try:
            web = parse_did_web(hosted_by)
        except ValueError as exc:
            return _fail(f"hostedBy must be a did:web naming a host: {exc}")
        if web.path:
            return _fail(f"hostedBy {hosted_by} names a path; it must name a host")
        if not handle:
            return _fail("the community's handle is unknown (no handle in the profile and no "
                         "verified handle for its DID)")
        handle_domain, host_domain = registrable_domain(handle), registrable_domain(web.host)
        if handle_domain is None or handle_domain != host_domain:
            return _fail(f"handle {handle} (registrable domain {handle_domain}) is not under "
                         f"{web.host} (registrable domain {host_domain})")
        return await self._cache.get(hosted_by, lambda: self._check_document(hosted_by, web))

    async def _check_document(self, hosted_by: str, web: DidWeb) -> HostCheck:
        await self._rate.acquire()
        try:
            document = DidDocument.parse(hosted_by, await self._fetcher.get_json(web.url))
        except FetchError as exc:
            return _fail(f"cannot fetch the did:web document: {exc}")
        except DidDocumentInvalid as exc:
            return _fail(f"bad did:web document: {exc}")
        alias = f"at://{web.host}"
        if alias not in document.also_known_as:
            return _fail(f"{web.url} does not list {alias} in alsoKnownAs")
        return HostCheck(True, f"{web.url} is {hosted_by} and lists {alias}")
