"""Fetch small remote documents (DID documents, handle files) safely, from Trio.

Every URL we fetch comes from data strangers publish (a did:web domain, a handle, a PDS
endpoint), so the fetcher is built for hostile input: https only, a total time limit, a body
cap, at most a few redirects, and no private targets. It resolves each host name itself,
refuses the request when any address is not public, then connects to the checked address (the
URL's host replaced by the IP) while sending the real name as Host header and TLS SNI and
verifying the certificate against it — a DNS answer that changes between check and connect
(rebinding) cannot redirect us to an internal service. Redirects are followed by hand, each hop
checked again.

Error handling: httpx, socket and name-lookup errors are translated here to FetchError
subclasses (errors.py); nothing from httpx reaches callers.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Final

import httpx
import orjson
import trio

from .. import metrics
from .errors import FetchError, FetchFailed, FetchRefused, FetchTimeout, FetchTooLarge

__all__ = [
    "DEFAULT_MAX_BYTES", "DEFAULT_TIMEOUT_S", "MAX_REDIRECTS", "Fetched", "Fetcher", "IPAddress",
    "is_public_address", "open_fetcher", "resolve_host",
]

LOGGER = logging.getLogger(__name__)

# A DID document or handle file is a few hundred bytes to a few KiB; PLC documents with many
# services stay far below 64 KiB. The cap bounds what a hostile host can make us hold.
DEFAULT_MAX_BYTES: Final = 64 * 1024
# The whole fetch — lookup, connect, TLS, redirects, body — must finish in this time. Healthy
# hosts answer in well under a second; a slow one should not hold a verifier slot longer.
DEFAULT_TIMEOUT_S: Final = 5.0
# Enough for http→https and apex→www style moves; more is a loop or a trick.
MAX_REDIRECTS: Final = 3
_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS: Final = {"https": 443, "http": 80}
USER_AGENT: Final = "coves-appview (+https://coves.social)"
_NO_SUCH_NAME: Final = frozenset({socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)})
# IPv6 prefixes that carry an IPv4 address which is where the packet really goes (RFC 6052 NAT64).
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolve = Callable[[str, int], Awaitable[list[IPAddress]]]
AddressPolicy = Callable[[IPAddress], bool]


def is_public_address(address: IPAddress) -> bool:
    """True when `address` is a public unicast address we may connect to.

    Loopback, private, link-local (incl. cloud metadata 169.254.169.254), multicast, reserved,
    unspecified and shared (CGN) ranges are refused; so is every IPv4-mapped address
    (::ffff:a.b.c.d: not global for Python, and no real host publishes one) and an IPv6 address
    that embeds a private IPv4 one (6to4, Teredo, NAT64).
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (
            address.teredo[1] if address.teredo else None)
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and not is_public_address(embedded):
            return False
    return address.is_global and not (address.is_multicast or address.is_reserved
                                      or address.is_link_local or address.is_loopback)


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Resolve `host` with the system resolver (getaddrinfo in a thread); addresses in its order.

    Raises:
        OSError: the name does not resolve.
    """
    infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: dict[IPAddress, None] = {}
    for _family, _type, _proto, _canonname, sockaddr in infos:
        found[ipaddress.ip_address(str(sockaddr[0]).split("%")[0])] = None
    return list(found)


@dataclasses.dataclass(frozen=True, slots=True)
class Fetched:
    """A successful answer: the final URL (after redirects), status, content type and body."""

    url: str
    status: int
    content_type: str
    body: bytes


class Fetcher:
    """GETs small documents under the rules in the module docstring. Use `open_fetcher`.

    Args:
        client: the httpx client (no redirects, no keep-alive, no proxies from the environment).
        timeout_s: time limit of one whole fetch.
        max_bytes: body cap.
        allow_private: TEST ONLY — accept private/loopback targets and plain http.
        resolve: host name → addresses (tests map names to 127.0.0.1).
        address_allowed: which addresses we may connect to (default: `is_public_address`).
    """

    def __init__(self, client: httpx.AsyncClient, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 max_bytes: int = DEFAULT_MAX_BYTES, max_redirects: int = MAX_REDIRECTS,
                 allow_private: bool = False, resolve: Resolve = resolve_host,
                 address_allowed: AddressPolicy | None = None) -> None:
        self._client = client
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self._max_redirects = max_redirects
        self._schemes = ("https", "http") if allow_private else ("https",)
        self._resolve = resolve
        self._allowed: AddressPolicy = address_allowed or (
            (lambda address: True) if allow_private else is_public_address)

    async def get(self, url: str, *, accept: str = "application/json") -> Fetched:
        """GET `url`, following up to MAX_REDIRECTS checked redirects; return a 2xx answer.

        Raises:
            FetchRefused, FetchTimeout, FetchTooLarge, FetchFailed: see errors.py.
        """
        try:
            try:
                with trio.fail_after(self.timeout_s):
                    fetched = await self._follow(url, accept)
            except trio.TooSlowError:
                raise FetchTimeout(url, f"no complete answer within {self.timeout_s:g} s") from None
        except FetchError as exc:
            metrics.IDENTITY_FETCHES.labels(exc.outcome).inc()
            LOGGER.debug("fetch failed", extra={"url": url, "outcome": exc.outcome,
                                                "error": str(exc)})
            raise
        metrics.IDENTITY_FETCHES.labels("ok").inc()
        return fetched

    async def get_json(self, url: str) -> Any:
        """GET a JSON document and parse it.

        Raises:
            FetchFailed: also when the body is not JSON.
        """
        fetched = await self.get(url, accept="application/json")
        try:
            return orjson.loads(fetched.body)
        except orjson.JSONDecodeError as exc:
            raise FetchFailed(url, f"body is not JSON: {str(exc)[:100]}",
                              status=fetched.status) from None

    async def get_text(self, url: str) -> str:
        """GET a text document (UTF-8).

        Raises:
            FetchFailed: also when the body is not UTF-8.
        """
        fetched = await self.get(url, accept="text/plain")
        try:
            return fetched.body.decode()
        except UnicodeDecodeError:
            raise FetchFailed(url, "body is not UTF-8 text", status=fetched.status) from None

    async def _follow(self, url: str, accept: str) -> Fetched:
        try:
            current = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise FetchRefused(url, f"not a valid URL: {exc}") from None
        for _hop in range(self._max_redirects + 1):
            result = await self._get_once(url, current, accept)
            if isinstance(result, Fetched):
                return result
            try:
                current = current.join(result)
            except httpx.InvalidURL as exc:
                raise FetchFailed(url, f"redirect to an invalid URL: {exc}") from None
        raise FetchFailed(url, f"more than {self._max_redirects} redirects")

    async def _checked_addresses(self, origin: str, url: httpx.URL) -> list[IPAddress]:
        """The addresses of `url`'s host, each allowed; refuse the whole host otherwise."""
        if url.scheme not in self._schemes:
            raise FetchRefused(origin, f"{url.scheme or 'no'} scheme in {url}: only https is fetched")
        host = url.raw_host.decode("ascii")
        if not host:
            raise FetchRefused(origin, f"no host in {url}")
        port = url.port or _DEFAULT_PORTS[url.scheme]
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                addresses = await self._resolve(host, port)
            except OSError as exc:
                # "No such name" is an answer; a lookup that could not finish is not.
                missing = isinstance(exc, socket.gaierror) and exc.errno in _NO_SUCH_NAME
                raise FetchFailed(origin, f"cannot resolve {host}: {exc}",
                                  transient=not missing) from None
        if not addresses:
            raise FetchFailed(origin, f"{host} has no address")
        for address in addresses:
            if not self._allowed(address):
                raise FetchRefused(origin, f"{host} resolves to {address}, not a public address")
        return addresses

    async def _get_once(self, origin: str, url: httpx.URL, accept: str) -> Fetched | str:
        """One request to one URL: a Fetched, or the Location of a redirect."""
        addresses = await self._checked_addresses(origin, url)
        host = url.raw_host.decode("ascii")
        default_port = url.port is None or url.port == _DEFAULT_PORTS[url.scheme]
        headers = {"Host": host if default_port else f"{host}:{url.port}", "Accept": accept,
                   # We count raw bytes against the cap; a compressed body could expand past it.
                   "Accept-Encoding": "identity", "User-Agent": USER_AGENT}
        extensions = {"sni_hostname": host} if url.scheme == "https" else {}
        last_error: httpx.HTTPError | None = None
        for address in addresses:
            pinned = url.copy_with(host=str(address))
            try:
                async with self._client.stream("GET", pinned, headers=headers,
                                               extensions=extensions) as response:
                    return await self._read(origin, url, response)
            except httpx.ConnectError as exc:
                last_error = exc  # try the host's next address
            except httpx.TimeoutException:
                raise FetchTimeout(origin, f"{url} timed out") from None
            except httpx.HTTPError as exc:
                raise FetchFailed(origin, f"{url}: {_describe(exc)}") from None
        assert last_error is not None
        raise FetchFailed(origin, f"cannot connect to {host}: {_describe(last_error)}") from None

    async def _read(self, origin: str, url: httpx.URL, response: httpx.Response) -> Fetched | str:
        if response.status_code in _REDIRECT_STATUSES:
            location = response.headers.get("location")
            if not location:
                raise FetchFailed(origin, f"{url}: redirect without Location",
                                  status=response.status_code)
            return str(location)
        if not 200 <= response.status_code < 300:
            raise FetchFailed(origin, f"{url}: HTTP {response.status_code}",
                              status=response.status_code)
        encoding = response.headers.get("content-encoding", "identity").lower()
        if encoding != "identity":
            raise FetchFailed(origin, f"{url}: compressed answer ({encoding}) although we asked "
                                      "for identity")
        announced = response.headers.get("content-length", "")
        if announced.isdigit() and int(announced) > self.max_bytes:
            raise FetchTooLarge(origin, f"{url}: {announced} bytes > {self.max_bytes}")
        body = bytearray()
        async for chunk in response.aiter_raw():
            body += chunk
            if len(body) > self.max_bytes:
                raise FetchTooLarge(origin, f"{url}: more than {self.max_bytes} bytes")
        return Fetched(str(url), response.status_code,
                       response.headers.get("content-type", ""), bytes(body))


def _describe(exc: BaseException) -> str:
    """The error's name and message, or its cause's when it has none (httpx often hasn't)."""
    while not str(exc) and (exc.__cause__ or exc.__context__) is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return f"{type(exc).__name__}: {exc}"[:300]


@asynccontextmanager
async def open_fetcher(*, timeout_s: float = DEFAULT_TIMEOUT_S, max_bytes: int = DEFAULT_MAX_BYTES,
                       allow_private: bool = False, ssl_context: Any = None,
                       resolve: Resolve = resolve_host,
                       address_allowed: AddressPolicy | None = None) -> AsyncIterator[Fetcher]:
    """Open a Fetcher; its HTTP client is closed on exit.

    Args:
        ssl_context: trust store for https (tests pass one trusting their own CA).

    Resource handling: keep-alive is off. Pooled connections are keyed by address, so a
    connection opened (and its certificate checked) for one host name could otherwise be
    reused for another name at the same address. Proxy variables from the environment are
    ignored: a proxy would connect on our behalf to addresses we never checked.
    """
    client = httpx.AsyncClient(
        verify=ssl_context if ssl_context is not None else True, follow_redirects=False,
        trust_env=False, timeout=httpx.Timeout(timeout_s),
        limits=httpx.Limits(max_keepalive_connections=0))
    async with client:
        yield Fetcher(client, timeout_s=timeout_s, max_bytes=max_bytes, allow_private=allow_private,
                      resolve=resolve, address_allowed=address_allowed)
