"""Resolve a DID to its DID document: did:plc through the PLC directory, did:web over https.

The API's service-auth check stands on this. A document is accepted only when its `id` is
exactly the DID asked for, fetched through the safe fetcher (https, time limit, size cap,
public addresses only). Results — failures too — are cached (`SharedCache`); the handle
resolver refreshes a DID after each of its identity events. The intended use:

    document = await resolver.resolve(claims["iss"])   # DidResolutionError → 401
    key = document.signing_key                          # None → 401; else verify ES256K/ES256
    # If the signature does not verify, the key may have rotated within the cache TTL: try
    # once more with `await resolver.resolve(iss, fresh=True)` before refusing.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Final
from urllib.parse import unquote

from .. import syntax
from .cache import SharedCache
from .errors import (
    DidDocumentInvalid,
    DidNotFound,
    DidResolutionError,
    FetchError,
    FetchFailed,
)
from .fetch import Fetcher

__all__ = [
    "DEFAULT_FAILURE_TTL_S", "DEFAULT_PLC_URL", "DEFAULT_TTL_S", "DidDocument", "DidResolver",
    "DidWeb", "parse_did_web",
]

DEFAULT_PLC_URL: Final = "https://plc.directory"
# A handle or key change arrives as an identity event, which purges the entry; the TTL only
# bounds how stale a document can get when that event is missed (or in another process).
DEFAULT_TTL_S: Final = 3600.0
# A DID that does not resolve (404, invalid document, private host) is asked again after this.
DEFAULT_FAILURE_TTL_S: Final = 300.0
# Timeouts and 5xx are usually a blip: remember them only long enough to stop a burst of
# requests for one DID from hammering a struggling directory, not to lock its user out.
TRANSIENT_FAILURE_TTL_S: Final = 30.0
# Documents are ~1-3 KiB; 2048 of them is a few MiB (at most 128 MiB at the 64 KiB fetch cap).
DEFAULT_MAX_ENTRIES: Final = 2048
_PLC_RE: Final = re.compile(r"^did:plc:[a-z2-7]{24}$")
_HOST_RE: Final = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
_PDS_SERVICE: Final = "#atproto_pds"
_SIGNING_KEY: Final = "#atproto"


@dataclasses.dataclass(frozen=True, slots=True)
class DidDocument:
    """The parts of a DID document the AppView uses, and the whole document as `raw`.

    Attributes:
        id: the DID (equal to the one resolved).
        also_known_as: the `alsoKnownAs` URIs, in order.
        handle: the first `at://` alias, lower-cased, if it is a well-formed handle. NOT
            verified: only handles.py's check (the handle points back) makes it trustworthy.
        pds_endpoint: the `#atproto_pds` service's URL.
        signing_key: the `#atproto` verification method's publicKeyMultibase (multicodec
            prefix tells the curve: secp256k1 or P-256).
    """

    id: str
    also_known_as: tuple[str, ...]
    handle: str | None
    pds_endpoint: str | None
    signing_key: str | None
    raw: dict[str, Any] = dataclasses.field(repr=False, compare=False)

    @classmethod
    def parse(cls, did: str, data: Any) -> DidDocument:
        """Check `data` is a DID document for `did` and pick out its parts.

        Raises:
            DidDocumentInvalid: not an object, `id` differs from `did`, or a field of the wrong type.
        """
        if not isinstance(data, dict):
            raise DidDocumentInvalid(did, f"document is a JSON {type(data).__name__}, not an object")
        if data.get("id") != did:
            raise DidDocumentInvalid(did, f"document id {str(data.get('id'))[:200]!r} is not the DID")
        aliases = _list(did, data, "alsoKnownAs")
        if not all(isinstance(alias, str) for alias in aliases):
            raise DidDocumentInvalid(did, "alsoKnownAs holds a non-string")
        handle = next((alias[5:].lower() for alias in aliases if alias.startswith("at://")), None)
        return cls(id=did, also_known_as=tuple(aliases),
                   handle=handle if syntax.is_handle(handle) else None,
                   pds_endpoint=_pds_endpoint(did, _list(did, data, "service")),
                   signing_key=_signing_key(did, _list(did, data, "verificationMethod")),
                   raw=data)


def _list(did: str, data: dict[str, Any], name: str) -> list[Any]:
    value = data.get(name, [])
    if not isinstance(value, list):
        raise DidDocumentInvalid(did, f"{name} is a {type(value).__name__}, not a list")
    return value


def _entry_named(did: str, entries: list[Any], fragment: str) -> dict[str, Any] | None:
    # Entry ids are relative ("#atproto") or absolute ("did:plc:…#atproto"); others are skipped.
    for entry in entries:
        if isinstance(entry, dict) and entry.get("id") in (fragment, did + fragment):
            return entry
    return None


def _pds_endpoint(did: str, services: list[Any]) -> str | None:
    entry = _entry_named(did, services, _PDS_SERVICE)
    endpoint = entry.get("serviceEndpoint") if entry else None
    if isinstance(endpoint, str) and endpoint.startswith(("https://", "http://")):
        return endpoint.rstrip("/")
    return None


def _signing_key(did: str, methods: list[Any]) -> str | None:
    entry = _entry_named(did, methods, _SIGNING_KEY)
    key = entry.get("publicKeyMultibase") if entry else None
    if not (isinstance(key, str) and key):
        return None
    kind = entry.get("type") if entry else None
    codec = _LEGACY_KEY_TYPES.get(kind) if isinstance(kind, str) else None
    return key if codec is None else _multikey_of_legacy(key, codec)


# The legacy form of the #atproto key (atproto DID spec, "Legacy Representation"; still served by
# older PLC software, e.g. @did-plc/server 0.0.1): the type names the curve and
# publicKeyMultibase is base58btc of the bare key bytes — no multicodec, the point compressed or
# not. We turn it into the current Multikey form (multicodec varint + compressed point), so
# everything downstream reads one form.
_LEGACY_KEY_TYPES: Final = {"EcdsaSecp256k1VerificationKey2019": b"\xe7\x01",
                            "EcdsaSecp256r1VerificationKey2019": b"\x80\x24"}
_B58: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _multikey_of_legacy(value: str, codec: bytes) -> str | None:
    if not value.startswith("z") or any(char not in _B58 for char in value[1:]):
        return None
    number = 0
    for char in value[1:]:
        number = number * 58 + _B58.index(char)
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    if len(raw) == 65 and raw[0] == 4:  # uncompressed: 04 | x | y → (02|03 by y's parity) | x
        raw = bytes([2 + (raw[64] & 1)]) + raw[1:33]
    if len(raw) != 33 or raw[0] not in (2, 3):
        return None
    number = int.from_bytes(codec + raw, "big")
    chars = []
    while number:
        number, remainder = divmod(number, 58)
        chars.append(_B58[remainder])
    return "z" + "".join(reversed(chars))


@dataclasses.dataclass(frozen=True, slots=True)
class DidWeb:
    """A did:web split into host, optional port and path segments."""

    host: str
    port: int | None
    path: tuple[str, ...]

    @property
    def url(self) -> str:
        """Where its document lives: /.well-known/did.json, or /<path>/did.json."""
        netloc = self.host if self.port is None else f"{self.host}:{self.port}"
        suffix = "/".join(self.path) + "/did.json" if self.path else ".well-known/did.json"
        return f"https://{netloc}/{suffix}"


def parse_did_web(did: str) -> DidWeb:
    """Split `did:web:host%3Aport:seg:seg` (the did:web spec's encoding).

    Raises:
        ValueError: not a did:web, or its host, port or path is malformed.
    """
    if not did.startswith("did:web:") or not syntax.is_did(did):
        raise ValueError(f"{did[:200]!r} is not a did:web")
    first, *segments = did[len("did:web:"):].split(":")
    host, _, port_text = unquote(first).lower().partition(":")
    if not _HOST_RE.match(host) or host.replace(".", "").isdigit():
        raise ValueError(f"did:web host {host[:100]!r} is not a domain name")
    if port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536):
        raise ValueError(f"did:web port {port_text[:10]!r} is not a port")
    path = tuple(unquote(segment) for segment in segments)
    if any(not part or part in (".", "..") or "/" in part for part in path):
        raise ValueError(f"did:web path of {did[:200]!r} is malformed")
    return DidWeb(host, int(port_text) if port_text else None, path)


@dataclasses.dataclass(frozen=True, slots=True)
class _Failure:
    """A cached failed resolution (the negative entry)."""

    error: type[DidResolutionError]
    message: str
    ttl_s: float


class DidResolver:
    """Resolve DIDs to DidDocuments, with a cache shared by every caller of this resolver.

    Args:
        fetcher: the safe fetcher.
        plc_url: the PLC directory (PLC_URL).
        ttl_s: how long a found document is reused (DID_CACHE_TTL_S).
        failure_ttl_s: how long a definite failure is remembered (DID_CACHE_FAILURE_TTL_S).
    """

    def __init__(self, fetcher: Fetcher, *, plc_url: str = DEFAULT_PLC_URL,
                 ttl_s: float = DEFAULT_TTL_S, failure_ttl_s: float = DEFAULT_FAILURE_TTL_S,
                 max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._fetcher = fetcher
        self.plc_url = plc_url.rstrip("/")
        self._ttl_s = ttl_s
        self._failure_ttl_s = failure_ttl_s
        self._cache: SharedCache[str, DidDocument | _Failure] = SharedCache(
            "did", maxsize=max_entries, ttl_of=self._ttl_of)

    def _ttl_of(self, value: DidDocument | _Failure) -> float:
        return value.ttl_s if isinstance(value, _Failure) else self._ttl_s

    def document_url(self, did: str) -> str:
        """Where the document of `did` is fetched from.

        Raises:
            DidResolutionError: the DID is malformed or of a method we do not resolve.
        """
        if _PLC_RE.match(did):
            return f"{self.plc_url}/{did}"
        if did.startswith("did:web:"):
            try:
                return parse_did_web(did).url
            except ValueError as exc:
                raise DidResolutionError(did, str(exc)) from None
        raise DidResolutionError(did[:200], "not a did:plc or did:web")

    async def resolve(self, did: str, *, fresh: bool = False) -> DidDocument:
        """The DID document of `did`, from the cache or fetched.

        Concurrent calls for one DID share one fetch. `fresh=True` skips the cache (and
        refreshes it with what it fetches).

        Raises:
            DidNotFound: the directory or host says there is no such DID.
            DidDocumentInvalid: the document is malformed or its `id` is another DID.
            DidResolutionError: the fetch failed (timeout, network, refused, too large, …).
        """
        url = self.document_url(did)
        found = await self._cache.get(did, lambda: self._fetch(did, url), fresh=fresh)
        if isinstance(found, _Failure):
            raise found.error(did, found.message)
        return found

    def purge(self, did: str) -> None:
        """Forget what we know of `did` (call on its identity events)."""
        self._cache.purge(did)

    async def _fetch(self, did: str, url: str) -> DidDocument | _Failure:
        """Fetch and parse; a failure is returned (to be cached), not raised."""
        failure_ttl = self._failure_ttl_s
        transient_ttl = min(failure_ttl, TRANSIENT_FAILURE_TTL_S)
        try:
            return DidDocument.parse(did, await self._fetcher.get_json(url))
        except FetchFailed as exc:
            if exc.status in (404, 410):
                return _Failure(DidNotFound, f"not found ({exc})", failure_ttl)
            return _Failure(DidResolutionError, str(exc), transient_ttl if exc.transient else failure_ttl)
        except FetchError as exc:
            return _Failure(DidResolutionError, str(exc), transient_ttl if exc.transient else failure_ttl)
        except DidDocumentInvalid as exc:
            return _Failure(DidDocumentInvalid, str(exc).removeprefix(f"{did}: "), failure_ttl)
