"""The nursery tree of each command. Every long-lived task of the program starts here.

    coves run / engine:  bridge → postgres (embedded or DATABASE_URL) → migrate →
                         nursery{ metrics server, ingest(Jetstream), signal watcher,
                                  identity{ handle resolver, host verifier } (own pool) }
    coves replay FILE:   same, ingest(ReplaySource) until end of file
"""

from __future__ import annotations

import dataclasses
import logging
import signal
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

import trio

from .backup import RestoreReport, backup, restore
from .batcher import Batch
from .config import Config
from .db import open_bridge, open_database
from .embedded_pg import open_embedded_postgres
from .identity import open_identity, run_handle_resolver, run_host_verifier
from .migrate import apply_migrations
from .pipeline import IngestSettings, open_writer_database, run_ingest
from .reconcile import Drift, reconcile
from .redrive import RedriveReport, redrive
from .sources import Source
from .sources.jetstream import JetstreamSource
from .sources.replay import ReplaySource

__all__ = ["migrate", "open_postgres", "replay", "run_backup", "run_engine", "run_reconcile",
           "run_redrive", "run_restore"]

LOGGER = logging.getLogger(__name__)
# After SIGTERM/SIGINT the engine drains (writes the pending batch, commits the cursor). If that
# takes longer than this (e.g. the database is gone), everything is cancelled.
SHUTDOWN_GRACE_S: Final = 15.0


@asynccontextmanager
async def open_postgres(config: Config) -> AsyncIterator[str]:
    """Yield the database URL: DATABASE_URL, or an embedded server started in COVES_DATA_DIR."""
    if config.database_url:
        yield config.database_url
        return
    async with open_embedded_postgres(config.data_dir) as url:
        yield url


@asynccontextmanager
async def _open_migrated(config: Config) -> AsyncIterator[str]:
    async with open_postgres(config) as url:
        async with open_database(url, min_size=1, max_size=1, application_name="coves-migrate") as db:
            await apply_migrations(db)
        yield url


async def _watch_signals(stop: trio.Event, scope: trio.CancelScope) -> None:
    """First SIGTERM/SIGINT: drain. A second one, or the grace period running out: cancel."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            if stop.is_set():
                LOGGER.warning("second signal: stopping now")
                scope.cancel()
                return
            LOGGER.info("%s received: draining", signal.Signals(signum).name)
            stop.set()
            scope.deadline = trio.current_time() + SHUTDOWN_GRACE_S


@dataclasses.dataclass
class IngestTotals:
    """What a run committed, summed over its batches (printed by `coves replay`)."""

    events: int = 0
    applied: int = 0
    skipped: Counter[str] = dataclasses.field(default_factory=Counter)
    rejected: Counter[str] = dataclasses.field(default_factory=Counter)
    cursor: int | None = None

    def add(self, batch: Batch) -> None:
        self.events += batch.size
        self.applied += sum(batch.applied.values())
        self.skipped.update(batch.skipped)
        self.rejected.update(batch.rejected)

    def __str__(self) -> str:
        def detail(counts: Counter[str]) -> str:
            return f" ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))})" if counts else ""

        return (f"{self.events} events: {self.applied} applied, {sum(self.skipped.values())} "
                f"skipped{detail(self.skipped)}, {sum(self.rejected.values())} "
                f"rejected{detail(self.rejected)}")


async def _run_identity(config: Config, url: str, *,
                        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """The identity tasks, on a small pool of their own (never the writer's connection)."""
    async with open_database(url, min_size=1, max_size=2, application_name="coves-identity") as db, \
            open_identity(config) as identity, trio.open_nursery() as nursery:
        await nursery.start(run_handle_resolver, db, identity.resolver, identity.handles)
        await nursery.start(run_host_verifier, db, identity.hosting)
        task_status.started()


async def _run_source(config: Config, source: Source, *, resume: bool, metrics: bool,
                      identity: bool = False) -> IngestTotals:
    from .metrics_server import serve_metrics

    totals = IngestTotals()
    async with open_bridge(), _open_migrated(config) as url, open_writer_database(url) as db:
        stop = trio.Event()
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_watch_signals, stop, scope)
                if metrics and config.metrics_port:
                    await nursery.start(serve_metrics, config.metrics_host, config.metrics_port)
                if identity:
                    await nursery.start(_run_identity, config, url)
                totals.cursor = await run_ingest(
                    db, source, settings=IngestSettings.from_config(config), stop=stop,
                    resume=resume, on_commit=totals.add)
                nursery.cancel_scope.cancel()
    return totals


async def run_engine(config: Config) -> None:
    """`coves engine` / `coves run`: Jetstream → Postgres, with metrics, until a signal."""
    source = JetstreamSource(config.jetstream_url, config.jetstream_collections,
                             dictionary=config.jetstream_zstd_dictionary,
                             idle_timeout_s=config.jetstream_idle_timeout_s,
                             rewind_s=config.jetstream_rewind_s)
    await _run_source(config, source, resume=True, metrics=True, identity=True)


async def replay(config: Config, path: Path, *, resume: bool = False) -> IngestTotals:
    """`coves replay FILE`: apply a Jetstream JSONL file; return what was committed."""
    return await _run_source(config, ReplaySource(path), resume=resume, metrics=False)


async def migrate(config: Config) -> list[str]:
    """`coves migrate`: apply pending migrations; return their names."""
    async with open_bridge(), open_postgres(config) as url:
        async with open_database(url, min_size=1, max_size=1, application_name="coves-migrate") as db:
            done = await apply_migrations(db)
    return [f"{m.version:04d}_{m.name}" for m in done]


async def run_redrive(config: Config, *, reason: str | None, limit: int | None,
                      dry_run: bool) -> RedriveReport:
    """`coves redrive`: retry stored rejects."""
    async with open_bridge(), _open_migrated(config) as url, open_writer_database(url) as db:
        return await redrive(db, reason=reason, limit=limit, dry_run=dry_run)



async def run_reconcile(config: Config, *, fix: bool) -> list[Drift]:
    """`coves reconcile`: recount every aggregate; report (and with `fix`, repair) drift."""
    async with open_bridge(), _open_migrated(config) as url:
        async with open_database(url, min_size=1, max_size=1, application_name="coves-reconcile") as db:
            return await reconcile(db, fix=fix)


async def run_backup(config: Config) -> Path:
    """`coves backup`: a time-stamped pg_dump archive; older ones pruned."""
    directory = config.backup_dir or config.data_dir / "backups"
    async with open_postgres(config) as url:
        return await backup(url, directory, keep_days=config.backup_keep_days,
                            bin_dir=config.pg_bin_dir)


async def run_restore(config: Config, archive: Path) -> RestoreReport:
    """`coves restore FILE`: into an empty database, then row counts and reconcile."""
    async with open_bridge(), open_postgres(config) as url:
        async with open_database(url, min_size=1, max_size=1, application_name="coves-restore") as db:
            return await restore(db, url, archive, bin_dir=config.pg_bin_dir)
