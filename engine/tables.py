"""Table specs and the SQL the writer runs for them: staging DDL, rev-gated merge, recounts.

A record handler turns an Event into RowOps: a Table and a tuple in that table's staged column
order. The writer COPYs each table's rows into a temp staging table, then merges them into the
real table in one statement. The merge is what makes replays, duplicates and reordering
harmless:

  * per key, the newest version in the batch wins (Jetstream sends duplicates, and
    `ON CONFLICT DO UPDATE` cannot touch a row twice in one statement);
  * a stored row changes only when the incoming version is newer (`rev` compared as text in the
    "C" collation: TIDs sort byte-wise);
  * a delete is a row with `deleted = true`: it becomes a tombstone (`deleted_at` set, mutable
    columns cleared) so an older create arriving late cannot resurrect the record;
  * immutable columns (a comment's parent, a vote's subject) are set by the first live version
    and never change: a tombstone keeps them, an older version arriving after a tombstone fills
    them in, and a newer version that would change them is refused (the writer stores it as an
    `immutable_field` reject). So the final row is the same whatever the arrival order.

Counters are recounted, never incremented: each Recount names counter columns and the query that
counts them for one subject; the writer recounts exactly the subjects a batch touched (old and
new foreign keys of every changed row, and subjects first inserted in the batch). All SQL text is
built here once, from constants; values are always bound parameters or COPY data.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final, NamedTuple

__all__ = ["Column", "Recount", "RowOp", "Table", "merge_sql", "purge_sql", "reconcile_sql",
           "recount_sql", "stage_ddl"]

STAGE_PREFIX: Final = "stage_"


@dataclasses.dataclass(frozen=True, slots=True)
class Column:
    """A staged column.

    Attributes:
        name: column name in both the staging and the real table.
        type: SQL type.
        immutable: set by the first live version, kept by deletes, never changed (see module doc).
    """

    name: str
    type: str = "text"
    immutable: bool = False


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
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
        actors: columns holding DIDs the records mention; the merge registers each in
            `identities`, so identity and account events for them are kept.
        repo: the column holding the DID of the repo the record lives in (purged with it).
        merge: hand-written merge SQL replacing the generated one (same output columns).
        twin_of: the table this one mirrors row for row (post_stats of post_records): a version
            its twin refused is not merged here either. Handlers emit the twin's row first.
    """

    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    version: str = "rev"
    tombstones: bool = True
    tracked: tuple[str, ...] = ()
    actors: tuple[str, ...] = ()
    repo: str | None = None
    merge: str | None = None
    twin_of: str | None = None

    # Tables are module constants and dict keys on the hot path (rows per table in a batch):
    # identity equality hashes in O(1), where field equality would hash every column each time.

    @property
    def stage(self) -> str:
        return STAGE_PREFIX + self.name

    @property
    def staged_names(self) -> tuple[str, ...]:
        names = tuple(c.name for c in self.columns)
        return names + ("deleted",) if self.tombstones else names

    @property
    def immutable(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.immutable)

    def __post_init__(self) -> None:
        names = {c.name for c in self.columns}
        wanted = set(self.key) | {self.version} | set(self.tracked) | set(self.actors)
        missing = (wanted | ({self.repo} if self.repo else set())) - names
        if missing:
            raise ValueError(f"table {self.name}: {sorted(missing)} not among its columns")
        if set(self.key) & set(self.immutable):
            raise ValueError(f"table {self.name}: key columns cannot be marked immutable")


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class Recount:
    """Counter columns kept equal to a count over source rows.

    Attributes:
        target: table holding the counters; `target_key` is its single-column key.
        columns: the counter columns, in the order `query` returns them.
        source: table whose rows are counted; `source_fk` is its column pointing at the target.
        query: SQL returning one row (the counters, named as `columns`) for the subject bound
            as `k.key`.
        derived: extra `(column, expression)` pairs set with the counters; the expression may
            use the new counters as `c.<name>` and the target row as `t` (e.g. the hot key).
        key_contains: only keys containing this text are subjects (votes point at posts and
            comments alike; each recount takes its own).
    """

    target: str
    target_key: str
    columns: tuple[str, ...]
    source: str
    source_fk: str
    query: str
    derived: tuple[tuple[str, str], ...] = ()
    key_contains: str | None = None

    def subjects(self, keys: set[str]) -> list[str]:
        if self.key_contains is None:
            return list(keys)
        return [key for key in keys if self.key_contains in key]


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
    """The rev-gated upsert of staged rows into the real table (see the module docstring).

    A table with its own `merge` SQL gets that instead.

    Returns one row: `changed` (rows inserted or updated); for each tracked column an array
    `touched_<col>` of its distinct old and new values over the changed rows; `merged_keys` (the
    changed keys, when the key is a single column); and `refused_keys` / `refused_columns`:
    keys whose newer version tried to change immutable columns, with the columns' names.
    """
    if table.merge is not None:
        return table.merge
    key = ", ".join(table.key)
    version = table.version
    immutable = table.immutable
    names = [c.name for c in table.columns]
    newer = f"t.{version} < EXCLUDED.{version}"

    # incoming: the newest version per key; immutable columns from any version that has them.
    picks = [f"max({c}) OVER same_key AS {c}" if c in immutable else c for c in table.staged_names]
    parts = [f"incoming AS (SELECT DISTINCT ON ({key}) {', '.join(picks)} FROM {table.stage} "
             f"WINDOW same_key AS (PARTITION BY {key}) ORDER BY {key}, {version} DESC)"]
    prior_cols = list(dict.fromkeys([*table.key, version, *table.tracked, *immutable]))
    if table.tracked or immutable:
        parts.append(f"prior AS (SELECT {', '.join('t.' + c for c in prior_cols)} "
                     f"FROM {table.name} AS t JOIN incoming USING ({key}))")
    if immutable:
        changes = " OR ".join(f"(p.{c} IS NOT NULL AND i.{c} IS DISTINCT FROM p.{c})" for c in immutable)
        which = ", ".join(
            f"CASE WHEN p.{c} IS NOT NULL AND i.{c} IS DISTINCT FROM p.{c} THEN '{c}' END"
            for c in immutable)
        live = "NOT i.deleted AND " if table.tombstones else ""
        parts.append(f"refused AS (SELECT {', '.join('i.' + k for k in table.key)}, "
                     f"concat_ws(', ', {which}) AS columns FROM incoming AS i JOIN prior AS p "
                     f"USING ({key}) WHERE {live}p.{version} < i.{version} AND ({changes}))")

    if table.actors:
        mentioned = ", ".join(f"({c})" for c in table.actors)
        parts.append(f"known AS (INSERT INTO identities (did) SELECT DISTINCT m.did FROM incoming, "
                     f"LATERAL (VALUES {mentioned}) AS m(did) WHERE m.did IS NOT NULL "
                     f"ON CONFLICT (did) DO NOTHING)")

    insert_cols = names + (["deleted_at"] if table.tombstones else []) + ["indexed_at"]
    select_cols = names + (["CASE WHEN deleted THEN now() END"] if table.tombstones else []) + ["now()"]
    updates = []
    for column in table.columns:
        if column.name in table.key:
            continue
        if column.immutable:
            updates.append(f"{column.name} = COALESCE(t.{column.name}, EXCLUDED.{column.name})")
        else:
            updates.append(f"{column.name} = CASE WHEN {newer} THEN EXCLUDED.{column.name} "
                           f"ELSE t.{column.name} END")
    if table.tombstones:
        updates.append(f"deleted_at = CASE WHEN {newer} THEN EXCLUDED.deleted_at ELSE t.deleted_at END")
    updates.append("indexed_at = EXCLUDED.indexed_at")
    # An older version still fills immutable columns a tombstone lacks.
    fills = " OR ".join(f"(t.{c} IS NULL AND EXCLUDED.{c} IS NOT NULL)" for c in immutable)
    where = f"({newer} OR {fills})" if immutable else newer
    skip_refused = (f" WHERE ({key}) NOT IN (SELECT {key} FROM refused)" if immutable else "")
    returning = list(dict.fromkeys([*table.key, *table.tracked]))
    parts.append(
        f"merged AS (INSERT INTO {table.name} AS t ({', '.join(insert_cols)}) "
        f"SELECT {', '.join(select_cols)} FROM incoming{skip_refused} "
        f"ON CONFLICT ({key}) DO UPDATE SET {', '.join(updates)} WHERE {where} "
        f"RETURNING {', '.join('t.' + c for c in returning)})")

    outputs = ["(SELECT count(*) FROM merged) AS changed"]
    for col in table.tracked:
        outputs.append(
            f"ARRAY(SELECT {col} FROM merged WHERE {col} IS NOT NULL "
            f"UNION SELECT p.{col} FROM prior AS p JOIN merged USING ({key}) "
            f"WHERE p.{col} IS NOT NULL) AS touched_{col}")
    if len(table.key) == 1:
        outputs.append(f"ARRAY(SELECT {table.key[0]} FROM merged) AS merged_keys")
        if immutable:
            outputs.append(f"ARRAY(SELECT {table.key[0]} FROM refused) AS refused_keys")
            outputs.append("ARRAY(SELECT columns FROM refused) AS refused_columns")
    return "WITH " + ",\n".join(parts) + "\nSELECT " + ", ".join(outputs)


def purge_sql(table: Table) -> str:
    """Tombstone every live record of the repos in $1 (text[]): a deleted account's content.

    Mutable columns are cleared, immutable ones kept (threads keep their shape); the rev stays,
    so replays of the account's old events stay ignored. Returns the tracked columns, for recounts.
    """
    if table.repo is None or not table.tombstones:
        raise ValueError(f"table {table.name} has no repo column to purge by")
    cleared = [f"{c.name} = NULL" for c in table.columns
               if not c.immutable and c.name not in table.key
               and c.name not in (table.version, table.repo, "did", "rkey", "uri")]
    returning = list(dict.fromkeys([*table.key, *table.tracked]))
    return (f"UPDATE {table.name} SET {', '.join(cleared + ['deleted_at = now()'])} "
            f"WHERE {table.repo} = ANY($1::text[]) AND deleted_at IS NULL "
            f"RETURNING {', '.join(returning)}")


def _counts(recount: Recount) -> str:
    return f"CROSS JOIN LATERAL ({recount.query}) AS q"


def recount_sql(recount: Recount) -> str:
    """Set the counters of each subject in $1 (text[]) to their recount; skip unchanged rows."""
    sets = [f"{c} = c.{c}" for c in recount.columns] + [f"{c} = {e}" for c, e in recount.derived]
    old = [f"t.{c}" for c in recount.columns] + [f"t.{c}" for c, _ in recount.derived]
    new = [f"c.{c}" for c in recount.columns] + [e for _, e in recount.derived]
    return (f"UPDATE {recount.target} AS t SET {', '.join(sets)} "
            f"FROM (SELECT k.key, q.* FROM unnest($1::text[]) AS k(key) {_counts(recount)}) AS c "
            f"WHERE t.{recount.target_key} = c.key "
            f"AND ({', '.join(old)}) IS DISTINCT FROM ({', '.join(new)})")


def reconcile_sql(recount: Recount, *, fix: bool) -> str:
    """Every target row whose counters differ from a full recount: (key, stored, counted).

    With `fix`, also set them (the UPDATE returns the same columns).
    """
    stored = ", ".join(f"t.{c}" for c in recount.columns)
    counted = ", ".join(f"c.{c}" for c in recount.columns)
    recount_all = (f"SELECT k.key, q.* FROM {recount.target} AS t0 "
                   f"CROSS JOIN LATERAL (SELECT t0.{recount.target_key} AS key) AS k {_counts(recount)}")
    if not fix:
        return (f"SELECT t.{recount.target_key} AS key, ARRAY[{stored}]::bigint[] AS stored, "
                f"ARRAY[{counted}]::bigint[] AS counted FROM {recount.target} AS t "
                f"JOIN ({recount_all}) AS c ON c.key = t.{recount.target_key} "
                f"WHERE ({stored}) IS DISTINCT FROM ({counted})")
    sets = [f"{c} = c.{c}" for c in recount.columns] + [f"{c} = {e}" for c, e in recount.derived]
    return (f"WITH before AS (SELECT {recount.target_key} AS key, ARRAY[{stored}]::bigint[] AS stored "
            f"FROM {recount.target} AS t) "
            f"UPDATE {recount.target} AS t SET {', '.join(sets)} FROM ({recount_all}) AS c, before AS b "
            f"WHERE t.{recount.target_key} = c.key AND b.key = c.key "
            f"AND ({stored}) IS DISTINCT FROM ({counted}) "
            f"RETURNING c.key, b.stored, ARRAY[{counted}]::bigint[] AS counted")
