"""Reading record fields: typed getters that raise RejectedEvent naming the field and the rule.

Lexicon limits: `max_bytes` is the lexicon's maxLength (UTF-8 bytes), checked here; full lexicon
validation (graphemes, nested objects, unions) is the lexicon validator's job.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .. import syntax
from ..errors import RejectedEvent, RejectReason
from ..tables import Table

__all__ = ["did", "integer", "invalid", "text", "timestamp", "tombstone"]


def invalid(field: str, rule: str) -> RejectedEvent:
    return RejectedEvent(RejectReason.INVALID_RECORD, f"{field}: {rule}")


def text(record: dict[str, Any], name: str, *, required: bool = False,
         max_bytes: int | None = None) -> str | None:
    value = record.get(name)
    if value is None:
        if required:
            raise invalid(name, "required")
        return None
    if type(value) is not str:
        raise invalid(name, "must be a string")
    if max_bytes is not None and len(value) * 4 > max_bytes and len(value.encode()) > max_bytes:
        raise invalid(name, f"longer than {max_bytes} bytes")
    return value


def did(record: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = record.get(name)
    if value is None and not required:
        return None
    if not syntax.is_did(value):
        raise invalid(name, "required" if value is None else "must be a DID")
    return value  # type: ignore[no-any-return]


def timestamp(record: dict[str, Any], name: str, *, required: bool = False) -> datetime | None:
    value = record.get(name)
    if value is None:
        if required:
            raise invalid(name, "required")
        return None
    parsed = syntax.parse_datetime(value)
    if parsed is None:
        raise invalid(name, "must be an RFC 3339 datetime")
    return parsed


def integer(record: dict[str, Any], name: str, *, minimum: int, maximum: int,
            default: int | None = None) -> int | None:
    value = record.get(name)
    if value is None:
        return default
    if type(value) is not int:
        raise invalid(name, "must be an integer")
    if not minimum <= value <= maximum:
        raise invalid(name, f"must be within {minimum}..{maximum}")
    return value


def tombstone(table: Table, **values: Any) -> tuple[Any, ...]:
    """A delete row for `table`: the given columns set, every other column NULL, deleted = true."""
    row = tuple(values.get(c.name) for c in table.columns)
    return row + (True,)
