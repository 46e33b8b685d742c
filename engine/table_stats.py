"""Planner statistics kept fresh while the tables are young.

The writer prepares its statements once per connection, and Postgres keeps each plan until the
statistics of a table it reads change. A plan made while a table held a few hundred rows joins
it by reading it whole (the cheapest way then) and goes on doing so as the table grows: on a
fresh database at 5,000 ev/s every merge read its table whole each batch, and commit lag grew
from 0.17 s to 1.1 s within a minute. Autovacuum analyzes a table at most once a minute and only
after it grew 10 %; while tables double within seconds that comes too late.

So the writer ANALYZEs a table (its key columns: see `analyze`) each time it has written as many
rows to it as the table held at its last analysis (at least MIN_ROWS): about log2(rows) times
while a database fills, and in practice never once its tables are large (autovacuum's 10 %
keeps those current). ANALYZE invalidates the cached plans that read the table, in every
session.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

import asyncpg

__all__ = ["KEY_STATISTICS_TARGET", "MIN_ROWS", "GrowthAnalyzer", "analyze", "table_state"]

MIN_ROWS: Final = 1000
# Statistics target of these analyses: a sample of 300 × 10 rows instead of 300 × 100. The keys
# are unique, so a small sample gives the same estimates (n_distinct -1, the table's size); the
# default one cost the writer ~8 % of its Postgres time on a young database (40k core events).
KEY_STATISTICS_TARGET: Final = 10
_NAME: Final = re.compile(r"[a-z_][a-z0-9_]*")


class GrowthAnalyzer:
    """Counts the rows written per table and says which tables are due for ANALYZE."""

    def __init__(self, keys: Mapping[str, Sequence[str]], *, min_rows: int = MIN_ROWS) -> None:
        self._keys = dict(keys)  # table → its key columns, the ones ANALYZE reads
        self.tables = tuple(keys)
        self._min_rows = min_rows
        self._written = dict.fromkeys(self.tables, 0)
        self.estimates: dict[str, float] | None = None  # rows at the last analysis; None: unread

    def count(self, rows: Mapping[str, int]) -> None:
        """Add rows written (staged: an update or a duplicate counts too, which only brings an
        analysis forward)."""
        for name, n in rows.items():
            if name in self._written:
                self._written[name] += n

    def due(self) -> dict[str, Sequence[str]]:
        """Tables that got at least as many rows written as they held when last analyzed, with
        their key columns (what `analyze` takes)."""
        if self.estimates is None:
            return {}
        return {name: self._keys[name] for name, written in self._written.items()
                if written >= max(self._min_rows, self.estimates.get(name, 0.0))}

    def analyzed(self, estimates: Mapping[str, float]) -> None:
        """Record the row estimates read after an ANALYZE and restart those tables' counts."""
        self.estimates = {**(self.estimates or {}), **estimates}
        for name in estimates:
            self._written[name] = 0

    def started(self, estimates: Mapping[str, float], modified: Mapping[str, int]) -> None:
        """Begin from what Postgres knows: each table's rows at its last analysis and the rows
        changed since (so a restart does not put an analysis off)."""
        self.analyzed(estimates)
        self.count(modified)


async def table_state(connection: asyncpg.Connection,
                      tables: Iterable[str]) -> tuple[dict[str, float], dict[str, int]]:
    """Per table: pg_class's row estimate (0 if never analyzed) and the rows changed since the
    last analysis (pg_stat_user_tables)."""
    rows = await connection.fetch(
        "SELECT c.relname, greatest(c.reltuples, 0) AS rows,"
        " coalesce(pg_stat_get_mod_since_analyze(c.oid), 0) AS modified FROM pg_class AS c"
        " WHERE c.oid = ANY(ARRAY(SELECT to_regclass(n) FROM unnest($1::text[]) AS n))",
        list(tables))
    return ({row["relname"]: float(row["rows"]) for row in rows},
            {row["relname"]: int(row["modified"]) for row in rows})


async def analyze(connection: asyncpg.Connection,
                  tables: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """ANALYZE each table's key columns, from a small sample (KEY_STATISTICS_TARGET), and return
    the tables' new row estimates.

    Only the key columns: the plans go wrong on the tables' sizes, which any ANALYZE updates,
    and statistics of every column cost 3-7× as much (a 20k-row comment_records: 362 ms against
    52 ms), all that time the writer's. Autovacuum's own analysis, of every column, still comes:
    a column-list ANALYZE does not reset its count of changed rows. A table autovacuum holds is
    skipped (SKIP_LOCKED): autovacuum is refreshing it anyway.
    """
    for name in (*tables, *(column for columns in tables.values() for column in columns)):
        if not _NAME.fullmatch(name):  # the names go into the SQL text
            raise ValueError(f"not a plain identifier: {name!r}")
    targets = ", ".join(f"{name} ({', '.join(columns)})" for name, columns in tables.items())
    async with connection.transaction():
        await connection.execute(f"SET LOCAL default_statistics_target = {KEY_STATISTICS_TARGET}")
        await connection.execute("ANALYZE (SKIP_LOCKED) " + targets)
    estimates, _ = await table_state(connection, tables)
    return estimates
