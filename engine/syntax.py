"""AT Protocol identifier syntax: DID, handle, NSID, TID, record key, AT-URI, CID, datetime.

Pure predicates, shared by decode, the record handlers and the lexicon validator. The rules follow
the atproto specifications (atproto.com/specs/*), kept to the checks an indexer needs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Final, TypeGuard, TypeVar

__all__ = [
    "is_at_uri", "is_cid", "is_datetime", "is_did", "is_handle", "is_nsid", "is_rkey", "is_tid",
    "make_tid", "parse_datetime", "split_at_uri",
]

# did:method:identifier — method lower-case letters; identifier of [a-zA-Z0-9._:%-], not ending
# in ':' ; 2 KB at most (spec: "DIDs are limited to 2 KB").
_DID_RE: Final = re.compile(r"^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$")
MAX_DID_LENGTH: Final = 2048
# Handles: DNS names of 2+ labels, each 1-63 chars, TLD not starting with a digit; 253 max.
_HANDLE_RE: Final = re.compile(
    r"^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
# NSID: reversed domain authority + name segment (letters and digits, starting with a letter).
_NSID_RE: Final = re.compile(
    r"^[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)+"
    r"\.[a-zA-Z][a-zA-Z0-9]{0,62}$")
# TID: 13 chars of base32-sortable; the first char's top bit is 0, so it is one of 234567abcdefghij.
_TID_RE: Final = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
_RKEY_RE: Final = re.compile(r"^[a-zA-Z0-9._:~-]{1,512}$")
# CIDv1 in base32 (b…) is what records carry; CIDv0 (Qm…, base58btc) still appears in old data.
_CID_RE: Final = re.compile(r"^(b[a-z2-7]{8,}|Qm[1-9A-HJ-NP-Za-km-z]{44})$")
# RFC 3339 with the atproto restrictions: upper-case T and Z, seconds required, zone required.
_DATETIME_RE: Final = re.compile(
    r"^[0-9]{4}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-6][0-9]:[0-6][0-9](\.[0-9]{1,20})?"
    r"(Z|[+-][0-2][0-9]:[0-5][0-9])$")


# The same DIDs, collections and subject URIs come back event after event; remembering recent
# answers turns most checks into one dict lookup. Bounded: a full table is simply emptied.
MEMO_ENTRIES: Final = 65_536
T = TypeVar("T")


def _memo(check: Callable[[str], T], default: T) -> Callable[[object], T]:
    answers: dict[str, T] = {}

    def memoized(value: object) -> T:
        if type(value) is not str:
            return default
        answer = answers.get(value, _MISSING)
        if answer is _MISSING:
            answer = check(value)
            if len(answers) >= MEMO_ENTRIES:
                answers.clear()
            answers[value] = answer
        return answer  # type: ignore[return-value]

    memoized.__doc__ = check.__doc__
    memoized.__name__ = check.__name__
    return memoized


_MISSING: Final = object()


def is_did(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and len(value) <= MAX_DID_LENGTH and _DID_RE.match(value) is not None


def is_handle(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and len(value) <= 253 and _HANDLE_RE.match(value) is not None


def is_nsid(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and len(value) <= 317 and _NSID_RE.match(value) is not None


def is_tid(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _TID_RE.match(value) is not None


def is_rkey(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and value not in (".", "..") and _RKEY_RE.match(value) is not None


def is_cid(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and len(value) <= 256 and _CID_RE.match(value) is not None


def parse_datetime(value: object) -> datetime | None:
    """Parse an atproto datetime string; None if it is not one.

    The lexicon check and then the record handler parse the same createdAt back to back, so the
    last answer is kept (a one-entry cache, checked by identity).
    """
    global _last_parsed
    if value is _last_parsed[0]:
        return _last_parsed[1]
    parsed = None
    if isinstance(value, str) and len(value) <= 64 and _DATETIME_RE.match(value):
        try:
            # Python 3.11 reads any number of fractional digits (beyond 6 are truncated).
            parsed = datetime.fromisoformat(value)
        except ValueError:  # e.g. 2026-02-30
            parsed = None
    _last_parsed = (value, parsed)
    return parsed


_last_parsed: tuple[object, datetime | None] = (None, None)


def is_datetime(value: object) -> bool:
    return parse_datetime(value) is not None


def split_at_uri(value: object) -> tuple[str, str, str] | None:
    """Split `at://authority/collection/rkey` into its parts; None unless all three are valid.

    The authority must be a DID (records we index point at other records by DID-based URIs).
    """
    if not isinstance(value, str) or not value.startswith("at://") or len(value) > 8192:
        return None
    parts = value[5:].split("/")
    if len(parts) != 3:
        return None
    authority, collection, rkey = parts
    if not (is_did(authority) and is_nsid(collection) and is_rkey(rkey)):
        return None
    return authority, collection, rkey


def is_at_uri(value: object) -> TypeGuard[str]:
    """True for any AT-URI: authority (DID or handle), optionally collection and rkey."""
    if not isinstance(value, str) or not value.startswith("at://") or len(value) > 8192:
        return False
    parts = value[5:].split("/")
    if not parts or len(parts) > 3 or not (is_did(parts[0]) or is_handle(parts[0])):
        return False
    if len(parts) >= 2 and not is_nsid(parts[1]):
        return False
    return len(parts) < 3 or is_rkey(parts[2])


_B32_SORTABLE: Final = "234567abcdefghijklmnopqrstuvwxyz"


def make_tid(time_us: int, clock_id: int = 0) -> str:
    """The TID for a microsecond timestamp and a 10-bit clock id (what a PDS uses as `rev`)."""
    value = ((time_us & ((1 << 53) - 1)) << 10) | (clock_id & 0x3FF)
    chars = []
    for _ in range(13):
        chars.append(_B32_SORTABLE[value & 31])
        value >>= 5
    return "".join(reversed(chars))


# Not is_rkey: record keys are mostly fresh TIDs, so a memo of them only misses (it cost ~2 µs
# per event in inserts and clears, against ~0.3 µs for the regex).
is_did = _memo(is_did, False)  # type: ignore[assignment]
is_nsid = _memo(is_nsid, False)  # type: ignore[assignment]
is_handle = _memo(is_handle, False)  # type: ignore[assignment]
split_at_uri = _memo(split_at_uri, None)  # type: ignore[assignment]
is_at_uri = _memo(is_at_uri, False)  # type: ignore[assignment]
