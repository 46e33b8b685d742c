"""The nursery tree of each command. Every long-lived task of the program starts here.

    coves run / engine:  bridge → postgres (embedded or DATABASE_URL) → migrate →
                         nursery{ metrics server, ingest(Jetstream) — or one ingest per
                         FIREHOSE_URL, each with its own writer —, signal watcher,
                         identity{ handle resolver, host verifier } (own pool),
                         and for `run` the XRPC API (its own pool and DID resolver, /metrics too) }
    coves api:           bridge → postgres → migrate → nursery{ XRPC API, signal watcher }
    coves replay FILE:   same, ingest(ReplaySource) until end of file
    coves backfill:      same, discover or resolve repos, ingest(BackfillSource) until all were
                         tried, with a progress display
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final, TextIO
from urllib.parse import urlsplit, urlunsplit

import httpx
import trio

from .backfill import (BackfillProgress, BackfillSource, discover, mark_pending, report_progress,
                       resolve_targets)
from .backup import RestoreReport, backup, restore
from .batcher import Batch
from .config import Config
from .db import open_bridge, open_database
from .embedded_pg import open_embedded_postgres
from .errors import ConfigError
from .identity import open_identity, run_handle_resolver, run_host_verifier
from .migrate import apply_migrations
from .pipeline import IngestSettings, open_writer_database, run_ingest
from .reconcile import Drift, reconcile
from .redrive import RedriveReport, redrive
from .sources import Source
from .sources.firehose import FirehoseSource
from .sources.jetstream import JetstreamSource
from .sources.replay import ReplaySource
from .sync_client import HTTP_TIMEOUT, SyncClient

__all__ = ["backfill_hosts", "migrate", "open_postgres", "replay", "run_api", "run_backfill",
           "run_backup", "run_engine", "run_reconcile", "run_redrive", "run_refresh_identities",
           "run_restore"]

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


# The API's read pool: each request holds a connection for one statement (~1-5 ms), so a few
# connections serve hundreds of requests per second; more would only queue inside Postgres.
API_POOL_SIZE: Final = 8
# The API's statements are prepared once per connection (asyncpg's statement cache), but with the
# default plan_cache_mode Postgres kept planning them again at every call (2-6 ms of planning for
# 2-3 ms of execution): their optional parameters (`:viewer IS NULL OR …`) make a generic plan
# look costlier than the custom ones, so it never switched. Generic plans, made once per
# connection, took 20-47 % off most endpoints on the 1M-post bench dataset (every read endpoint
# and each feed's second page, sequential requests, 2026-11-26; bench/RESULTS.md); statements
# whose generic plan was poor were rewritten to be good in both modes (api/views/community.py
# TARGET). The writer's statements have no optional parameters and keep the default.
API_SERVER_SETTINGS: Final = {"plan_cache_mode": "force_generic_plan"}


async def _serve_api(config: Config, url: str, stop: trio.Event, *,
                     task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
    """The XRPC API on its own pool, verifying tokens with DID documents from engine/identity,
    until `stop` (then requests in flight finish). Its write procedures index what they wrote
    through a writer connection of their own (api/optimistic.py)."""
    from api.server import serve_api
    from api.writes import open_writes

    async with open_database(url, min_size=1, max_size=API_POOL_SIZE, application_name="coves-api",
                             server_settings=API_SERVER_SETTINGS) as db, open_identity(config) as identity, \
            open_writer_database(url) as writer, open_writes(config, db, writer) as writes:
        await serve_api(config, db, identity.resolver, writes=writes, shutdown_trigger=stop.wait,
                        task_status=task_status)


async def _run_source(config: Config, *sources: Source, resume: bool, metrics: bool,
                      identity: bool = False, api: bool = False) -> IngestTotals:
    """Ingest from each source (each with its own writer connection) until they end or a signal.

    With `identity`, the identity tasks run beside ingestion until it ends; with `api`, the XRPC
    API serves next to them and stops with them.
    """
    from .metrics_server import serve_metrics

    totals = IngestTotals()
    settings = IngestSettings.from_config(config)

    async def ingest(url: str, source: Source, stop: trio.Event) -> None:
        async with open_writer_database(url) as db:
            totals.cursor = await run_ingest(db, source, settings=settings, stop=stop,
                                             resume=resume, on_commit=totals.add)

    async with open_bridge(), _open_migrated(config) as url:
        stop = trio.Event()
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_watch_signals, stop, scope)
                if metrics and config.metrics_port:
                    await nursery.start(serve_metrics, config.metrics_host, config.metrics_port)
                if identity:
                    await nursery.start(_run_identity, config, url)
                async with trio.open_nursery() as workers:
                    if api:
                        await workers.start(_serve_api, config, url, stop)
                    for source in sources:
                        workers.start_soon(ingest, url, source, stop)
                nursery.cancel_scope.cancel()
    return totals


def firehose_sources(config: Config) -> list[FirehoseSource]:
    """One source per FIREHOSE_URL item (empty when unset)."""
    return [FirehoseSource(url, config.jetstream_collections,
                           idle_timeout_s=config.firehose_idle_timeout_s)
            for url in config.firehose_urls or ()]


async def run_engine(config: Config, *, api: bool = False) -> None:
    """`coves engine` (`api=False`) / `coves run`: Jetstream → Postgres, with metrics, until a
    signal; `coves run` also serves the XRPC API.

    With FIREHOSE_URL set, the raw firehose(s) are read instead of Jetstream. Metrics: `coves
    engine` serves them on METRICS_PORT; `coves run` on the API's /metrics only (one registry,
    one place to scrape).
    """
    if api:
        from api.server import check_api_config
        check_api_config(config)
    firehoses = firehose_sources(config)
    if firehoses:
        await _run_source(config, *firehoses, resume=True, metrics=not api, identity=True, api=api)
        return
    source = JetstreamSource(config.jetstream_url, config.jetstream_collections,
                             dictionary=config.jetstream_zstd_dictionary,
                             idle_timeout_s=config.jetstream_idle_timeout_s,
                             rewind_s=config.jetstream_rewind_s,
                             transport=config.jetstream_transport)
    await _run_source(config, source, resume=True, metrics=not api, identity=True, api=api)


async def run_api(config: Config, *,
                  task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
    """`coves api`: the XRPC API alone (reads what another process ingests), until a signal."""
    from api.server import check_api_config
    check_api_config(config)
    async with open_bridge(), _open_migrated(config) as url:
        stop = trio.Event()
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_watch_signals, stop, scope)
                async with trio.open_nursery() as server:
                    task_status.started(await server.start(_serve_api, config, url, stop))
                # the API returned: a signal came and its requests finished
                nursery.cancel_scope.cancel()


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


def backfill_hosts(config: Config) -> tuple[str, ...]:
    """BACKFILL_URL, else the http(s) host of each FIREHOSE_URL.

    Raises:
        ConfigError: neither is set.
    """
    if config.backfill_urls:
        return config.backfill_urls
    hosts = []
    for url in config.firehose_urls or ():
        parts = urlsplit(url)
        hosts.append(urlunsplit(("https" if parts.scheme == "wss" else "http", parts.netloc, "", "", "")))
    if not hosts:
        raise ConfigError("coves backfill needs a host: set BACKFILL_URL (or FIREHOSE_URL)")
    return tuple(dict.fromkeys(hosts))


async def run_backfill(config: Config, targets: Sequence[str] = (), *,
                       progress_stream: TextIO = sys.stderr) -> BackfillProgress:
    """`coves backfill [DID|HANDLE …]`: read whole repos into the index through the writer.

    Without targets, each host's repos are discovered first; with targets, only those are read
    (again, even if done before). SIGTERM/SIGINT drains: repos not finished stay pending.
    """
    hosts = backfill_hosts(config)
    progress = BackfillProgress()
    async with open_bridge(), _open_migrated(config) as url, \
            open_database(url, min_size=1, max_size=4, application_name="coves-backfill") as db, \
            open_writer_database(url) as writer_db, \
            httpx.AsyncClient(timeout=HTTP_TIMEOUT, follow_redirects=True) as http:
        clients = {host: SyncClient(host, http, rate_per_s=config.backfill_rate,
                                    concurrency=config.backfill_concurrency) for host in hosts}
        only: list[str] | None = None
        if targets:
            resolved = await resolve_targets(targets, clients)
            for did, host in resolved:
                await mark_pending(db, [did], host, force=True)
            only = [did for did, _ in resolved]
        else:
            for client in clients.values():
                await discover(db, client, config.jetstream_collections)
        source = BackfillSource(db, clients, config.jetstream_collections, only=only,
                                workers=config.backfill_concurrency * len(clients),
                                progress=progress)
        stop = trio.Event()
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_watch_signals, stop, scope)
                nursery.start_soon(report_progress, progress, progress_stream)
                await run_ingest(writer_db, source, settings=IngestSettings.from_config(config),
                                 stop=stop, resume=False)
                nursery.cancel_scope.cancel()
    progress.interrupted = stop.is_set()
    return progress


async def run_refresh_identities(config: Config, dids: list[str], *, everyone: bool,
                                 communities: bool) -> int:
    """`coves refresh-identities`: make DIDs due for handle resolution (and communities due for
    the hostedBy check) now; the running engine picks them up. Returns the rows touched."""
    async with open_bridge(), open_postgres(config) as url:
        async with open_database(url, min_size=1, max_size=1, application_name="coves-refresh") as db:
            touched = int((await db.execute(
                "UPDATE identities SET resolve_after = now() WHERE $1 OR did = ANY($2::text[])",
                everyone, dids)).split()[-1])
            if communities:
                touched += int((await db.execute(
                    "UPDATE communities SET host_checked_for = NULL WHERE $1 OR did = ANY($2::text[])",
                    everyone, dids)).split()[-1])
            return touched
