"""Wiring of the ingest pipeline, and its supervisor.

    source ──Event──► router ──rows──► batcher ══Batch══► writer ──COMMIT──► Postgres
    (task: read, decode, handle, add)   (task: flush)  (bounded)  (task: one txn per batch)
                                           ▲                           │
                                           └──────── idle signal ──────┘

The writer calls `Batcher.writer_idle` right before it waits for a batch, so the batcher's group
commit (a batch past its deadline grows while the writer is busy) needs no polling.

`run_ingest` runs the pipeline under a supervisor. If the database breaker opens, the pipeline
is torn down (uncommitted batches are dropped: they are still upstream), the supervisor probes
the database with backoff, and restarts the pipeline from the committed cursor once it answers.
Setting `stop` drains: the source stops reading, the pending batch is written, the cursor
committed, and `run_ingest` returns.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Final

import trio

from . import metrics
from .backoff import backoff_delay
from .batcher import Batch, Batcher
from .breaker import Breaker
from .config import DEFAULT_BATCH_MAX_ROWS, Config
from .db import Database, open_database
from .errors import BreakerOpen, DatabaseUnavailable
from .metrics import LagClock
from .records import DEFAULT_REGISTRY, Registry
from .router import Router
from .sources import Source
from .writer import WritePlan, Writer, load_cursor

__all__ = ["BATCH_QUEUE_SIZE", "IngestSettings", "open_writer_database", "run_ingest"]

LOGGER = logging.getLogger(__name__)

# Batches queued for the writer. With one batch being written and one filling, 2 queued keeps the
# writer busy through a slow commit. Memory: the batch being written, 2 queued, one the flusher
# holds and one filling — at most 5 × BATCH_MAX_ROWS events, reached only in a catch-up (at the
# default size the engine's peak RSS was 373 MiB replaying 1.5M forum events here).
BATCH_QUEUE_SIZE: Final = 2
# Probing a database that went away: start fast, but no slower than every 2 s, so ingestion
# resumes within a couple of seconds of the database coming back.
PROBE_BASE_S: Final = 0.25
PROBE_CAP_S: Final = 2.0
# Staging tables live in temp_buffers; a 20k-row batch of wide rows fits in 32 MB.
WRITER_SERVER_SETTINGS: Final = {"temp_buffers": "32MB"}


@dataclasses.dataclass(frozen=True, slots=True)
class IngestSettings:
    """Batch limits (BATCH_MAX_ROWS, BATCH_MAX_LATENCY_MS)."""

    batch_max_size: int = DEFAULT_BATCH_MAX_ROWS
    batch_max_latency_s: float = 0.1

    @classmethod
    def from_config(cls, config: Config) -> IngestSettings:
        return cls(config.batch_max_rows, config.batch_max_latency_ms / 1000)


@asynccontextmanager
async def open_writer_database(url: str, registry: Registry = DEFAULT_REGISTRY
                               ) -> AsyncIterator[Database]:
    """The writer's own connection, with the staging tables of `registry` created on connect."""
    plan = WritePlan(registry.tables, registry.recounts)
    async with open_database(url, min_size=1, max_size=1, init=plan.create_staging,
                             server_settings=WRITER_SERVER_SETTINGS,
                             application_name="coves-writer") as db:
        yield db


async def _wait_for_database(db: Database, breaker: Breaker) -> None:
    """Probe until the database answers; leaves the breaker half-open."""
    attempt = 0
    while True:
        try:
            await db.fetchval("SELECT 1")
        except DatabaseUnavailable as exc:
            delay = backoff_delay(attempt, base_s=PROBE_BASE_S, cap_s=PROBE_CAP_S)
            if attempt == 0 or attempt % 10 == 0:
                LOGGER.warning("database unavailable; intake paused",
                               extra={"attempt": attempt, "delay_s": round(delay, 2), "error": str(exc)})
            attempt += 1
            await trio.sleep(delay)
        else:
            breaker.probe_succeeded()
            return


async def _cancel_when_set(stop: trio.Event, scope: trio.CancelScope) -> None:
    await stop.wait()
    scope.cancel()


async def _run_pipeline(source: Source, start: int | None, writer: Writer, registry: Registry,
                        settings: IngestSettings, stop: trio.Event | None) -> None:
    send, receive = trio.open_memory_channel[Batch](BATCH_QUEUE_SIZE)
    batcher = Batcher(send, source=source.name, max_size=settings.batch_max_size,
                      max_latency_s=settings.batch_max_latency_s,
                      known_collections=registry.commits)
    router = Router(registry, batcher, label=source.label)
    metrics.PENDING_EVENTS.labels(source.label).set_function(lambda: batcher.pending)
    async with trio.open_nursery() as nursery:
        # The writer tells the batcher when it waits for a batch: group commit without polling.
        nursery.start_soon(partial(writer.run, receive, on_idle=batcher.writer_idle))
        nursery.start_soon(batcher.run)
        async with trio.open_nursery() as reading:
            if stop is not None:
                reading.start_soon(_cancel_when_set, stop, reading.cancel_scope)
            await source.run(start, router)
            reading.cancel_scope.cancel()
        await batcher.aclose()


async def run_ingest(db: Database, source: Source, *, settings: IngestSettings = IngestSettings(),
                     registry: Registry = DEFAULT_REGISTRY, stop: trio.Event | None = None,
                     start: int | None = None, resume: bool = True,
                     on_commit: Callable[[Batch], None] | None = None,
                     task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> int | None:
    """Ingest from `source` until it ends or `stop` is set; survive database outages.

    Args:
        db: a database from `open_writer_database` (it carries the staging tables).
        start: where to start when `resume` is false, or when nothing was committed yet.
        resume: start from the source's committed cursor in ingest_cursors.
        on_commit: called after each committed batch.

    Returns:
        The last committed cursor.
    """
    plan = WritePlan(registry.tables, registry.recounts)
    breaker = Breaker("database")
    lag = LagClock(source.label)

    def committed(batch: Batch) -> None:
        lag.committed(batch.last_time_us)
        if on_commit is not None:
            on_commit(batch)

    position = start
    while resume:
        try:
            stored = await load_cursor(db, source.name)
        except DatabaseUnavailable:
            await _wait_for_database(db, breaker)
            continue
        position = stored if stored is not None else start
        break
    LOGGER.info("ingest starting", extra={"source": source.name, "cursor": position})
    task_status.started()
    while True:
        writer = Writer(db, plan, breaker=breaker, label=source.label, on_commit=committed)
        try:
            await _run_pipeline(source, position, writer, registry, settings, stop)
            finished = True
        except* BreakerOpen:
            LOGGER.error("database breaker open: pipeline stopped, waiting for the database",
                         extra={"source": source.name, "cursor": writer.committed_cursor})
            finished = False
        if writer.committed_cursor is not None:
            position = writer.committed_cursor
        if finished:
            LOGGER.info("ingest stopped", extra={"source": source.name, "cursor": position})
            return position
        await _wait_for_database(db, breaker)
        LOGGER.info("database is back: resuming", extra={"source": source.name, "cursor": position})
