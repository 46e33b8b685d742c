"""The identity background tasks the engine runs beside ingestion (started in engine/service.py).

    run_handle_resolver   due identities → DID documents → verified handles (identities.py)
    run_host_verifier     communities' hostedBy claims → host_ok + rejects (communities.py)

Each runs rounds of bounded work on its own database pool (never the writer's connection) and
sleeps between them on trio's clock: briefly after a full round (more is waiting), longer
after a partial one. A database failure does not end the task: it is counted, logged, and the
round retried after a backoff.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final, NoReturn

import trio

from .. import metrics
from ..backoff import backoff_delay
from ..db import Database
from ..errors import DatabaseError, DatabaseUnavailable
from .communities import CHECK_BATCH, verify_due_communities
from .handles import HandleVerifier
from .hosting import HostVerifier
from .identities import RESOLVE_BATCH, resolve_due_identities
from .resolver import DidResolver

__all__ = ["BUSY_PAUSE_S", "IDLE_PAUSE_S", "run_handle_resolver", "run_host_verifier"]

LOGGER = logging.getLogger(__name__)

# After a full round: a short breath so the other tasks and the database get their turn.
BUSY_PAUSE_S: Final = 0.1
# After a partial round: new work appears when records or identity events arrive; a handle
# shown a couple of seconds late is fine, and an idle poll costs one indexed query.
IDLE_PAUSE_S: Final = 2.0
# Database retry: 1 s doubling to a minute (the writer's breaker handles the outage itself).
DB_RETRY_BASE_S: Final = 1.0
DB_RETRY_CAP_S: Final = 60.0


async def _run_rounds(name: str, round_: Callable[[], Awaitable[int]], batch: int,
                      task_status: trio.TaskStatus[None]) -> NoReturn:
    """Run `round_` forever, pausing between rounds; back off on database failures.

    Error handling: DatabaseError (transient or not) is counted in
    coves_identity_database_errors_total, logged and retried after a backoff; anything else
    is a bug and propagates.
    """
    task_status.started()
    failures = 0
    while True:
        try:
            done = await round_()
        except DatabaseError as exc:
            metrics.IDENTITY_DB_ERRORS.labels(name).inc()
            delay = backoff_delay(failures, base_s=DB_RETRY_BASE_S, cap_s=DB_RETRY_CAP_S)
            failures += 1
            level = logging.WARNING if isinstance(exc, DatabaseUnavailable) else logging.ERROR
            LOGGER.log(level, "%s: database failed, retrying in %.1f s", name, delay,
                       extra={"task": name, "attempt": failures, "delay_s": round(delay, 2),
                              "error": str(exc)})
            await trio.sleep(delay)
            continue
        if failures:
            LOGGER.info("%s: database back", name, extra={"task": name, "attempt": failures})
            failures = 0
        await trio.sleep(BUSY_PAUSE_S if done >= batch else IDLE_PAUSE_S)


async def run_handle_resolver(db: Database, resolver: DidResolver, handles: HandleVerifier, *,
                              task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                              ) -> NoReturn:
    """Keep `identities` resolved: handle, PDS endpoint, errors and retry times. Never returns."""
    await _run_rounds("handle_resolver", lambda: resolve_due_identities(db, resolver, handles),
                      RESOLVE_BATCH, task_status)


async def run_host_verifier(db: Database, hosting: HostVerifier, *,
                            task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                            ) -> NoReturn:
    """Keep communities' hostedBy verdicts current. Never returns."""
    await _run_rounds("host_verifier", lambda: verify_due_communities(db, hosting),
                      CHECK_BATCH, task_status)
