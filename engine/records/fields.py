"""Reading fields of records the lexicon validator already accepted, into column values.

Types and limits are the validator's job (engine/lexicon.py); these only convert (datetimes),
apply defaults, and stay safe if a handler is ever called on an unvalidated record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .. import syntax
from ..errors import RejectedEvent, RejectReason
from ..tables import Table

__all__ = ["integer", "invalid", "text", "timestamp", "tombstone"]


def invalid(field: str, rule: str) -> RejectedEvent:
    return RejectedEvent(RejectReason.INVALID_RECORD, f"{field}: {rule}")


def text(record: dict[str, Any], name: str) -> str | None:
    value = record.get(name)
    return value if type(value) is str else None


def timestamp(record: dict[str, Any], name: str) -> datetime | None:
    return syntax.parse_datetime(record.get(name))


def integer(record: dict[str, Any], name: str, default: int | None = None) -> int | None:
    value = record.get(name)
    return value if type(value) is int else default


def tombstone(table: Table, **values: Any) -> tuple[Any, ...]:
    """A delete row for `table`: the given columns set, every other column NULL, deleted = true."""
    row = tuple(values.get(c.name) for c in table.columns)
    return row + (True,)
