"""Table specs and the SQL the writer runs for them: staging DDL, rev-gated merge, recounts.

A record handler turns an Event into RowOps: a Table and a tuple in that table's staged column
order. The writer COPYs each table's rows into a temp staging table, then merges them into the
real table in one statement:

  * per key, only the newest version in the batch is kept (Jetstream sends duplicates, and
    `ON CONFLICT DO UPDATE` cannot touch a row twice in one statement);
  * an existing row changes only when the incoming version is newer (`rev` compared as text in
    the "C" collation: TIDs sort byte-wise);
  * a delete is a row with `deleted = true`: it becomes a tombstone (`deleted_at` set, columns
    cleared or kept as each Column says) so an older create arriving late cannot resurrect it.

Aggregates are recounted, never incremented: each Recount names a counter column and the SQL
expression that counts it for one subject; the writer recounts exactly the subjects a batch
touched (old and new foreign keys of every changed row, and the subjects themselves when they
are first inserted). All SQL text is built here once, from these constants; values are always
bound parameters or COPY data.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final, NamedTuple

__all__ = ["Column", "Recount", "RowOp", "Table", "merge_sql", "recount_sql", "stage_ddl"]

STAGE_PREFIX: Final = "stage_"


@dataclasses.dataclass(frozen=True, slots=True)
class Column:
    """A staged column.

    Attributes:
        name: column name in both the staging and the real table.
        type: SQL type.
        keep_on_delete: a delete leaves the stored value as it is (e.g. a comment's parent, so a
            deleted comment still sits in its thread); otherwise a delete clears it to NULL.
    """

    name: str
    type: str
    keep_on_delete: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Table:
    """A real table the engine writes, and how rows merge into it.

    Attributes:
        name: the real table.
        key: its conflict key (a unique index must exist on it).
        columns: staged columns in row order; includes the key and version columns. Each row
            tuple also ends with a `deleted` boolean when `tombstones` is true.
        version: the column that orders versions of one key (a TID `rev` by default).
        tombstones: rows carry a trailing deleted flag that maps to `deleted_at`.
        tracked: foreign-key columns whose old and new values the merge reports, for recounts.
    """

    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    version: str = "rev"
    tombstones: bool = True
    tracked: tuple[str, ...] = ()

    @property
    def stage(self) -> str:
        return STAGE_PREFIX + self.name

    @property
    def staged_names(self) -> tuple[str, ...]:
        names = tuple(c.name for c in self.columns)
        return names + ("deleted",) if self.tombstones else names

    def __post_init__(self) -> None:
        names = {c.name for c in self.columns}
        missing = (set(self.key) | {self.version} | set(self.tracked)) - names
        if missing:
            raise ValueError(f"table {self.name}: {sorted(missing)} not among its columns")


@dataclasses.dataclass(frozen=True, slots=True)
class Recount:
    """A counter column kept equal to a count over source rows.

    Attributes:
        target: table holding the counter; `target_key` is its single-column key.
        column: the counter column.
        source: table whose rows are counted; `source_fk` is the column pointing at the target.
        expression: SQL returning the count for the subject bound as `k.key`.
    """

    target: str
    target_key: str
    column: str
    source: str
    source_fk: str
    expression: str


class RowOp(NamedTuple):
    """One row for one table, as a handler produces it."""

    table: Table
    row: tuple[Any, ...]


def stage_ddl(table: Table) -> str:
    """CREATE TEMP TABLE for the table's staging copy (emptied at every commit)."""
    columns = [f"{c.name} {c.type}" for c in table.columns]
    if table.tombstones:
        columns.append("deleted boolean NOT NULL")
    return (f"CREATE TEMP TABLE IF NOT EXISTS {table.stage} ({', '.join(columns)}) "
            "ON COMMIT DELETE ROWS")


def merge_sql(table: Table) -> str:
    """The rev-gated upsert of staged rows into the real table.

    Returns one row: `changed` (rows inserted or updated), and for each tracked column an array
    `touched_<col>` of its distinct old and new values over the changed rows, and `merged_keys`
    (the changed keys, when the key is a single column).
    """
    key = ", ".join(table.key)
    names = [c.name for c in table.columns]
    insert_cols = names + (["deleted_at"] if table.tombstones else []) + ["indexed_at"]
    select_cols = names + (["CASE WHEN deleted THEN now() END"] if table.tombstones else []) + ["now()"]
    updates = []
    for column in table.columns:
        if column.name in table.key:
            continue
        if column.keep_on_delete and table.tombstones:
            updates.append(f"{column.name} = CASE WHEN EXCLUDED.deleted_at IS NULL "
                           f"THEN EXCLUDED.{column.name} ELSE t.{column.name} END")
        else:
            updates.append(f"{column.name} = EXCLUDED.{column.name}")
    if table.tombstones:
        updates.append("deleted_at = EXCLUDED.deleted_at")
    updates.append("indexed_at = EXCLUDED.indexed_at")
    returning = list(table.key) + [c for c in table.tracked if c not in table.key]
    prior_cols = ", ".join(f"t.{c}" for c in returning)
    parts = [
        f"WITH incoming AS (SELECT DISTINCT ON ({key}) * FROM {table.stage} "
        f"ORDER BY {key}, {table.version} DESC)",
    ]
    if table.tracked:
        parts.append(f"prior AS (SELECT {prior_cols} FROM {table.name} AS t JOIN incoming USING ({key}))")
    parts.append(
        f"merged AS (INSERT INTO {table.name} AS t ({', '.join(insert_cols)}) "
        f"SELECT {', '.join(select_cols)} FROM incoming "
        f"ON CONFLICT ({key}) DO UPDATE SET {', '.join(updates)} "
        f"WHERE t.{table.version} < EXCLUDED.{table.version} "
        f"RETURNING {', '.join('t.' + c for c in returning)})")
    outputs = ["(SELECT count(*) FROM merged) AS changed"]
    for col in table.tracked:
        outputs.append(
            f"ARRAY(SELECT {col} FROM merged WHERE {col} IS NOT NULL "
            f"UNION SELECT p.{col} FROM prior AS p JOIN merged USING ({key}) "
            f"WHERE p.{col} IS NOT NULL) AS touched_{col}")
    if len(table.key) == 1:
        outputs.append(f"ARRAY(SELECT {table.key[0]} FROM merged) AS merged_keys")
    return ",\n".join(parts) + "\nSELECT " + ", ".join(outputs)


def recount_sql(recount: Recount) -> str:
    """Set the counter of each subject in $1 (text[]) to its recount; skip unchanged rows."""
    return (f"UPDATE {recount.target} AS t SET {recount.column} = c.n "
            f"FROM (SELECT k.key, ({recount.expression}) AS n "
            f"FROM unnest($1::text[]) AS k(key)) AS c "
            f"WHERE t.{recount.target_key} = c.key AND t.{recount.column} IS DISTINCT FROM c.n")
