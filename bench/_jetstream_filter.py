"""Jetstream v1 subscribe options: parse the query and `options_update`, and match events.

Used by `bench/emulator.py`. The rules follow bluesky-social/jetstream `pkg/server/server.go` and
`subscriber.go` (v1): a `wantedCollections` entry ending in `.*` is a prefix, anything else must be
an NSID; DIDs must be DIDs; more than 100 collections or 10,000 DIDs is a bad request; an empty
list means "no filter"; identity and account events have no collection and pass the collection
filter; unknown parameters are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from engine.syntax import is_did, is_nsid

__all__ = [
    "BadRequest", "Filter", "SubscribeQuery", "parse_filter", "parse_options_update",
    "parse_subscribe",
]

SUBSCRIBE_PATH: Final = "/subscribe"
# Jetstream v1 refuses larger subscriptions with HTTP 400 (parseSubscriberOptions).
MAX_WANTED_COLLECTIONS: Final = 100
MAX_WANTED_DIDS: Final = 10_000


class BadRequest(ValueError):
    """The subscribe request or an options update is invalid (Jetstream answers HTTP 400)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Filter:
    """Which events a subscriber wants; empty sets mean "everything"."""

    collections: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    dids: frozenset[str] = frozenset()

    def wants(self, did: str, collection: str | None) -> bool:
        """Return whether an event of `did` in `collection` (None: identity/account) passes."""
        if self.dids and did not in self.dids:
            return False
        if collection is None or not (self.collections or self.prefixes):
            return True
        return collection in self.collections or collection.startswith(self.prefixes)


@dataclass(frozen=True, slots=True)
class SubscribeQuery:
    """A parsed `/subscribe` request."""

    filter: Filter
    cursor: int | None
    compress: bool
    require_hello: bool
    # What `JetstreamEmulator.stats.last_query` reports.
    params: dict[str, Any] = field(default_factory=dict)


def parse_filter(collections: Sequence[str], dids: Sequence[str]) -> Filter:
    """Build a Filter from `wantedCollections` and `wantedDids` values.

    Raises:
        BadRequest: an entry is not an NSID, an `nsid-prefix.*` or a DID, or a list is too long.
    """
    exact: set[str] = set()
    prefixes: list[str] = []
    for wanted in collections:
        if wanted.endswith(".*") and "*" not in wanted[:-2] and wanted[:-2]:
            prefixes.append(wanted[:-1])  # keep the dot: "a.b.*" matches "a.b.c", not "a.bc"
        elif is_nsid(wanted):
            exact.add(wanted)
        else:
            raise BadRequest(f"invalid collection: {wanted}")
    if len(exact) + len(prefixes) > MAX_WANTED_COLLECTIONS:
        raise BadRequest("too many wanted collections")
    for did in dids:
        if not is_did(did):
            raise BadRequest(f"invalid did: {did}")
    if len(set(dids)) > MAX_WANTED_DIDS:
        raise BadRequest("too many wanted DIDs")
    return Filter(frozenset(exact), tuple(sorted(prefixes, key=len)), frozenset(dids))


def parse_subscribe(target: str, headers: Sequence[tuple[bytes, bytes]]) -> SubscribeQuery:
    """Parse a handshake's request target and headers.

    Raises:
        BadRequest: wrong path (status 404), bad cursor, bad filter.
    """
    url = urlsplit(target)
    if url.path != SUBSCRIBE_PATH:
        raise BadRequest(f"no such path: {url.path}", status=404)
    query = parse_qs(url.query)
    collections = query.get("wantedCollections", [])
    dids = query.get("wantedDids", [])
    cursor: int | None = None
    if raw_cursor := _first(query, "cursor"):
        try:
            cursor = int(raw_cursor)
        except ValueError:
            raise BadRequest(f"invalid cursor: {raw_cursor}") from None
    encoding = b"".join(value for name, value in headers if name.lower() == b"socket-encoding")
    compress = _first(query, "compress") == "true" or b"zstd" in encoding
    params = {"wantedCollections": collections, "wantedDids": dids, "cursor": cursor,
              "compress": compress}
    return SubscribeQuery(parse_filter(collections, dids), cursor, compress,
                          _first(query, "requireHello") == "true", params)


def parse_options_update(message: Mapping[str, Any]) -> Filter | None:
    """Read a client message; a Filter for `options_update`, None for other types (ignored).

    Raises:
        BadRequest: a malformed `options_update` (Jetstream then closes the connection).
    """
    if message.get("type") != "options_update":
        return None
    payload = message.get("payload")
    if not isinstance(payload, dict):
        raise BadRequest("options_update without an object payload")
    collections = payload.get("wantedCollections") or []
    dids = payload.get("wantedDids") or []
    if not (_strings(collections) and _strings(dids)):
        raise BadRequest("options_update lists must hold strings")
    return parse_filter(collections, dids)


def _first(query: Mapping[str, list[str]], name: str) -> str:
    """Return the first value of a parameter, as Go's `url.Values.Get` does."""
    values = query.get(name)
    return values[0] if values else ""


def _strings(values: object) -> bool:
    return isinstance(values, list) and all(isinstance(value, str) for value in values)
