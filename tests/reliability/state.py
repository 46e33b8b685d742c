"""Whole-database comparison against an oracle, and hostile deliveries of a clean stream.

The oracle is the clean run: the same events applied once, in order, without duplicates. The
engine's database after faults, crashes and replays must hold exactly the oracle's rows in every
table — except the columns below, which record *when* or *by which run* something happened
rather than what the records say:

* `indexed_at`, `first_seen_at`, `updated_at`, `last_seen_at`, `applied_at` (of a migration):
  wall-clock times of the run that wrote the row (comment_stats.first_seen_at orders a deleted comment's placeholder, so it is
  bookkeeping by design);
* `deleted_at`: the wall-clock time the tombstone was written — compared as `deleted_at IS NOT
  NULL` (the tombstone itself must match);
* `hot_key` of a tombstone: a deleted post or comment has lost its createdAt, so its key falls
  back to `first_seen_at` (above); live rows' hot keys are compared;
* `identities.resolve_after / resolved_at / resolve_error / pds_endpoint` and
  `communities.host_ok / host_checked_for / host_checked_at / host_detail`: written by the identity tasks that
  run beside a live engine (handle resolver, host verifier), never by ingestion, and not by
  `coves replay`;
* `ingest_rejects.id / source / cursor / time_us / seen_count / first_seen_at / last_seen_at`: which
  source saw a refused event, where and how often (duplicates count again); the reject itself
  (fingerprint, reason, detail, raw) must match;
* whole tables `ingest_cursors` (each source has its own key: "jetstream" vs "replay:<file>") and
  `rank_history` (the path of sort-key changes that feed walks page over: it depends on the order
  changes arrived in by design, not only on the final state).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, Final

import orjson

from engine.db import Database

__all__ = ["EXCLUDED_COLUMNS", "EXCLUDED_TABLES", "database_state", "deliver", "diff_states",
           "row_counts"]

EXCLUDED_TABLES: Final = frozenset({"ingest_cursors", "rank_history"})
_EVERYWHERE: Final = frozenset({"indexed_at", "first_seen_at", "updated_at", "last_seen_at",
                               "applied_at"})
EXCLUDED_COLUMNS: Final[dict[str, frozenset[str]]] = {
    "identities": frozenset({"resolve_after", "resolved_at", "resolve_error", "pds_endpoint"}),
    "communities": frozenset({"host_ok", "host_checked_for", "host_checked_at", "host_detail"}),
    "ingest_rejects": frozenset({"id", "source", "cursor", "time_us", "seen_count"}),
}
_AS_FLAG: Final = frozenset({"deleted_at"})  # compared as IS NOT NULL


async def _columns(db: Database, table: str) -> list[str]:
    rows = await db.fetch("""
        SELECT column_name FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position""", table)
    return [r["column_name"] for r in rows]


async def database_state(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every base table's rows (sorted), minus the excluded tables and columns."""
    tables = [r["tablename"] for r in await db.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")]
    state: dict[str, list[tuple[Any, ...]]] = {}
    for table in tables:
        if table in EXCLUDED_TABLES:
            continue
        skip = _EVERYWHERE | EXCLUDED_COLUMNS.get(table, frozenset())
        columns = [c for c in await _columns(db, table) if c not in skip]
        select = ", ".join(_expression(c, columns) for c in columns)
        rows = await db.fetch(f'SELECT {select} FROM "{table}"')
        state[table] = sorted((tuple(_plain(v) for v in r.values()) for r in rows), key=repr)
        state[table].insert(0, tuple(columns))  # the header: compared too
    return state


def _expression(column: str, columns: list[str]) -> str:
    if column in _AS_FLAG:
        return f'("{column}" IS NOT NULL) AS "{column}"'
    if column == "hot_key" and "deleted_at" in columns:
        return 'CASE WHEN deleted_at IS NULL THEN hot_key END AS hot_key'
    return f'"{column}"'


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 9)  # hot keys: double precision written by the same SQL either way
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, (dict, list)):  # jsonb, decoded: compare its canonical text
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return value


def row_counts(state: dict[str, list[tuple[Any, ...]]]) -> dict[str, int]:
    return {table: len(rows) - 1 for table, rows in state.items() if len(rows) > 1}


def diff_states(got: dict[str, list[tuple[Any, ...]]], want: dict[str, list[tuple[Any, ...]]],
                *, limit: int = 10) -> list[str]:
    """Human-readable differences (empty when equal), at most `limit` rows per table."""
    problems: list[str] = []
    for table in sorted(set(got) | set(want)):
        mine, theirs = got.get(table, []), want.get(table, [])
        if mine[:1] != theirs[:1]:
            problems.append(f"{table}: columns {mine[:1]} != {theirs[:1]}")
            continue
        header = mine[0] if mine else ()
        extra = sorted(set(mine[1:]) - set(theirs[1:]), key=repr)
        missing = sorted(set(theirs[1:]) - set(mine[1:]), key=repr)
        if len(mine) != len(theirs):
            problems.append(f"{table}: {len(mine) - 1} rows, oracle {len(theirs) - 1}")
        for label, rows in (("extra", extra), ("missing", missing)):
            for row in rows[:limit]:
                problems.append(f"{table}: {label} {dict(zip(header, row))}")
    return problems


def _time_us(frame: bytes) -> int:
    return int(orjson.loads(frame)["time_us"])


def deliver(frames: Sequence[bytes], rng: random.Random, *, duplicate: float = 0.05,
            reorder: float = 0.05, max_distance: int = 2000) -> tuple[list[bytes], dict[str, int]]:
    """`frames` as a hostile upstream delivers them: a share re-sent later, a share moved later.

    Jetstream assigns `time_us` on receipt, so the delivered stream's times still increase in
    delivery order (the cursor stays meaningful); what arrives out of order is the commits
    themselves, i.e. revs and references. Each delivered frame is re-stamped with increasing
    times 100 µs apart, starting at the first frame's time.

    Returns:
        The delivered frames and how many were duplicated and moved.
    """
    slots: list[list[bytes]] = [[frame] for frame in frames]
    moved = duplicated = 0
    for index, frame in enumerate(frames):
        roll = rng.random()
        target = min(len(frames) - 1, index + rng.randint(1, max_distance))
        if roll < reorder and target > index:
            slots[index].remove(frame)
            slots[target].append(frame)
            moved += 1
        elif roll < reorder + duplicate:
            slots[target].append(frame)
            duplicated += 1
    start = _time_us(frames[0])
    delivered: list[bytes] = []
    for slot in slots:
        for frame in slot:
            event = orjson.loads(frame)
            event["time_us"] = start + 100 * len(delivered)
            delivered.append(orjson.dumps(event))
    return delivered, {"events": len(frames), "delivered": len(delivered),
                       "duplicated": duplicated, "reordered": moved}
