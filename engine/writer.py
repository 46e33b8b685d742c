"""Writer: one transaction per batch — new DIDs → COPY → staging → rev-gated merge → counters →
rejects → cursor.

The DIDs the rows mention are registered in `identities` first (only those this writer has not
seen committed: engine/known_identities.py), so an account or identity event finds a DID
mentioned for the first time in its own batch.

Tables merge in `merge_order`: a recount's source before its target, so a target row inserted
in the batch is inserted with exact counters and needs no recount (a table counting its own
rows — a comment's replies — recounts only the new rows whose children merged with them).
Counters (engine/tables.py):
a Tally recount (votes, and every count of children) is kept by deltas its source's merge
measures, added once every table is merged. Recounted in full after all merges
instead: any other recount, and a Tally's subjects that were purged or whose own row changed in
a column a derived counter reads (the hot key reads created_at); their deltas are dropped.

Everything a batch changes commits together with its cursor, so a crash at any point leaves
either the whole batch or none of it, and a restart from the stored cursor replays at most what
was not committed (the merges make replays harmless).

Error handling:
  * DatabaseUnavailable (connection lost, server restarting): the same batch is retried with
    backoff; it is never dropped. After `Breaker.failure_threshold` consecutive failures the
    writer raises BreakerOpen and the supervisor pauses intake (see pipeline.py).
  * Any other DatabaseError means Postgres refused some row: the batch is written again in
    halves, each in a savepoint, a refused half split again until each refused event stands
    alone and becomes a reject (database_error) — O(k log n) sub-writes for k refused events,
    so one bad event cannot make its whole batch crawl.
    So does a value the driver cannot even encode (UNENCODABLE: a jsonb deeper than orjson
    writes, an integer beyond 64 bits): one such event must not stop the whole stream.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from typing import Any, Final

import asyncpg
import trio

from . import metrics
from .backoff import backoff_delay
from .batcher import Batch, event_labels, reject_row, release_batches
from .breaker import Breaker
from .db import Database
from .errors import BreakerOpen, DatabaseError, DatabaseUnavailable, RejectedEvent, RejectReason
from .events import Event
from .known_identities import KnownIdentities
from .table_stats import GrowthAnalyzer, analyze, table_state
from .tables import (Recount, RowOp, Table, TallySql, merge_sql, purge_sql, recount_sql,
                     stage_ddl, tally_sql)

__all__ = ["WritePlan", "Writer", "load_cursor", "merge_order", "take_writer_lock"]

LOGGER = logging.getLogger(__name__)

# Raised by asyncpg's encoders on the client side for a value that cannot be sent (orjson refuses
# jsonb nested deeper than 254 levels although it parses up to 1024; int8 refuses ints beyond 64
# bits). They are the event's fault, like a Postgres refusal, and handled the same way.
UNENCODABLE: Final = (TypeError, OverflowError, ValueError)
# Between attempts at a failing batch: 0.1 s doubling to 5 s (the breaker opens long before).
RETRY_BASE_S: Final = 0.1
RETRY_CAP_S: Final = 5.0


class _Handled:
    """Every event that reached the writer had a handler, so its collection is a known label."""

    def __contains__(self, item: object) -> bool:
        return True


_HANDLED: Final = _Handled()
_REJECT_COLUMNS: Final = ("fingerprint", "reason", "detail", "source", "did", "collection", "rkey",
                          "rev", "time_us", "cursor", "raw", "raw_size", "seen_count")
_STAGE_REJECTS_DDL: Final = """
    CREATE TEMP TABLE IF NOT EXISTS stage_ingest_rejects (
        fingerprint bytea, reason text, detail text, source text, did text COLLATE "C",
        collection text, rkey text, rev text, time_us bigint, cursor bigint, raw bytea,
        raw_size integer, seen_count integer
    ) ON COMMIT DELETE ROWS"""
# Staged rows are unique per fingerprint (collapsed in Python), in arrival order.
_MERGE_REJECTS: Final = f"""
    INSERT INTO ingest_rejects ({', '.join(_REJECT_COLUMNS)})
    SELECT {', '.join(_REJECT_COLUMNS)} FROM stage_ingest_rejects
    ON CONFLICT (fingerprint) DO UPDATE
       SET seen_count = ingest_rejects.seen_count + EXCLUDED.seen_count, last_seen_at = now()"""
# Before the merges, so that an account or identity event finds a DID first mentioned in the
# same batch. Sorted by the caller: index order.
_REGISTER_IDENTITIES: Final = """
    INSERT INTO identities (did) SELECT m.did FROM unnest($1::text[]) AS m(did)
    ON CONFLICT (did) DO NOTHING"""
# Writers take turns: each batch transaction first takes this transaction-level advisory lock.
# Several writers may run at once (one per FIREHOSE_URL, `coves backfill` beside `coves run`), and
# a recount counts source rows in its own snapshot: two concurrent transactions touching one
# subject would each miss the other's new rows and store a wrong count. A delta likewise reads a
# pair before and after its own merge and must not see another writer's change in between. One
# at a time keeps every counter exact; a lone writer pays one uncontended lock per batch;
# `coves reconcile --fix` takes it too. (The key spells "coves-w".)
WRITER_LOCK_KEY: Final = 0x636F7665732D77
_TAKE_WRITER_LOCK: Final = "SELECT pg_advisory_xact_lock($1)"


async def take_writer_lock(connection: asyncpg.Connection) -> None:
    """Wait for the writers' turn; held until the current transaction ends."""
    await connection.execute(_TAKE_WRITER_LOCK, WRITER_LOCK_KEY)
# The cursor never moves back: a replay of older events (rewind, redrive) keeps the stored one.
_UPSERT_CURSOR: Final = """
    INSERT INTO ingest_cursors (source, cursor, event_time_us, updated_at)
    VALUES ($1, $2, $3, now())
    ON CONFLICT (source) DO UPDATE
       SET cursor = EXCLUDED.cursor, event_time_us = EXCLUDED.event_time_us, updated_at = now()
     WHERE ingest_cursors.cursor < EXCLUDED.cursor"""


@dataclasses.dataclass(frozen=True)
class WritePlan:
    """The SQL for a set of tables and recounts, built once."""

    tables: tuple[Table, ...]
    recounts: tuple[Recount, ...]
    order: tuple[Table, ...] = dataclasses.field(init=False)  # in which a batch merges them
    merge: dict[Table, str] = dataclasses.field(init=False)
    purge: dict[Table, str] = dataclasses.field(init=False)
    recount: dict[Recount, str] = dataclasses.field(init=False)
    by_source: dict[str, tuple[Recount, ...]] = dataclasses.field(init=False)
    by_target: dict[str, tuple[Recount, ...]] = dataclasses.field(init=False)
    tally: dict[Table, TallySql] = dataclasses.field(init=False)
    tallied: dict[Table, tuple[Recount, ...]] = dataclasses.field(init=False)
    full_by_source: dict[str, tuple[Recount, ...]] = dataclasses.field(init=False)
    # Recounts whose source merges before their target: a target row the batch inserts already
    # holds its exact counters (tables.merge_sql), so it needs no recount.
    counted_at_insert: frozenset[Recount] = dataclasses.field(init=False)
    # Where each generated merge's rows hold the DIDs to register (Table.actors).
    actors: dict[Table, tuple[int, ...]] = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "by_source", {t.name: tuple(r for r in self.recounts if r.source == t.name)
                                 for t in self.tables})
        set_(self, "by_target", {t.name: tuple(r for r in self.recounts if r.target == t.name)
                                 for t in self.tables})
        set_(self, "order", merge_order(self.tables, self.recounts))
        position = {t.name: n for n, t in enumerate(self.order)}
        generated = {t.name for t in self.tables if t.merge is None}  # merge_sql counts inserts
        set_(self, "counted_at_insert", frozenset(
            r for r in self.recounts if r.source in position and r.target in generated
            and position[r.source] < position[r.target]))
        set_(self, "actors", {t: tuple(t.staged_names.index(c) for c in t.actors)
                              for t in self.tables if t.actors and t.merge is None})
        set_(self, "purge", {t: purge_sql(t) for t in self.tables if t.repo is not None})
        set_(self, "recount", {r: recount_sql(r) for r in self.recounts})
        # Tally recounts follow their source's merges by deltas; the rest recount what it touched.
        set_(self, "tallied", {
            t: tallies for t in self.tables
            if (tallies := tuple(r for r in self.by_source[t.name] if r.tally is not None))})
        set_(self, "tally", {t: tally_sql(t, tallies) for t, tallies in self.tallied.items()})
        set_(self, "full_by_source", {
            t.name: tuple(r for r in self.by_source[t.name] if r.tally is None) for t in self.tables})
        # An inserted row gets its counters from what is stored (sources merge first). A merge
        # reports the subjects its rows touched only for full recounts, and its keys only to a
        # recount's target (_apply_rows reads nothing else).
        set_(self, "merge", {t: merge_sql(
            t, self.by_target[t.name],
            touched=list(dict.fromkeys(r.source_fk for r in self.full_by_source[t.name])),
            keys=bool(self.by_target[t.name]), tally=self.tally.get(t)) for t in self.tables})

    def staging_ddl(self) -> list[str]:
        return ([stage_ddl(t) for t in self.tables] + [d for s in self.tally.values() for d in s.ddl]
                + [_STAGE_REJECTS_DDL])

    async def create_staging(self, connection: asyncpg.Connection) -> None:
        """Per-connection set-up for the writer's pool (temp tables live per session)."""
        for ddl in self.staging_ddl():
            await connection.execute(ddl)


def merge_order(tables: Sequence[Table], recounts: Sequence[Recount]) -> tuple[Table, ...]:
    """`tables` with each recount's source before its target and each record table before its
    stats twin; otherwise as given.

    Counted sources first: a target row inserted later in the batch then gets its counters from
    rows already merged (tables.merge_sql) and needs no recount. (A table counting its own rows
    — comment replies — cannot come first; its new rows are recounted.)
    The twin order is required: a stats row must not merge a version its record refused.
    """
    names = {t.name for t in tables}
    before: dict[str, set[str]] = {t.name: set() for t in tables}
    for recount in recounts:
        if recount.source != recount.target and {recount.source, recount.target} <= names:
            before[recount.target].add(recount.source)
    for table in tables:
        if table.twin_of in names:
            before[table.name].add(table.twin_of)
    ordered: list[Table] = []
    placed: set[str] = set()
    while len(ordered) < len(tables):
        ready = [t for t in tables if t.name not in placed and before[t.name] <= placed]
        if not ready:
            raise ValueError(f"recounts and twins form a cycle among {sorted(names - placed)}")
        ordered.append(ready[0])
        placed.add(ready[0].name)
    return tuple(ordered)


# ---- the asyncio side: each function runs inside one transaction on one connection ----

Refused = tuple[Table, str, str]  # (table, key, immutable columns the newer version changed)


async def _apply_rows(connection: asyncpg.Connection, plan: WritePlan,
                      rows: dict[Table, list[tuple[Any, ...]]],
                      known: KnownIdentities | None = None,
                      registered: list[str] | None = None) -> list[Refused]:
    """Register the DIDs the rows mention, COPY, merge and recount; return the versions the
    merges refused.

    `known`: DIDs not to send again; those sent are added to `registered` (for `known` once
    the transaction commits).
    """
    await _register_identities(connection, plan, rows, known, registered)
    touched: dict[Recount, set[str]] = defaultdict(set)  # subjects to recount in full
    inserted: dict[Recount, set[str]] = defaultdict(set)  # new subjects, counted at insert
    measured: list[Table] = []  # sources whose deltas wait for the end of the batch
    refused: list[Refused] = []
    refused_keys: dict[str, set[str]] = {}
    if not rows.keys() <= plan.merge.keys():  # a table the plan does not know: never drop rows
        raise ValueError(f"no merge planned for {[t.name for t in rows if t not in plan.merge]}")
    for table in plan.order:
        table_rows = rows.get(table)
        if not table_rows:
            continue
        if table.twin_of in refused_keys:  # never merge a version the twin refused
            skip, at = refused_keys[table.twin_of], table.staged_names.index(table.key[0])
            table_rows = [row for row in table_rows if row[at] not in skip]
            if not table_rows:
                continue
        await connection.copy_records_to_table(table.stage, records=table_rows,
                                               columns=table.staged_names)
        result = await connection.fetchrow(plan.merge[table])
        if table in plan.tally and result["changed"]:  # it measured deltas: applied below
            measured.append(table)
        if table.immutable and result["refused_keys"]:
            refused += [(table, key, columns) for key, columns
                        in zip(result["refused_keys"], result["refused_columns"])]
            refused_keys[table.name] = set(result["refused_keys"])
        if not result["changed"]:
            continue
        for recount in plan.full_by_source[table.name]:
            touched[recount].update(result[f"touched_{recount.source_fk}"])
        # A subject row inserted after its sources merged got exact counters at insert: its
        # delta is dropped. One updated keeps its counters, but columns derived from its own
        # (the hot key reads created_at) are recomputed: a full recount, Tally or not.
        targets = plan.by_target[table.name]
        if targets:
            merged = result["merged_keys"]
            new = set(result.get("inserted_keys") or ())  # none from a hand-written merge
            changed = [key for key in merged if key not in new]
            for recount in targets:
                if recount in plan.counted_at_insert:
                    inserted[recount].update(new)
                    if recount.derived:
                        touched[recount].update(changed)
                elif recount.source == table.name and new:
                    # The table counts its own rows (a comment's replies): an inserted row was
                    # counted from the rows stored before this statement, so only one that rows
                    # merged with it name can have missed some.
                    named = set(result[f"inserted_named_by_{recount.source_fk}"])
                    inserted[recount].update(new - named)
                    touched[recount].update(named)
                    touched[recount].update(changed)
                else:
                    touched[recount].update(merged)
        if "purged_repos" in result.keys() and result["purged_repos"]:
            await _purge(connection, plan, result["purged_repos"], touched)
    # Deltas, except to subjects recounted in full just after (one update per row, not two)
    # and to those inserted with their counts (the batch's rows already among them).
    for table in measured:
        recounted = {key for recount in plan.tallied[table]
                     for key in recount.subjects(touched.get(recount, set())
                                                 | inserted.get(recount, set()))}
        await connection.execute(plan.tally[table].apply, list(recounted))
    for recount, keys in touched.items():
        subjects = recount.subjects(keys)
        if subjects:
            await connection.execute(plan.recount[recount], subjects)
    return refused


async def _register_identities(connection: asyncpg.Connection, plan: WritePlan,
                               rows: dict[Table, list[tuple[Any, ...]]],
                               known: KnownIdentities | None,
                               registered: list[str] | None) -> None:
    # Every version's DIDs, not only the newest one's: a batch boundary must not decide which
    # DIDs are tracked.
    mentioned: set[str] = set()
    for table, positions in plan.actors.items():
        table_rows = rows.get(table)
        if table_rows:
            for at in positions:  # map + itemgetter: the loop over rows runs in C
                mentioned.update(map(itemgetter(at), table_rows))
    mentioned.discard(None)  # a delete stages its key only: its other DID columns are empty
    new = known.unknown(mentioned) if known is not None else sorted(mentioned)
    if new:
        await connection.execute(_REGISTER_IDENTITIES, new)
        if registered is not None:
            registered += new


async def _purge(connection: asyncpg.Connection, plan: WritePlan, repos: list[str],
                 touched: dict[Recount, set[str]]) -> None:
    """Tombstone everything in deleted accounts' repos; note the subjects to recount (in full,
    Tally recounts included: no delta was taken around this change)."""
    for table, sql in plan.purge.items():
        for row in await connection.fetch(sql, repos):
            for recount in plan.by_source[table.name]:
                if row[recount.source_fk] is not None:
                    touched[recount].add(row[recount.source_fk])


async def _finish(connection: asyncpg.Connection, batch: Batch,
                  rejects: list[tuple[Any, ...]]) -> None:
    # Redrive: drop the rejects this batch re-applied first, then store what was refused now. An
    # event Postgres refuses again gets the same fingerprint; the other order bumped its old row
    # and then deleted it, dropping the event.
    if batch.resolved_rejects:
        await connection.execute("DELETE FROM ingest_rejects WHERE id = ANY($1::bigint[])",
                                 batch.resolved_rejects)
    if rejects:
        await connection.copy_records_to_table("stage_ingest_rejects", records=_collapse(rejects),
                                               columns=_REJECT_COLUMNS)
        await connection.execute(_MERGE_REJECTS)
    if batch.cursor is not None:
        await connection.execute(_UPSERT_CURSOR, batch.source, batch.cursor, batch.last_time_us)


def _collapse(rejects: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """One row per fingerprint, first-seen order, with how many times it was seen."""
    seen: dict[bytes, list[Any]] = {}
    for row in rejects:
        entry = seen.get(row[0])
        if entry is None:
            seen[row[0]] = [row, 1]
        else:
            entry[1] += 1
    return [row + (count,) for row, count in seen.values()]


def _refused_events(entries: list[tuple[Event, list[RowOp]]],
                    refused: list[Refused]) -> list[tuple[Event, RejectedEvent]]:
    """Find the event behind each refused version: the newest one staging that key."""
    found: list[tuple[Event, RejectedEvent]] = []
    seen: set[int] = set()  # a record and its stats twin refuse the same version: one reject
    for table, key, columns in refused:
        key_at = table.staged_names.index(table.key[0])
        candidates = [event for event, ops in entries
                      if any(op.table is table and op.row[key_at] == key for op in ops)]
        if candidates:
            event = max(candidates, key=lambda e: e.rev)
            if id(event) in seen:
                continue
            seen.add(id(event))
            detail = f"{columns}: cannot change once set (update of {key})"
            found.append((event, RejectedEvent(RejectReason.IMMUTABLE_FIELD, detail)))
    return found


def _reject_rows(batch: Batch, late: list[tuple[Event, RejectedEvent]]) -> list[tuple[Any, ...]]:
    return batch.rejects + [reject_row(batch.source, rejected, event.raw, event, event.cursor)
                            for event, rejected in late]


async def _write_batch(connection: asyncpg.Connection, plan: WritePlan, batch: Batch,
                       known: KnownIdentities | None = None,
                       registered: list[str] | None = None) -> list[tuple[Event, RejectedEvent]]:
    """One transaction for the whole batch; return the events refused while merging."""
    async with connection.transaction():
        await take_writer_lock(connection)
        refused = await _apply_rows(connection, plan, batch.rows, known, registered)
        late = _refused_events(batch.events, refused)
        await _finish(connection, batch, _reject_rows(batch, late))
    return late


Entries = list[tuple[Event, list[RowOp]]]


async def _write_split(connection: asyncpg.Connection, plan: WritePlan,
                       batch: Batch) -> list[tuple[Event, RejectedEvent]]:
    """Write a batch Postgres refused: halves in savepoints, splitting again where refused, so
    k refused events cost O(k log n) sub-writes; each refused event alone becomes a reject."""
    late: list[tuple[Event, RejectedEvent]] = []
    async with connection.transaction():
        await take_writer_lock(connection)
        middle = len(batch.events) // 2
        for half in (batch.events[:middle], batch.events[middle:]):
            await _write_part(connection, plan, half, late)
        await _finish(connection, batch, _reject_rows(batch, late))
    return late


async def _write_part(connection: asyncpg.Connection, plan: WritePlan, entries: Entries,
                      late: list[tuple[Event, RejectedEvent]]) -> None:
    if not entries:
        return
    rows: dict[Table, list[tuple[Any, ...]]] = defaultdict(list)
    for _event, ops in entries:
        for table, row in ops:
            rows[table].append(row)
    try:
        async with connection.transaction():
            refused = await _apply_rows(connection, plan, rows)
    except (asyncpg.PostgresError, *UNENCODABLE) as exc:
        sqlstate = getattr(exc, "sqlstate", "") or ""
        if sqlstate.startswith("08") or sqlstate.startswith("57P"):
            raise
        if len(entries) == 1:
            detail = f"{sqlstate} {type(exc).__name__}: {exc}".strip()
            late.append((entries[0][0], RejectedEvent(RejectReason.DATABASE_ERROR, detail)))
            return
        middle = len(entries) // 2
        await _write_part(connection, plan, entries[:middle], late)
        await _write_part(connection, plan, entries[middle:], late)
    else:
        late += _refused_events(entries, refused)


async def write_once(db: Database, plan: WritePlan,
                     batch: Batch) -> list[tuple[Event, RejectedEvent]]:
    """Commit one batch in a single attempt, through the same merge, recounts and lock as the
    Writer (the API's read-after-write rows: a failure goes back to the request, not a retry
    loop). Returns the events whose versions the merges refused."""
    return await db.run(_write_batch, plan, batch)


async def load_cursor(db: Database, source: str) -> int | None:
    """The committed cursor of `source`, or None if it never committed."""
    value: int | None = await db.fetchval("SELECT cursor FROM ingest_cursors WHERE source = $1", source)
    return value


class Writer:
    """Commits batches from a channel, in order.

    Args:
        db: the writer's pool (one connection with the staging tables; see `WritePlan.create_staging`).
        plan: the SQL to run.
        breaker: the database breaker.
        label: the source label for metrics.
        on_commit: called after each commit with the batch (lag clock, tests). Its events,
            rows and rejects are freed after the call (`release_batches`); the rest stays.
    """

    def __init__(self, db: Database, plan: WritePlan, *, breaker: Breaker, label: str,
                 on_commit: Callable[[Batch], None] | None = None) -> None:
        self._db = db
        self._plan = plan
        self._breaker = breaker
        self._label = label
        self._on_commit = on_commit
        self.committed_cursor: int | None = None
        self._growth = GrowthAnalyzer({table.name: table.key for table in plan.tables})
        self._known = KnownIdentities()

    async def run(self, receive: trio.MemoryReceiveChannel[Batch], *,
                  on_idle: Callable[[], None] | None = None) -> None:
        """Write every batch until the channel closes.

        Args:
            receive: the batches, in order.
            on_idle: called right before each wait for a batch when none is queued (the
                batcher's `writer_idle`: group commit ships a held batch then, without polling).

        Raises:
            BreakerOpen: the database kept failing; the batch in hand is not committed.
        """
        written, to_release = trio.open_memory_channel[Batch](1)  # freeing keeps up: ~5 ms a batch
        async with receive, trio.open_nursery() as nursery:
            nursery.start_soon(release_batches, to_release)
            async with written:
                while True:
                    # Signal, then receive without a checkpoint in between: by the time the
                    # batcher's flusher runs, this task already waits on the channel.
                    if on_idle is not None and receive.statistics().current_buffer_used == 0:
                        on_idle()
                    try:
                        batch = await receive.receive()
                    except trio.EndOfChannel:
                        return
                    metrics.QUEUE_DEPTH.labels(self._label).set(
                        receive.statistics().current_buffer_used)
                    await self.write(batch)
                    await written.send(batch)  # freed while the next batch is written

    async def write(self, batch: Batch) -> int:
        """Commit one batch, retrying transient failures (see the module docstring).

        Returns:
            How many of its events were refused while merging (stored as rejects).
        """
        if self._growth.estimates is None:
            await self._read_table_sizes()
        attempt = 0
        split = False
        while True:
            started = time.perf_counter()
            registered: list[str] = []  # DIDs this attempt registers: known once it commits
            try:
                if split:  # rare: parts roll back on their own; no DID is remembered
                    late = await self._db.run(_write_split, self._plan, batch)
                else:
                    late = await self._db.run(_write_batch, self._plan, batch, self._known,
                                              registered)
                break
            except DatabaseUnavailable as exc:
                metrics.DB_ERRORS.labels(self._label, "unavailable").inc()
                self._breaker.record_failure()
                if self._breaker.is_open:
                    raise BreakerOpen(f"database unavailable after {attempt + 1} attempts") from exc
                delay = backoff_delay(attempt, base_s=RETRY_BASE_S, cap_s=RETRY_CAP_S)
                LOGGER.warning("batch write failed, retrying", extra={
                    "batch": batch.id, "attempt": attempt, "delay_s": round(delay, 3), "error": str(exc)})
                metrics.BATCH_RETRIES.labels(self._label).inc()
                attempt += 1
                await trio.sleep(delay)
            except (DatabaseError, *UNENCODABLE) as exc:
                if split or not batch.events:
                    raise  # not an event's fault (a bug or a broken schema): stop loudly
                metrics.DB_ERRORS.labels(self._label, "refused").inc()
                LOGGER.error("batch refused by postgres, writing it in parts", extra={
                    "batch": batch.id, "error": str(exc), "events": len(batch.events)})
                split = True
        self._breaker.record_success()
        self._known.committed(registered)
        self._committed(batch, late, time.perf_counter() - started)
        await self._refresh_statistics(batch)
        return len(late)

    async def _refresh_statistics(self, batch: Batch) -> None:
        """ANALYZE the tables that doubled since their last analysis (engine/table_stats.py).
        Only the plans' quality depends on it: a failure is logged, never raised."""
        growth = self._growth
        if growth.estimates is None:
            return  # sizes unknown: the write path could not read them (logged)
        growth.count({table.name: len(rows) for table, rows in batch.rows.items()})
        due = growth.due()
        if not due:
            return
        try:
            estimates = await self._db.run(analyze, due)
        except (DatabaseError, DatabaseUnavailable) as exc:
            LOGGER.warning("could not refresh planner statistics", extra={"error": str(exc)})
            return
        growth.analyzed(estimates)
        LOGGER.info("analyzed growing tables", extra={"rows": estimates})

    async def _read_table_sizes(self) -> None:
        """Before the first write: the tables' sizes and changes since their last analysis."""
        try:
            self._growth.started(*await self._db.run(table_state, self._growth.tables))
        except (DatabaseError, DatabaseUnavailable) as exc:
            LOGGER.warning("could not read table sizes", extra={"error": str(exc)})

    def _committed(self, batch: Batch, late: list[tuple[Event, RejectedEvent]],
                   seconds: float) -> None:
        label = self._label
        if batch.cursor is not None:
            self.committed_cursor = max(batch.cursor, self.committed_cursor or batch.cursor)
            metrics.COMMITTED_CURSOR.labels(label).set(self.committed_cursor)
        metrics.BATCH_SIZE.labels(label).observe(batch.size)
        metrics.BATCH_FLUSH_SECONDS.labels(label).observe(seconds)
        for (collection, operation), count in batch.received.items():
            metrics.EVENTS_RECEIVED.labels(label, collection, operation).inc(count)
        applied = batch.applied
        rejected = batch.rejected
        if late:
            applied, rejected = applied.copy(), rejected.copy()
            for event, reject in late:
                applied[event_labels(event, _HANDLED)] -= 1
                rejected[reject.reason.value] += 1
        for (collection, operation), count in applied.items():
            if count > 0:
                metrics.EVENTS_APPLIED.labels(label, collection, operation).inc(count)
        for reason, count in batch.skipped.items():
            metrics.EVENTS_SKIPPED.labels(label, reason).inc(count)
        for reason, count in rejected.items():
            metrics.EVENTS_REJECTED.labels(label, reason).inc(count)
        LOGGER.debug("batch committed", extra={
            "batch": batch.id, "events": batch.size, "cursor": batch.cursor,
            "seconds": round(seconds, 4), "late_rejects": len(late)})
        if self._on_commit is not None:
            self._on_commit(batch)


def rows_by_table(ops: Iterable[RowOp]) -> dict[Table, list[tuple[Any, ...]]]:
    """Group RowOps per table (used by redrive and tests)."""
    rows: dict[Table, list[tuple[Any, ...]]] = defaultdict(list)
    for table, row in ops:
        rows[table].append(row)
    return rows
