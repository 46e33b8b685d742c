"""Handle ↔ DID verification: a DID document's handle counts only if the handle points back.

A DID document's `alsoKnownAs` is the DID's own claim; anyone can claim `bsky.app`. The claim
holds when the handle's domain agrees (atproto.com/specs/handle):

  1. DNS TXT `_atproto.<handle>` = `did=<did>`, or
  2. HTTPS `https://<handle>/.well-known/atproto-did` whose body is the DID.

The first method that names a DID decides (DNS first, as the reference resolvers do): the
same DID verifies, another DID is a mismatch.

DNS goes through dnspython's async resolver, which runs natively under Trio (dnspython ≥ 2.0
picks its Trio backend through sniffio; checked with 2.9.2) — no thread needed. It asks the
system's name servers (/etc/resolv.conf); without any, the DNS method is left out.

3. TEST ONLY (HANDLE_VERIFY_VIA_PDS): the reference PDS in our tests hosts `alice.test`
   handles that exist in no DNS and behind no https. As a last resort we ask the DID's own
   PDS (`com.atproto.identity.resolveHandle`). That proves nothing in production: a PDS
   answers from its own database, so a hostile PDS could claim any domain for its own DIDs.
   config.py refuses the setting when COVES_ENV=production.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Final
from urllib.parse import quote

import dns.asyncresolver
import dns.exception
import dns.resolver

from .. import syntax
from .errors import FetchError
from .fetch import Fetcher

__all__ = ["HandleCheck", "HandleStatus", "HandleVerifier", "system_dns_resolver"]

LOGGER = logging.getLogger(__name__)

# Top-level domains the handle spec says must never be resolved (special-use or internal).
DISALLOWED_TLDS: Final = frozenset({"alt", "arpa", "example", "internal", "invalid", "local",
                                    "localhost", "onion"})
_TXT_PREFIX: Final = "did="


class HandleStatus(enum.StrEnum):
    VERIFIED = "verified"  # a method named this DID
    MISMATCH = "mismatch"  # a method named another DID
    NOT_FOUND = "not_found"  # every method answered: no DID here
    ERROR = "error"  # no method named a DID and some failed (timeout, 5xx): try again later


@dataclasses.dataclass(frozen=True, slots=True)
class HandleCheck:
    """The outcome of `HandleVerifier.verify`; `method` is dns, https or pds when one decided."""

    handle: str
    did: str
    status: HandleStatus
    method: str | None
    detail: str

    @property
    def ok(self) -> bool:
        return self.status is HandleStatus.VERIFIED


@dataclasses.dataclass(frozen=True, slots=True)
class _Answer:
    did: str | None  # the DID the method named, if any
    problem: str | None = None  # why it named none, when there is more to say than "none"
    transient: bool = False  # the problem may pass (timeout, 5xx, network)


def system_dns_resolver(lifetime_s: float) -> dns.asyncresolver.Resolver | None:
    """A resolver using the system's name servers, or None (logged) when there are none."""
    try:
        resolver = dns.asyncresolver.Resolver()
    except dns.resolver.NoResolverConfiguration as exc:
        LOGGER.warning("no DNS resolver configuration; handles are verified over https only",
                       extra={"error": str(exc)})
        return None
    resolver.lifetime = lifetime_s
    return resolver


class HandleVerifier:
    """Check that a handle resolves back to a DID.

    Args:
        fetcher: the safe fetcher (the https and PDS methods).
        dns_resolver: for the TXT method; None leaves DNS out (tests pass one aimed at a local
            DNS server).
        via_pds: TEST ONLY — also ask the DID's own PDS (see the module docstring).
        https_port: port of the well-known method; always 443 but in tests, whose TLS server
            listens on a free port.
    """

    def __init__(self, fetcher: Fetcher, *, dns_resolver: dns.asyncresolver.Resolver | None,
                 via_pds: bool = False, https_port: int = 443) -> None:
        self._fetcher = fetcher
        self._dns = dns_resolver
        self._via_pds = via_pds
        self._port_suffix = "" if https_port == 443 else f":{https_port}"

    async def verify(self, handle: str, did: str, *, pds_endpoint: str | None = None) -> HandleCheck:
        """Does `handle` resolve to `did`? Never raises for network trouble: see HandleStatus.

        Args:
            pds_endpoint: the DID's PDS, used only with the test-only `via_pds`.
        """
        handle = handle.lower()
        if not syntax.is_handle(handle) or handle.rsplit(".", 1)[-1] in DISALLOWED_TLDS:
            return HandleCheck(handle, did, HandleStatus.NOT_FOUND, None,
                               f"{handle[:253]!r} is not a resolvable handle")
        methods: list[tuple[str, Callable[[str], Awaitable[_Answer]]]] = [
            ("dns", self._dns_txt), ("https", self._well_known)]
        if self._via_pds and pds_endpoint:
            methods.append(("pds", functools.partial(self._pds, pds_endpoint=pds_endpoint)))
        problems: list[str] = []
        transient = False
        for name, method in methods:
            answer = await method(handle)
            if answer.did == did:
                return HandleCheck(handle, did, HandleStatus.VERIFIED, name,
                                   f"{name} names {did}")
            if answer.did is not None:
                return HandleCheck(handle, did, HandleStatus.MISMATCH, name,
                                   f"{handle} belongs to {answer.did} by {name}, not {did}")
            problems.append(f"{name}: {answer.problem or 'no DID'}")
            transient = transient or answer.transient
        status = HandleStatus.ERROR if transient else HandleStatus.NOT_FOUND
        return HandleCheck(handle, did, status, None,
                           f"{handle} names no DID ({'; '.join(problems)})"[:500])

    async def _dns_txt(self, handle: str) -> _Answer:
        if self._dns is None:
            return _Answer(None)
        try:
            answer = await self._dns.resolve(f"_atproto.{handle}", "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return _Answer(None)
        except dns.exception.DNSException as exc:  # timeout, SERVFAIL from every server, …
            return _Answer(None, f"{type(exc).__name__}: {exc}"[:200], transient=True)
        found = {value for record in answer
                 for value in [b"".join(record.strings).decode(errors="replace")]
                 if value.startswith(_TXT_PREFIX)}
        if len(found) > 1:
            # The spec: more than one did= record means the handle is not resolvable.
            return _Answer(None, f"{len(found)} did= TXT records")
        if not found:
            return _Answer(None)
        value = found.pop()[len(_TXT_PREFIX):]
        return _Answer(value if syntax.is_did(value) else None)

    async def _well_known(self, handle: str) -> _Answer:
        url = f"https://{handle}{self._port_suffix}/.well-known/atproto-did"
        return await self._ask(url, json=False)

    async def _pds(self, handle: str, pds_endpoint: str) -> _Answer:
        url = f"{pds_endpoint}/xrpc/com.atproto.identity.resolveHandle?handle={quote(handle)}"
        return await self._ask(url, json=True)

    async def _ask(self, url: str, *, json: bool) -> _Answer:
        try:
            if json:
                body = await self._fetcher.get_json(url)
                value = body.get("did") if isinstance(body, dict) else None
            else:
                value = (await self._fetcher.get_text(url)).strip()
        except FetchError as exc:
            # 404, 400 HandleNotFound, no such name, a private target: an answer ("none").
            # A timeout, 5xx or network trouble may pass (exc.transient).
            return _Answer(None, str(exc)[:200], transient=exc.transient)
        return _Answer(value if syntax.is_did(value) else None)
