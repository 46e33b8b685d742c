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

Counters equal a recount (invariant 4). Each Recount names counter columns and the query that
counts them for one subject; the writer recounts the subjects a batch touched (old and new foreign
keys of every changed row, and subjects whose own row changed) — except where a recount is a
Tally, which the writer keeps by deltas instead, and for subject rows the batch inserted (below):

  * A Tally counts, per subject, only each owner's newest live source row (votes: one voter, one
    vote, the newest by rev), weighing one column's value (direction); `Tally.rows` weighs
    every live row 1 (a community's posts, its subscribers counted once each, a post's
    comments, a comment's replies). So a subject's counters
    are a sum over (owner, subject) pairs of the weights of that pair's counted value, and a
    batch changes them by exactly the change of the pairs whose rows it touched.
  * The source's merge statement itself measures, for every pair its merged rows name, the
    counted value before the merge (as stored) and after it (`tally_sql`); the writer adds
    after − before, summed per subject, to the stored counters once every table of the batch is
    merged. The measure and the full recount are generated here from the one Tally (same live
    filter, same "newest" order, same weights), so they cannot disagree; ties in version go to
    the greater value, so "newest" is a function of the rows, not of their physical order.
  * Exact as long as the stored counters were exact when the batch began, and nothing else
    changed the pairs in between: the writer lock (writer.py) serialises writers; subjects a
    purge touched, and subjects whose own row changed where derived columns read it (a
    post's hot key reads its created_at), are recounted in full instead, and
    subjects whose row the batch inserted were counted by that insert (either way their delta
    is dropped, so each row is written once). A counter corrupted by hand
    stays off by the same amount until `coves reconcile --fix` (which recounts in full) — a
    full-recount writer healed a subject the next time a batch touched it.

A row the merge inserts gets its counters at once, counted from the source rows already
stored (merge_sql's `counted`). The writer merges sources before targets, so those counts are
exact and the new row needs no recount — where a recount used to rewrite each new post and
comment row, and its feed indexes, right after inserting it.

This makes a vote, post, comment or subscription cost a few index probes whatever its subject's
size: a full recount read every live vote of a hot post, and every post of a big community, in
every batch that touched it. (For subjects with a handful of rows the recount was as cheap or
cheaper; the delta pays off as they grow.) All SQL text is
built here once, from constants; values are always bound parameters or COPY data.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any, Final, NamedTuple

__all__ = [
    "ANY_VALUE", "Column", "Recount", "RowOp", "Table", "Tally", "TallySql", "incoming_sql",
    "merge_sql", "purge_sql", "reconcile_sql", "recount_sql", "stage_ddl", "tally_sql",
]

STAGE_PREFIX: Final = "stage_"
# Tally values are written into SQL text as literals: only plain words.
_LITERAL: Final = re.compile(r"[A-Za-z0-9_.:-]+")
# A Tally weight for any counted row, whatever its value: counts live rows (`Tally.rows`).
ANY_VALUE: Final = "*"


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
        actors: columns holding DIDs the records mention; the writer registers each in
            `identities` (engine/known_identities.py), so identity and account events for
            them are kept.
        repo: the column holding the DID of the repo the record lives in (purged with it).
        merge: hand-written merge SQL replacing the generated one (same output columns).
        twin_of: the table this one mirrors row for row (post_stats of post_records): a version
            its twin refused is not merged here either. Handlers emit the twin's row first.
        defaults: `(column, SQL)` of columns a new row takes from their DEFAULT that a
            recount's derived expression reads (a stats row's first_seen_at: now()), so that
            the insert can compute them (see `merge_sql`).
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
    defaults: tuple[tuple[str, str], ...] = ()

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


@dataclasses.dataclass(frozen=True, slots=True)
class Tally:
    """Counters over each owner's newest live source row of a subject, by the value of a column.

    Votes: per (voter, subject) only the voter's newest live vote counts; `upvote_count` weighs
    `up` 1, `score` weighs `up` 1 and `down` -1. A counter is the sum over owners of the weight of
    their counted row's value (0 for a value it does not list, and for owners with no live row).

    Attributes:
        owner: the source column naming whose row it is (a vote's voter). It must be fixed per
            source key (the voter is part of the vote's URI).
        value: the source column the counters weigh.
        counters: (counter column, ((value, weight), ...)) per counter, in the Recount's
            column order.
        version: orders an owner's rows; the newest counts (ties: the greater value).
        owner_is_key: the owner is the source's key (each row counts for itself: a post in its
            community): a pair is one primary-key probe, the recount needs no DISTINCT ON.
    """

    owner: str
    value: str
    counters: tuple[tuple[str, tuple[tuple[str, int], ...]], ...]
    version: str = "rev"
    owner_is_key: bool = False

    def __post_init__(self) -> None:
        for _counter, weights in self.counters:
            for literal, weight in weights:
                if type(weight) is not int or not (
                        _LITERAL.fullmatch(literal) or (literal == ANY_VALUE and len(weights) == 1)):
                    raise ValueError(f"tally weight {literal!r}: {weight!r} is not a plain word "
                                     f"(or {ANY_VALUE!r} alone) and int")

    @classmethod
    def rows(cls, owner: str, counter: str, *, owner_is_key: bool = False) -> Tally:
        """Count the owners with a live row: `owner` is a column fixed per source key (the row's
        own key counts every live row; a subscriber's DID counts subscribers once each)."""
        return cls(owner=owner, value=owner, counters=((counter, ((ANY_VALUE, 1),)),),
                   owner_is_key=owner_is_key)

    def weight(self, counter: str, expr: str) -> str:
        """SQL: the weight `counter` gives the value `expr` (0 when NULL or unlisted)."""
        weights = dict(self.counters)[counter]
        if weights[0][0] == ANY_VALUE:
            return f"CASE WHEN {expr} IS NULL THEN 0 ELSE {weights[0][1]} END"
        cases = " ".join(f"WHEN '{literal}' THEN {weight}" for literal, weight in weights)
        return f"CASE {expr} {cases} ELSE 0 END"

    def same_rows(self, other: Tally) -> bool:
        """Whether `other` counts the same rows per pair (its counters may differ)."""
        return (self.owner, self.value, self.version) == (other.owner, other.value, other.version)

    def newest(self, alias: str) -> str:
        """ORDER BY terms that put an owner's counted row first (ties broken by value, so the
        choice depends only on the rows' contents)."""
        return f"{alias}.{self.version} DESC, {alias}.{self.value} DESC"


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class Recount:
    """Counter columns kept equal to a count over source rows.

    Attributes:
        target: table holding the counters; `target_key` is its single-column key.
        columns: the counter columns, in the order `query` returns them.
        source: table whose rows are counted; `source_fk` is its column pointing at the target.
        query: SQL returning one row (the counters, named as `columns`) for the subject bound
            as `k.key`. Generated from `tally` when that is given.
        derived: extra `(column, expression)` pairs set with the counters; the expression may
            use the new counters as `c.<name>` and the target row as `t` (e.g. the hot key).
        key_contains: only keys containing this text are subjects (votes point at posts and
            comments alike; each recount takes its own).
        tally: the counters are a Tally over the source's live rows (source must have
            tombstones): the writer then applies a batch's changes as deltas (`tally_sql`)
            and recounts in full only subjects purged or changed in the batch.
    """

    target: str
    target_key: str
    columns: tuple[str, ...]
    source: str
    source_fk: str
    query: str = ""
    derived: tuple[tuple[str, str], ...] = ()
    key_contains: str | None = None
    tally: Tally | None = None

    def __post_init__(self) -> None:
        if self.tally is None:
            if not self.query:
                raise ValueError(f"recount of {self.target}: give a query or a tally")
            return
        if self.query:
            raise ValueError(f"recount of {self.target}: a tally generates its own query")
        if tuple(name for name, _ in self.tally.counters) != self.columns:
            raise ValueError(f"recount of {self.target}: tally counters must be {self.columns}")
        object.__setattr__(self, "query", _tally_query(self))

    def subjects(self, keys: set[str]) -> list[str]:
        if self.key_contains is None:
            return list(keys)
        return [key for key in keys if self.key_contains in key]


def _live(recount: Recount, alias: str, subject: str) -> str:
    """FROM/WHERE of a subject's live source rows; the predicate matches the partial index
    (votes_subject_newest: `WHERE deleted_at IS NULL`)."""
    return (f"FROM {recount.source} AS {alias} WHERE {alias}.{recount.source_fk} = {subject} "
            f"AND {alias}.deleted_at IS NULL")


def _tally_query(recount: Recount) -> str:
    """The full recount of a Tally: each owner's newest live row of subject `k.key`, weighed."""
    tally = recount.tally
    assert tally is not None
    sums = ", ".join(f"coalesce(sum({tally.weight(c, 'v.counted')}), 0) AS {c}"
                     for c in recount.columns)
    if tally.owner_is_key:  # one row per owner
        return (f"SELECT {sums} FROM (SELECT x.{tally.value} AS counted "
                f"{_live(recount, 'x', 'k.key')}) AS v")
    return (f"SELECT {sums} FROM (SELECT DISTINCT ON (x.{tally.owner}) x.{tally.value} AS counted "
            f"{_live(recount, 'x', 'k.key')} "
            f"ORDER BY x.{tally.owner}, {tally.newest('x')}) AS v")


def _stored_pair(recount: Recount, key: str) -> str:
    """LEFT JOIN LATERAL `b`: the pair `n.subject`, `n.owner`'s counted row as stored when the
    statement began (its snapshot): `b.key`, `b.version`, `b.counted`; all NULL when none is live.
    One probe of an index on the pair, version descending (votes: subject first; subscriptions:
    owner first, sql/0013). A join rather than a scalar
    subquery, which Postgres would run again for each expression that uses its result."""
    tally = recount.tally
    assert tally is not None
    if tally.owner_is_key:
        # The pair's row by its key alone, checked for life and subject after: the key is the
        # only condition an index can serve, and LIMIT keeps the join a probe per pair. The
        # writer plans its statements once per connection, maybe on an empty database, where
        # Postgres costed (subject, score, uri) or (score, uri) like the key and then walked a
        # whole community's posts, or every live post, for each pair.
        return (f"LEFT JOIN LATERAL (SELECT CASE WHEN stored.deleted_at IS NULL "
                f"AND stored.{recount.source_fk} = n.subject THEN stored.{tally.value} END "
                f"AS counted FROM {recount.source} AS stored "
                f"WHERE stored.{tally.owner} = n.owner LIMIT 1) AS b ON true")
    return (f"LEFT JOIN LATERAL (SELECT stored.{key} AS key, stored.{tally.version} AS version, "
            f"stored.{tally.value} AS counted {_live(recount, 'stored', 'n.subject')} "
            f"AND stored.{tally.owner} = n.owner ORDER BY {tally.newest('stored')} "
            f"LIMIT 1) AS b ON true")


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


def incoming_sql(table: Table) -> str:
    """The staged rows a merge reads: the newest version per key, immutable columns from any
    version that has them (a delete's row may lack them).

    The window is ordered as DISTINCT ON reads the rows (its frame still the whole key), so one
    sort serves both: ~0.8 ms less per 5,000 staged rows than sorting by key, then by version.
    """
    key = ", ".join(table.key)
    picks = [f"max({c}) OVER same_key AS {c}" if c in table.immutable else c
             for c in table.staged_names]
    return (f"SELECT DISTINCT ON ({key}) {', '.join(picks)} FROM {table.stage} "
            f"WINDOW same_key AS (PARTITION BY {key} ORDER BY {table.version} DESC ROWS BETWEEN "
            f"UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) ORDER BY {key}, {table.version} DESC")


def merge_sql(table: Table, counted: Sequence[Recount] = (), *,
              touched: Sequence[str] | None = None, keys: bool = True,
              tally: TallySql | None = None) -> str:
    """The rev-gated upsert of staged rows into the real table (see the module docstring).

    A table with its own `merge` SQL gets that instead.

    `counted`: the recounts whose target is this table. A row the merge inserts gets their
    counters (and derived columns) computed from the source rows already stored, instead of
    the column defaults: the writer merges sources before targets, so the recount that follows
    an insert would have nothing to change, where it used to rewrite the new row (and its feed
    indexes) at once. The writer skips that recount where the source merged first (exact by
    construction: `WritePlan.counted_at_insert`) and runs it otherwise (a table counting its
    own rows — comment replies — cannot see the rows of the same statement).

    `tally`: this table's Tally deltas (`tally_sql`), measured in the same statement.

    Returns one row: `changed` (rows inserted or updated); for each tracked column (those in
    `touched`, when given) an array `touched_<col>` of its distinct old and new values over the
    changed rows; with `keys`, `merged_keys` (the changed keys, when the key is a single column);
    `inserted_keys` (those of them that were inserted, with `counted`); for a recount of the
    table's own rows among `counted` (a comment's replies), `inserted_named_by_<fk>`: the
    inserted keys that rows merged in the same statement name in `fk` — their insert-time
    count could not see those rows (a delete too: its row keeps the parent it had); and
    `refused_keys` / `refused_columns`: keys whose newer version tried to change immutable
    columns, with the columns' names. (The writer asks only for what it reads: every vote's URI
    and subject, built into arrays and decoded by the driver each batch for nothing, cost both
    sides.)
    """
    if table.merge is not None:
        if tally is not None:
            raise ValueError(f"table {table.name}: a hand-written merge cannot measure deltas")
        return table.merge
    key = ", ".join(table.key)
    version = table.version
    immutable = table.immutable
    names = [c.name for c in table.columns]
    newer = f"t.{version} < EXCLUDED.{version}"

    parts = [f"incoming AS ({incoming_sql(table)})"]
    tracked = table.tracked if touched is None else tuple(touched)
    if not set(tracked) <= set(table.tracked):
        raise ValueError(f"table {table.name}: {sorted(set(tracked) - set(table.tracked))} "
                         f"not tracked")
    # The stored version of each incoming key, read only where an output needs it: the probe
    # per staged row costs as much as a third of a vote's merge.
    if tracked or counted:
        prior_cols = list(dict.fromkeys([*table.key, *tracked]))
        parts.append(f"prior AS (SELECT {', '.join('t.' + c for c in prior_cols)} "
                     f"FROM {table.name} AS t JOIN incoming USING ({key}))")

    insert_cols = names + (["deleted_at"] if table.tombstones else []) + ["indexed_at"]
    select_cols = [f"t.{c}" for c in names] + (
        ["CASE WHEN t.deleted THEN now() END"] if table.tombstones else []) + ["now()"]
    # The inserted row as `t` (staged columns and `defaults`), as recounts' derived expressions
    # read the target row; `k.key` is its key, as recount queries read their subject.
    defaults = "".join(f", {sql} AS {c}" for c, sql in table.defaults)
    source = f"(SELECT i.*{defaults} FROM incoming AS i) AS t"
    if counted:
        if len(table.key) != 1:
            raise ValueError(f"table {table.name}: counters at insert need a single-column key")
        # Only a new row is counted. A stored one keeps its counters (the conflict discards
        # what this computes); its key is NULL here, so its count reads no rows at all —
        # counting a big community's posts on every profile update would grow with it.
        source += (f" CROSS JOIN LATERAL (SELECT CASE WHEN t.{key} IN (SELECT {key} FROM prior) "
                   f"THEN NULL ELSE t.{key} END AS key) AS k")
    for number, recount in enumerate(counted):
        derived = "".join(f", {expr} AS {c}" for c, expr in recount.derived)
        source += (f" CROSS JOIN LATERAL (SELECT c.*{derived} FROM ({recount.query}) AS c) "
                   f"AS r{number}")
        for counter in (*recount.columns, *(c for c, _ in recount.derived)):
            insert_cols.append(counter)
            select_cols.append(f"r{number}.{counter}")
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
    # An older version still fills immutable columns a tombstone lacks; a newer live version
    # that would change one is refused: the conflict leaves the row alone, and `refused`
    # (below) finds it among the few staged rows the merge did not write.
    fills = " OR ".join(f"(t.{c} IS NULL AND EXCLUDED.{c} IS NOT NULL)" for c in immutable)
    refusal = _refusal(table, "t", "EXCLUDED", alive="EXCLUDED.deleted_at IS NULL")
    where = f"({newer} OR {fills}) AND NOT ({refusal})" if immutable else newer
    own_fks = [r.source_fk for r in counted if r.source == table.name]  # counts its own rows
    returning = list(dict.fromkeys([*table.key, *table.tracked, *own_fks,
                                    *(tally.returning if tally is not None else ())]))
    parts.append(
        f"merged AS (INSERT INTO {table.name} AS t ({', '.join(insert_cols)}) "
        f"SELECT {', '.join(select_cols)} FROM {source} "
        f"ON CONFLICT ({key}) DO UPDATE SET {', '.join(updates)} WHERE {where} "
        f"RETURNING {', '.join('t.' + c for c in returning)})")

    if immutable:
        # Read in the statement's snapshot: `s` is the stored row as it was before the merge.
        which = ", ".join(f"CASE WHEN {_changes(c, 's', 'i')} THEN '{c}' END" for c in immutable)
        parts.append(f"refused AS (SELECT {', '.join('i.' + k for k in table.key)}, "
                     f"concat_ws(', ', {which}) AS columns FROM incoming AS i "
                     f"JOIN {table.name} AS s USING ({key}) "
                     f"WHERE ({', '.join('i.' + k for k in table.key)}) NOT IN "
                     f"(SELECT {key} FROM merged) AND {_refusal(table, 's', 'i', 'NOT i.deleted')})")
    if tally is not None:
        parts += tally.ctes

    outputs = ["(SELECT count(*) FROM merged) AS changed"]
    for col in tracked:
        outputs.append(
            f"ARRAY(SELECT {col} FROM merged WHERE {col} IS NOT NULL "
            f"UNION SELECT p.{col} FROM prior AS p JOIN merged USING ({key}) "
            f"WHERE p.{col} IS NOT NULL) AS touched_{col}")
    if len(table.key) == 1:
        if keys:
            outputs.append(f"ARRAY(SELECT {table.key[0]} FROM merged) AS merged_keys")
        if keys and counted:  # rows new to the table, whose counters the insert computed
            outputs.append(f"ARRAY(SELECT {key} FROM merged WHERE {key} NOT IN "
                           f"(SELECT {key} FROM prior)) AS inserted_keys")
            for fk in dict.fromkeys(own_fks):
                outputs.append(f"ARRAY(SELECT DISTINCT m.{fk} FROM merged AS m "
                               f"WHERE m.{fk} IN (SELECT {key} FROM merged) "
                               f"AND m.{fk} NOT IN (SELECT {key} FROM prior)) "
                               f"AS inserted_named_by_{fk}")
        if immutable:
            outputs.append(f"ARRAY(SELECT {table.key[0]} FROM refused) AS refused_keys")
            outputs.append("ARRAY(SELECT columns FROM refused) AS refused_columns")
    return "WITH " + ",\n".join(parts) + "\nSELECT " + ", ".join(outputs)


def _changes(column: str, stored: str, incoming: str) -> str:
    """SQL: the incoming version would change an immutable column the stored row has set."""
    return (f"({stored}.{column} IS NOT NULL "
            f"AND {incoming}.{column} IS DISTINCT FROM {stored}.{column})")


def _refusal(table: Table, stored: str, incoming: str, alive: str) -> str:
    """SQL: the incoming version is newer, live (`alive`: a staged row's `deleted` or the
    inserted row's `deleted_at` says so), and would change an immutable column — it is refused."""
    live = f"{alive} AND " if table.tombstones else ""
    changes = " OR ".join(_changes(c, stored, incoming) for c in table.immutable)
    return f"{live}{stored}.{table.version} < {incoming}.{table.version} AND ({changes})"


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


def _update_counters(recount: Recount, counted: str) -> str:
    """UPDATE the target rows that `counted` (rows: key, then the counters by name, as `c`) lists
    to those counters and the derived columns; skip rows it would not change."""
    sets = [f"{c} = c.{c}" for c in recount.columns] + [f"{c} = {e}" for c, e in recount.derived]
    old = [f"t.{c}" for c in recount.columns] + [f"t.{c}" for c, _ in recount.derived]
    new = [f"c.{c}" for c in recount.columns] + [e for _, e in recount.derived]
    return (f"UPDATE {recount.target} AS t SET {', '.join(sets)} FROM ({counted}) AS c "
            f"WHERE t.{recount.target_key} = c.key "
            f"AND ({', '.join(old)}) IS DISTINCT FROM ({', '.join(new)})")


def recount_sql(recount: Recount) -> str:
    """Set the counters of each subject in $1 (text[]) to their recount; skip unchanged rows."""
    return _update_counters(
        recount, f"SELECT k.key, q.* FROM unnest($1::text[]) AS k(key) {_counts(recount)}")


class TallySql(NamedTuple):
    """The SQL keeping a source table's Tally recounts by deltas (see the module docstring).

    The source's merge (`merge_sql`, given this) also measures the change: it reads each pair
    its merged rows name as stored when the statement began, and as the merge leaves it, and
    stores (after − before) per subject. After every merge of the batch the writer runs `apply`
    with the subjects it is about to recount in full; `apply` consumes the deltas, so a part of
    a split write — committed to its savepoint or rolled back — leaves the table empty.
    """

    ddl: tuple[str, ...]  # the temp table of deltas
    returning: tuple[str, ...]  # the source columns the merge's RETURNING must include
    ctes: tuple[str, ...]  # appended to the merge's WITH, after `merged`
    apply: str  # consume the deltas; add them to each target's counters, except subjects in $1


def _newer(a: str, b: str) -> str:
    """SQL: pair candidate `a` (version, counted) is at least as new as `b`, in `Tally.newest`'s
    order (version, then value descending, where NULL sorts first)."""
    return (f"({a}.version > {b}.version OR ({a}.version = {b}.version "
            f"AND ({a}.counted IS NULL OR {a}.counted >= {b}.counted)))")


def tally_sql(source: Table, recounts: Sequence[Recount]) -> TallySql:
    """The delta SQL of the Tally recounts of `source` (they must share one fk, and Tallies
    counting the same rows: a comment's replies and a post's comments are both its children).

    A pair's counted row can only change if one of the pair's rows is merged, so the pairs are
    those of the merged rows, as RETURNING shows them: the subject is immutable (merge_sql), so
    a merged row's subject is the one it had (a delete keeps it) or, where it had none, the one
    it gets. Per pair, in the merge's own statement:

      * before: the newest live row as stored — the statement's snapshot does not see its own
        changes — by one probe of the pair's index (subject and owner, version descending);
      * after: the newer of the pair's newest live merged row and its newest live row the merge
        did not touch. That is the stored one unless the merge changed it (an update or
        delete of the counted row); only then is the index probed again, past merged rows.

    The deltas wait for `apply` (after every merge of the batch) so that a subject counted
    otherwise — its post or comment row was just changed (recounted in full) or inserted
    (counted by the insert), or a purge touched it — is written once, instead of twice. Until
    then nothing else writes those counters, so adding a delta later gives the same result. A
    delta of a subject with no target row updates nothing (inserting that row counts it); a key
    that is not a subject of a target (a comment's URI in post_stats) matches no row.

    `apply` returns `subjects` (deltas taken) and `updated` (target rows changed).
    """
    first = recounts[0]
    tally = first.tally
    if tally is None or any(r.tally is None or not r.tally.same_rows(tally)
                            or r.source != source.name or r.source_fk != first.source_fk
                            for r in recounts):
        raise ValueError(f"tally recounts of {source.name} must count the same rows, by one fk")
    weighing: dict[str, Tally] = {}
    for recount in recounts:
        assert recount.tally is not None
        for counter, weights in recount.tally.counters:
            if dict(weighing.setdefault(counter, recount.tally).counters)[counter] != weights:
                raise ValueError(f"tally recounts of {source.name} weigh {counter} differently")
    if not source.tombstones:
        raise ValueError(f"table {source.name}: a Tally counts live rows, it needs tombstones")
    if tally.owner_is_key != (source.key == (tally.owner,)):
        raise ValueError(f"tally of {source.name}: owner_is_key must say whether "
                         f"{tally.owner} is the key {source.key}")
    if len(source.key) != 1:
        raise ValueError(f"tally of {source.name}: the source needs a single-column key")
    types = {c.name: c.type for c in source.columns}
    deltas = f"{source.stage}_delta"
    key, fk, owner = source.key[0], first.source_fk, tally.owner
    value, version = tally.value, tally.version
    counters = list(dict.fromkeys(c for r in recounts for c in r.columns))
    ddl = (f"CREATE TEMP TABLE IF NOT EXISTS {deltas} (subject {types[fk]}, "
           f"{', '.join(f'{c} bigint' for c in counters)}) ON COMMIT DELETE ROWS",)

    # One row per pair the merge touched: its newest live merged row (live = false: none).
    newest = (f"tally_new AS (SELECT DISTINCT ON (m.{fk}, m.{owner}) m.{fk} AS subject, "
              f"m.{owner} AS owner, m.{version} AS version, m.{value} AS counted, "
              f"m.deleted_at IS NULL AS live FROM merged AS m WHERE m.{fk} IS NOT NULL "
              f"ORDER BY m.{fk}, m.{owner}, m.deleted_at IS NULL DESC, {tally.newest('m')})")
    if tally.owner_is_key:  # the pair's only row is the merged one
        measure = [f"tally_change AS (SELECT n.subject, b.counted AS before, "
                   f"CASE WHEN n.live THEN n.counted END AS after "
                   f"FROM tally_new AS n {_stored_pair(first, key)})"]
    else:
        # `gone`: the merge changed the stored counted row; then the pair's next stored row the
        # merge did not touch competes instead (a probe only for those pairs). Materialized so
        # that the merged keys are hashed once, not once per expression reading `gone`.
        stored = (f"tally_stored AS MATERIALIZED (SELECT n.subject, n.owner, n.live, n.version, "
                  f"n.counted, b.version AS stored_version, b.counted AS stored_counted, "
                  f"b.key IN (SELECT {key} FROM merged) AS gone "
                  f"FROM tally_new AS n {_stored_pair(first, key)})")
        change = (f"tally_change AS (SELECT s.subject, s.stored_counted AS before, "
                  f"CASE WHEN s.live AND (o.version IS NULL OR {_newer('s', 'o')}) "
                  f"THEN s.counted ELSE o.counted END AS after FROM tally_stored AS s "
                  f"LEFT JOIN LATERAL (SELECT rest.{version} AS version, rest.{value} AS counted "
                  f"{_live(first, 'rest', 's.subject')} AND rest.{owner} = s.owner AND s.gone "
                  f"AND rest.{key} NOT IN (SELECT {key} FROM merged) "
                  f"ORDER BY {tally.newest('rest')} LIMIT 1) AS r ON true "
                  f"CROSS JOIN LATERAL (SELECT "
                  f"CASE WHEN s.gone THEN r.version ELSE s.stored_version END AS version, "
                  f"CASE WHEN s.gone THEN r.counted ELSE s.stored_counted END AS counted) AS o)")
        measure = [stored, change]
    sums = [f"sum(({weighing[c].weight(c, 'd.after')}) - ({weighing[c].weight(c, 'd.before')}))"
            for c in counters]
    measured = (f"tally_delta AS (INSERT INTO {deltas} (subject, {', '.join(counters)}) "
                f"SELECT d.subject, {', '.join(sums)} FROM tally_change AS d "
                f"WHERE d.after IS DISTINCT FROM d.before GROUP BY d.subject "
                f"HAVING ({', '.join(sums)}) IS DISTINCT FROM ({', '.join('0' for _ in sums)}))")

    totals = ", ".join(f"sum(x.{c}) AS {c}" for c in counters)
    parts = [f"taken AS (DELETE FROM {deltas} RETURNING subject, {', '.join(counters)})",
             (f"delta AS (SELECT x.subject, {totals} FROM taken AS x WHERE NOT EXISTS "
              f"(SELECT FROM unnest($1::text[]) AS r(key) WHERE r.key = x.subject) "
              f"GROUP BY x.subject)")]
    updated = []
    for number, recount in enumerate(recounts):
        # The new counters (stored + delta) as `c`, so derived expressions read them as in a
        # recount; the stats row is read again by key because UPDATE … FROM cannot refer to t.
        new = ", ".join(f"s.{c} + d.{c} AS {c}" for c in recount.columns)
        counted = (f"SELECT s.{recount.target_key} AS key, {new} FROM delta AS d "
                   f"JOIN {recount.target} AS s ON s.{recount.target_key} = d.subject")
        if recount.key_contains is not None:  # skip probing post_stats for comment URIs
            if "'" in recount.key_contains:
                raise ValueError(f"recount of {recount.target}: key_contains must not quote")
            counted += f" WHERE strpos(d.subject, '{recount.key_contains}') > 0"
        parts.append(f"target_{number} AS ({_update_counters(recount, counted)} RETURNING 1)")
        updated.append(f"(SELECT count(*) FROM target_{number})")
    apply = ("WITH " + ",\n".join(parts) + "\nSELECT (SELECT count(*) FROM delta) AS subjects, "
             f"{' + '.join(updated)} AS updated")
    returning = tuple(dict.fromkeys((key, fk, owner, value, version, "deleted_at")))
    return TallySql(ddl, returning, (newest, *measure, measured), apply)


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
