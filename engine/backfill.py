"""Backfill: read whole repositories (`getRepo`) and apply their records through the normal
pipeline (router → batcher → writer), resumably.

    discover (listReposByCollection | listRepos) or DIDs/handles given ──► backfill_repos (pending)
    BackfillSource: workers ──getRepo──► CAR → MST walk ──Events──► router → batcher → writer

Rev handling: every record of a snapshot gets the snapshot commit's `rev`. The writer's rev gate
then keeps whatever the live firehose wrote with a newer rev and replaces anything older; rows
the database holds for the repo with an older rev that the snapshot no longer has become
tombstones (delete events at the snapshot's rev) — a resync. Each repo ends with a `backfilled`
event whose row marks it done in the same transaction as its last rows (records/repo_state.py),
so an interrupted run resumes with the repos not yet done, and re-reading one changes nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Final, TextIO

import trio

from . import metrics, syntax
from .db import Database
from .errors import HostError, RejectedEvent, RejectReason
from .events import BACKFILLED, COMMIT, CREATE, DELETE, Event
from .ipld import RecordTree, cid_string, record_json
from .records import DEFAULT_REGISTRY, Registry
from .render import jetstream_json
from .sources import Sink
from .sync_client import SyncClient
from .wanted import WantedCollections

__all__ = ["BackfillProgress", "BackfillSource", "discover", "mark_pending", "report_progress",
           "resolve_targets"]

LOGGER = logging.getLogger(__name__)

# Progress: a live line on a terminal, a log line now and then otherwise.
TTY_PROGRESS_S: Final = 1.0
LOG_PROGRESS_S: Final = 10.0
# How many pending repos are read ahead of the workers (they are small rows).
TODO_PAGE: Final = 1000

_ADD_PENDING: Final = """
    INSERT INTO backfill_repos (did, host) SELECT * FROM unnest($1::text[], $2::text[])
    ON CONFLICT (did) DO NOTHING"""
_FORCE_PENDING: Final = """
    INSERT INTO backfill_repos (did, host) SELECT * FROM unnest($1::text[], $2::text[])
    ON CONFLICT (did) DO UPDATE SET state = 'pending', updated_at = now()"""
_TODO: Final = """
    SELECT did, host FROM backfill_repos
     WHERE state <> 'done' AND did > $1 AND ($2::text[] IS NULL OR did = ANY($2))
     ORDER BY did LIMIT $3"""
_FAILED: Final = """
    UPDATE backfill_repos SET state = 'failed', attempts = attempts + 1, error = $2,
           updated_at = now()
     WHERE did = $1 AND state <> 'done'"""


@dataclasses.dataclass
class BackfillProgress:
    """What a run did so far (read by the progress display; totals at the end)."""

    repos_total: int = 0
    repos_fetched: int = 0
    repos_failed: int = 0
    records: int = 0
    tombstones: int = 0
    interrupted: bool = False
    started: float = dataclasses.field(default_factory=time.monotonic)

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return (f"{self.repos_fetched + self.repos_failed}/{self.repos_total} repos "
                f"({self.repos_failed} failed), {self.records} records, "
                f"{self.tombstones} tombstones; {self.repos_fetched / elapsed:.1f} repos/s, "
                f"{self.records / elapsed:.0f} records/s")


def _stale_sql(registry: Registry) -> str:
    """One query for the live rows of a repo ($1) older than a rev ($2), over every table."""
    parts = [f"SELECT uri FROM {t.name} WHERE {t.repo} = $1 AND deleted_at IS NULL AND rev < $2"
             for t in registry.tables if t.repo is not None and t.tombstones]
    return " UNION ALL ".join(parts)


class BackfillSource:
    """Reads pending repos and delivers their records as events (a Source for `run_ingest`).

    Args:
        db: a pool for backfill's own reads and failure marks (not the writer's connection).
        clients: host URL → its SyncClient; a repo is fetched from its own host first.
        collections: wanted collection patterns (JETSTREAM_COLLECTIONS).
        only: restrict the run to these DIDs (None: every repo not done).
        workers: repos read at once over all hosts.
    """

    label = "backfill"
    name = "backfill"

    def __init__(self, db: Database, clients: Mapping[str, SyncClient], collections: Sequence[str],
                 *, only: Sequence[str] | None = None, workers: int = 5,
                 registry: Registry = DEFAULT_REGISTRY,
                 progress: BackfillProgress | None = None) -> None:
        self._db = db
        self._clients = dict(clients)
        self._wanted = WantedCollections(collections)
        self._only = list(only) if only is not None else None
        self._workers = workers
        self._stale = _stale_sql(registry)
        self.progress = progress or BackfillProgress()
        self._position = 0

    def _cursor(self) -> int:
        # Backfill has no upstream position: its cursor row records when it last committed
        # (microseconds, strictly increasing, so the stored value never moves back).
        self._position = max(self._position + 1, time.time_ns() // 1000)
        return self._position

    async def run(self, start: int | None, sink: Sink) -> None:
        """Backfill every pending repo (or those in `only`); return when all were tried."""
        self.progress.repos_total = await self._db.fetchval(
            "SELECT count(*) FROM backfill_repos WHERE state <> 'done' "
            "AND ($1::text[] IS NULL OR did = ANY($1))", self._only)
        send, receive = trio.open_memory_channel[tuple[str, str | None]](0)
        async with trio.open_nursery() as nursery:
            async with receive:
                for _ in range(self._workers):
                    nursery.start_soon(self._work, receive.clone(), sink)
            async with send:
                last = ""
                while True:
                    rows = await self._db.fetch(_TODO, last, self._only, TODO_PAGE)
                    for row in rows:
                        await send.send((row["did"], row["host"]))
                    if len(rows) < TODO_PAGE:
                        break
                    last = rows[-1]["did"]

    async def _work(self, receive: trio.MemoryReceiveChannel[tuple[str, str | None]],
                    sink: Sink) -> None:
        async with receive:
            async for did, host in receive:
                await self._repo(did, host, sink)

    async def _repo(self, did: str, host: str | None, sink: Sink) -> None:
        """Fetch one repo and deliver its records, stale rows' tombstones, then `backfilled`.

        Error handling: a host error or an unreadable CAR marks the repo failed (with why) and the
        run goes on; the next run tries it again. A record that cannot be decoded is a reject.
        """
        try:
            tree = RecordTree(await self._fetch(did, host))
        except (HostError, RejectedEvent) as exc:
            await self._failed(did, str(exc))
            return
        if tree.did != did:
            await self._failed(did, f"the export is the repo of {tree.did}")
            return
        stale = {row["uri"] for row in await self._db.fetch(self._stale, did, tree.rev)}
        now_us = time.time_ns() // 1000
        for key, cid in tree.entries():
            collection, _, rkey = key.partition("/")
            if not self._wanted(collection):
                continue
            stale.discard(f"at://{did}/{key}")
            event = Event(did=did, kind=COMMIT, time_us=now_us, cursor=self._cursor(),
                          operation=CREATE, collection=collection, rkey=rkey, rev=tree.rev,
                          cid=cid_string(cid))
            try:
                event = event._replace(record=_record(tree.blocks.get(cid), key))
            except RejectedEvent as rejected:
                await sink.reject(rejected, tree.blocks.get(cid, b""), event.cursor, event)
                continue
            await sink.event(event._replace(raw=jetstream_json(event)))
            self.progress.records += 1
        for uri in sorted(stale):
            parts = syntax.split_at_uri(uri)
            if parts is None or not self._wanted(parts[1]):
                continue  # rows of collections this run does not read are not its to judge
            event = Event(did=did, kind=COMMIT, time_us=now_us, cursor=self._cursor(),
                          operation=DELETE, collection=parts[1], rkey=parts[2], rev=tree.rev)
            await sink.event(event._replace(raw=jetstream_json(event)))
            self.progress.tombstones += 1
        await sink.event(Event(did=did, kind=BACKFILLED, time_us=now_us, cursor=self._cursor(),
                               rev=tree.rev))
        self.progress.repos_fetched += 1
        metrics.BACKFILL_REPOS.labels("fetched").inc()

    async def _fetch(self, did: str, host: str | None) -> bytes:
        """The repo's CAR from its host, else from each other host that has it."""
        hosts = sorted(self._clients, key=lambda h: h != host)
        last: HostError | None = None
        for name in hosts:
            try:
                return await self._clients[name].get_repo(did)
            except HostError as exc:
                last = exc
                if exc.status not in (400, 404):  # RepoNotFound & co.: maybe on the next host
                    raise
        assert last is not None
        raise last

    async def _failed(self, did: str, error: str) -> None:
        LOGGER.warning("backfill of a repo failed: %s", error, extra={"did": did})
        self.progress.repos_failed += 1
        metrics.BACKFILL_REPOS.labels("failed").inc()
        await self._db.execute(_FAILED, did, error[:1000])


def _record(block: bytes | None, key: str) -> dict[str, object]:
    if block is None:
        raise RejectedEvent(RejectReason.INVALID_FRAME, f"{key}: record block missing from the CAR")
    record = record_json(block)
    if type(record) is not dict:
        raise RejectedEvent(RejectReason.INVALID_FRAME, f"{key}: record is not a map")
    return record


async def discover(db: Database, client: SyncClient, collections: Sequence[str],
                   registry: Registry = DEFAULT_REGISTRY) -> int:
    """Add the host's repos that (may) hold our collections to backfill_repos; return how many
    were listed.

    Asks `listReposByCollection` (a relay's index) for each handled collection matching the
    patterns; a host without it (a PDS answers 400, 404 or 501) is asked `listRepos` — every
    active repo on it.

    Error handling: a transient failure that outlived the client's retries propagates; any
    other refusal of the relay index means "not offered here".
    """
    wanted = WantedCollections(collections)
    listed: set[str] = set()
    try:
        for collection in sorted(c for c in registry.commits if wanted(c)):
            async for repo in client.list_repos_by_collection(collection):
                listed.add(repo["did"])
    except HostError as exc:
        if exc.transient:
            raise
        LOGGER.info("no listReposByCollection here (%s): listing every repo", exc,
                    extra={"host": client.base_url})
        listed.clear()
        async for repo in client.list_repos():
            if repo.get("active", True) is not False:
                listed.add(repo["did"])
    await mark_pending(db, sorted(listed), client.base_url, force=False)
    LOGGER.info("discovered repos", extra={"host": client.base_url, "repos": len(listed)})
    return len(listed)


async def mark_pending(db: Database, dids: Iterable[str], host: str | None, *, force: bool) -> None:
    """Queue repos for backfill; with `force`, also repos already done (asked for by name)."""
    dids = list(dids)
    if dids:
        await db.execute(_FORCE_PENDING if force else _ADD_PENDING, dids, [host] * len(dids))


async def resolve_targets(targets: Sequence[str], clients: Mapping[str, SyncClient]
                          ) -> list[tuple[str, str | None]]:
    """(DID, host) for each DID or handle given; a handle is resolved by the host that has it.

    Raises:
        HostError: no host could resolve a handle.
    """
    resolved: list[tuple[str, str | None]] = []
    for target in targets:
        if syntax.is_did(target):
            resolved.append((target, None))
            continue
        last: HostError | None = None
        for host, client in clients.items():
            try:
                resolved.append((await client.resolve_handle(target.lstrip("@").lower()), host))
                break
            except HostError as exc:
                last = exc
        else:
            assert last is not None
            raise last
    return resolved


async def report_progress(progress: BackfillProgress, stream: TextIO = sys.stderr) -> None:
    """Show progress until cancelled: a live line on a terminal, log lines otherwise."""
    tty = stream.isatty()
    while True:
        await trio.sleep(TTY_PROGRESS_S if tty else LOG_PROGRESS_S)
        if tty:
            stream.write("\r\x1b[K" + progress.line())
            stream.flush()
        else:
            LOGGER.info("backfill progress: %s", progress.line(),
                        extra={k: v for k, v in dataclasses.asdict(progress).items()
                               if k not in ("started", "interrupted")})
