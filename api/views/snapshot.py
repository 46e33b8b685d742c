"""Ranked pages that stay consistent while votes move: feeds and comment threads.

A plain keyset walk over a key that changes (hot_key, score) fails both ways: a post shown on
page 1 whose score then drops sorts *after* the cursor and is shown again on page 2; one not yet
shown whose score rises jumps *before* the cursor and is never shown. So a walk ranks every row
by the key it had when the walk began:

  * The first page is read in one statement; its MVCC snapshot (`pg_current_snapshot()`) and
    time go into the cursor with the last row's (key, uri).
  * Every write that changes a post's or comment's keys stores the old keys in `rank_history`
    with the writing transaction's id (trigger in sql/functions/rank_history.sql).
  * A later page splits candidates in two: rows with no change invisible to the walk's snapshot
    are read in index order by their current key, which *is* their key at the snapshot; rows
    changed since (history rows whose xid the snapshot does not see) are ranked by the old keys
    of their first such change, i.e. the keys the snapshot saw. Both are cut at the cursor's
    (key, uri) and merged.

Every row therefore has one fixed key for the whole walk: the walk is a total order cut into
pages, so nothing repeats and nothing unchanged is skipped; a changed row appears once, at its
position as of the first page. Rows created after the first page slot in by their own keys;
deleted or hidden ones drop out. The `top` time window is also fixed at the first page.

The guarantee lasts as long as rank_history keeps rows (coves_rank_history_retention(), 24 h);
an older cursor still pages, by current keys, and may then repeat or skip rows whose votes
changed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from asyncpg import Record

from engine.db import Database

from ..cursors import CursorCodec
from ..errors import InvalidCursor
from .keyset import (FLOAT, INTEGER, TIME, KeyType, Paged, Position, SortKey, decode_position,
                     encode_position)

__all__ = ["RANK_KEYS", "TIMEFRAMES", "RankedSource", "decode_walk", "fetch_walk",
           "next_walk_cursor", "ranked_page", "sort_key", "walk_args", "walk_kind"]

# Sort name → (column in the row and in rank_history, how its key travels in a cursor).
RANK_KEYS: Final[dict[str, tuple[str, KeyType]]] = {
    "hot": ("hot_key", FLOAT), "top": ("score", INTEGER), "new": ("created_at", TIME)}
TIMEFRAMES: Final = {"hour": timedelta(hours=1), "day": timedelta(days=1),
                     "week": timedelta(weeks=1), "month": timedelta(days=30),
                     "year": timedelta(days=365), "all": None}
_SINCE: Final = "coalesce(:since::timestamptz, '-infinity'::timestamptz)"


@dataclasses.dataclass(frozen=True, slots=True)
class RankedSource:
    """Rows a ranked page draws from.

    Attributes:
        table: posts or comments (both have uri, hot_key, score, created_at).
        alias: the row alias the conditions use.
        joins: joins the conditions need, after the table.
        created: the row's creation time given its created_at column (comments placeholders
            lost createdAt and fall back to when we first saw them).
    """

    table: str
    alias: str
    joins: str = ""
    created: Callable[[str], str] = lambda column: column


def sort_key(source: RankedSource, sort: str) -> SortKey:
    """The SortKey of `sort` on the live rows of `source`."""
    column, key_type = RANK_KEYS[sort]
    a = source.alias
    expr = source.created(f"{a}.created_at") if sort == "new" else f"{a}.{column}"
    return SortKey(sort, expr, key_type, f"{a}.uri")


def ranked_page(source: RankedSource, where: str, sort: str) -> tuple[str, str]:
    """The CTE text `page(uri, k)` — first page, later page — of rows matching `where`.

    Later pages also define the CTE `moved` before `page`. Parameters: :limit, :since,
    :after_k, :after_tie, :snapshot, :snapshot_at.
    """
    column, key_type = RANK_KEYS[sort]
    a, table = source.alias, source.table
    live = sort_key(source, sort)
    then_created = source.created("h.created_at")
    then_key = then_created if sort == "new" else f"h.{column}"
    after = f"(:after_k::{key_type.sql}, :after_tie::text)"
    first = f"""
page AS (
    SELECT {a}.uri, {live.expr} AS k
      FROM {table} AS {a} {source.joins}
     WHERE {where} AND {source.created(f"{a}.created_at")} >= {_SINCE}
     ORDER BY {live.order}
     LIMIT :limit + 1
)"""
    later = f"""
moved AS (
    -- rows whose keys changed after the walk's snapshot, with the keys that snapshot saw
    SELECT DISTINCT ON (h.uri) h.uri, h.hot_key, h.score, h.created_at
      FROM rank_history AS h
     WHERE h.xid >= pg_snapshot_xmin((:snapshot::text)::pg_snapshot)
       AND NOT pg_visible_in_snapshot(h.xid, (:snapshot::text)::pg_snapshot)
       AND :snapshot_at::double precision
           > extract(epoch FROM now() - coves_rank_history_retention())
     ORDER BY h.uri, h.id
),
page AS (
    SELECT candidates.uri, candidates.k FROM (
        (SELECT {a}.uri, {live.expr} AS k
           FROM {table} AS {a} {source.joins}
          WHERE {where} AND {source.created(f"{a}.created_at")} >= {_SINCE}
            AND ({live.expr}, {a}.uri) < {after}
            AND {a}.uri NOT IN (SELECT moved.uri FROM moved)
          ORDER BY {live.order}
          LIMIT :limit + 1)
        UNION ALL
        (SELECT {a}.uri, {then_key} AS k
           FROM moved AS h JOIN {table} AS {a} ON {a}.uri = h.uri {source.joins}
          WHERE {where} AND {then_created} >= {_SINCE}
            AND ({then_key}, {a}.uri) < {after})
    ) AS candidates
    ORDER BY candidates.k DESC, candidates.uri DESC
    LIMIT :limit + 1
)"""
    return first, later


def walk_kind(listing: str, sort: str) -> str:
    """The cursor kind of a ranked walk (a cursor of one listing or sort fits no other)."""
    return f"{listing}:{sort}"


def decode_walk(codec: CursorCodec, listing: str, sort: str, cursor: str | None) -> Position | None:
    """The position of a ranked walk's cursor (None on the first page).

    Raises:
        InvalidCursor: see decode_position; also a walk without its snapshot.
    """
    column, key_type = RANK_KEYS[sort]
    position = decode_position(codec, walk_kind(listing, sort),
                               SortKey(sort, column, key_type, "uri"), cursor)
    if position is not None:
        extra = position.extra
        if (type(extra.get("s")) is not str or type(extra.get("a")) not in (float, int)
                or extra.get("w") is not None and type(extra.get("w")) is not int):
            raise InvalidCursor("Cursor does not fit this listing: no snapshot")
    return position


def walk_args(position: Position | None, timeframe: str | None, now: datetime | None = None) -> dict[str, Any]:
    """:since, :after_k, :after_tie, :snapshot, :snapshot_at for a page of a walk.

    The window of `top` (`timeframe`) starts at the first page and stays for the walk.
    """
    if position is None:
        window = TIMEFRAMES.get(timeframe or "all")
        since = (now or datetime.now(UTC)) - window if window is not None else None
        return {"since": since, "after_k": None, "after_tie": None, "snapshot": None,
                "snapshot_at": None}
    since_us = position.extra.get("w")
    return {"since": TIME.from_cursor(since_us) if since_us is not None else None,
            "after_k": position.key, "after_tie": position.tie,
            "snapshot": position.extra["s"], "snapshot_at": float(position.extra["a"])}


def next_walk_cursor(codec: CursorCodec, listing: str, sort: str, row: Any,
                     position: Position | None, args: dict[str, Any]) -> str | None:
    """The cursor after `row` (a page query's result), or None at the end of the walk.

    The snapshot and window come from the walk's first page (this one, or the cursor's).
    """
    if not row["more"]:
        return None
    column, key_type = RANK_KEYS[sort]
    since = args["since"]
    if position is None:
        snapshot, snapshot_at = row["snapshot"], row["snapshot_at"]
    else:
        snapshot, snapshot_at = position.extra["s"], position.extra["a"]
    return encode_position(codec, walk_kind(listing, sort), SortKey(sort, column, key_type, "uri"),
                           row["last_k"], row["last_tie"], s=snapshot, a=snapshot_at,
                           w=TIME.to_cursor(since) if since is not None else None)



async def fetch_walk(db: Database, paged: Paged, codec: CursorCodec, listing: str, sort: str,
                     cursor: str | None, timeframe: str | None,
                     args: dict[str, Any]) -> tuple[Record, str | None]:
    """Run one page of a ranked walk: (its result row, the next page's cursor or None).

    `timeframe` bounds `top` walks (ignored for other sorts).

    Raises:
        InvalidCursor: the cursor does not belong to this walk.
    """
    position = decode_walk(codec, listing, sort, cursor)
    walk = walk_args(position, timeframe if sort == "top" else None)
    query = paged.query(position)
    row = await db.fetchrow(query.text, *query.args({**args, **walk}))
    assert row is not None, "walk statements always return one row"
    return row, next_walk_cursor(codec, listing, sort, row, position, walk)
