"""Keyset pagination: sort keys, the position a cursor carries, and the page a query returns.

Every listing orders by (sort key, unique tiebreak) in one direction, so "the rows after the last
one shown" is a row comparison an index can seek to: `(key, tie) < (:after_k, :after_tie)`.
A cursor holds the last row's key and tiebreak (plus, for feeds, the walk's snapshot and time
window: api/views/feed.py); it never holds an offset.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson
from asyncpg import Record

from engine.db import Database

from ..cursors import CursorCodec
from ..errors import InvalidCursor
from ..xrpc import RawJson
from .sql import Query

__all__ = ["AFTER", "FLOAT", "INTEGER", "KeyType", "Paged", "Position", "SortKey", "TEXT", "TIME",
           "after_args", "decode_position", "encode_position", "page_body"]

AFTER: Final = "__AFTER__"
"""Marker in a listing's SQL where the keyset condition goes (TRUE on the first page)."""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(value: datetime) -> int:
    return (value - _EPOCH) // timedelta(microseconds=1)


def _from_micros(value: Any) -> datetime:
    if type(value) is not int:
        raise TypeError("time key must be an integer of microseconds")
    return _EPOCH + timedelta(microseconds=value)


def _checked(kind: type) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if type(value) is not kind:
            raise TypeError(f"key must be {kind.__name__}")
        return value

    return check


@dataclasses.dataclass(frozen=True, slots=True)
class KeyType:
    """How one SQL type of sort key travels in a cursor."""

    sql: str  # the SQL type the bound parameter is cast to
    to_cursor: Callable[[Any], Any]
    from_cursor: Callable[[Any], Any]  # raises TypeError/ValueError on a foreign value


FLOAT: Final = KeyType("double precision", float, _checked(float))
INTEGER: Final = KeyType("integer", int, _checked(int))
TIME: Final = KeyType("timestamptz", _micros, _from_micros)
TEXT: Final = KeyType("text", str, _checked(str))


@dataclasses.dataclass(frozen=True, slots=True)
class SortKey:
    """One ordering of a listing: `expr` (on the query's row alias) then `tie`, both descending
    unless `ascending`."""

    name: str
    expr: str
    type: KeyType
    tie: str
    ascending: bool = False

    @property
    def order(self) -> str:
        """ORDER BY clause body for the key and tiebreak."""
        direction = "ASC" if self.ascending else "DESC"
        return f"{self.expr} {direction}, {self.tie} {direction}"

    def after(self, key: str = "", tie: str = "") -> str:
        """`(key, tie)` strictly after the cursor's `(:after_k, :after_tie)` in this order."""
        op = ">" if self.ascending else "<"
        return (f"({key or self.expr}, {tie or self.tie}) {op} "
                f"(:after_k::{self.type.sql}, :after_tie::text)")


@dataclasses.dataclass(frozen=True, slots=True)
class Position:
    """Where the next page starts, and what the walk fixed at its first page."""

    key: Any
    tie: str
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def encode_position(codec: CursorCodec, kind: str, sort: SortKey, key: Any, tie: str,
                    **extra: Any) -> str:
    """The cursor continuing after the row (`key`, `tie`)."""
    return codec.encode(kind, {"k": sort.type.to_cursor(key), "t": tie, **extra})


def decode_position(codec: CursorCodec, kind: str, sort: SortKey, cursor: str | None) -> Position | None:
    """The position a cursor of listing `kind` holds; None without a cursor.

    Raises:
        InvalidCursor: forged, of another listing, or holding keys of the wrong type.
    """
    if cursor is None:
        return None
    raw = codec.decode(kind, cursor)
    try:
        key = sort.type.from_cursor(raw["k"])
        tie = raw["t"]
        if type(tie) is not str:
            raise TypeError("tiebreak must be a string")
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise InvalidCursor(f"Cursor does not fit this listing: {exc}") from None
    return Position(key, tie, {k: v for k, v in raw.items() if k not in ("k", "t")})


def after_args(sort: SortKey, position: Position | None) -> dict[str, Any]:
    """The `:after_k`/`:after_tie` parameters (both NULL on the first page)."""
    if position is None:
        return {"after_k": None, "after_tie": None}
    return {"after_k": position.key, "after_tie": position.tie}


def page_body(items_name: str, items_json: str, cursor: str | None,
              **extra: Any) -> RawJson:
    """`{items_name: [...], cursor?, **extra}` around a JSON array Postgres already built."""
    body: dict[str, Any] = dict(extra)
    body[items_name] = orjson.Fragment(items_json)
    if cursor is not None:
        body["cursor"] = cursor
    return RawJson(orjson.dumps(body))


@dataclasses.dataclass(frozen=True, slots=True)
class Paged:
    """A listing's statement in two variants: the first page, and a page after a cursor.

    Two statements rather than `(:after_k IS NULL OR (k, tie) < …)`: a generic prepared plan
    cannot turn that OR into an index seek, so deep pages would scan from the top.
    """

    first: Query
    next: Query

    @classmethod
    def keyset(cls, template: str, after: str) -> Paged:
        """From SQL with the AFTER marker where the keyset condition `after` belongs."""
        if AFTER not in template:
            raise ValueError("listing SQL lacks the AFTER marker")
        return cls(Query(template.replace(AFTER, "TRUE")), Query(template.replace(AFTER, after)))

    def query(self, position: Position | None) -> Query:
        return self.first if position is None else self.next


async def fetch_page(db: Database, paged: Paged, codec: CursorCodec, kind: str, sort: SortKey,
                     cursor: str | None, args: Mapping[str, Any], *,
                     custom_plan: bool = False) -> tuple[Record, str | None]:
    """Run one page of a keyset listing: (its result row, the next page's cursor or None).

    The statement must return `more`, `last_k` and `last_tie`. `custom_plan`: plan it for these
    values (`Database.fetchrow_custom_plan`), not with the pool's generic plan.

    Raises:
        InvalidCursor: the cursor does not belong to this listing.
    """
    position = decode_position(codec, kind, sort, cursor)
    query = paged.query(position)
    values = query.args({**args, **after_args(sort, position)})
    fetch = db.fetchrow_custom_plan if custom_plan else db.fetchrow
    row = await fetch(query.text, *values)
    assert row is not None, "listing statements always return one row"
    following = (encode_position(codec, kind, sort, row["last_k"], row["last_tie"])
                 if row["more"] else None)
    return row, following
