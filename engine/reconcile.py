"""`coves reconcile`: recount every aggregate from its source rows and report (or fix) drift.

The writer keeps every counter equal to a recount per batch (recounting touched subjects, or
adding exact deltas for votes), so drift should never exist; this is the proof, and the repair
if a bug or a manual edit ever caused one. Votes' counters are kept by deltas, so such drift
stays until `--fix`: a later vote adds to the wrong value rather than recounting it.

`--fix` takes the writers' lock (writer.py) for its transaction: ingestion waits meanwhile, and
no batch can commit votes between the fix's recount and its UPDATE (the batch's delta would
land on the value the fix then overwrites with a count that lacks those votes).
"""

from __future__ import annotations

import dataclasses
import logging

import asyncpg

from .db import Database
from .records import DEFAULT_REGISTRY, Registry
from .tables import Recount, reconcile_sql
from .writer import take_writer_lock

__all__ = ["Drift", "reconcile"]

LOGGER = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Drift:
    """A row whose counters differ from a recount."""

    table: str
    columns: tuple[str, ...]
    key: str
    stored: tuple[int, ...]
    counted: tuple[int, ...]

    def __str__(self) -> str:
        pairs = ", ".join(f"{c} {s}→{n}" for c, s, n in zip(self.columns, self.stored, self.counted)
                          if s != n)
        return f"{self.table} {self.key}: {pairs}"


async def _check(connection: asyncpg.Connection, recounts: tuple[Recount, ...],
                 fix: bool) -> list[Drift]:
    drift: list[Drift] = []
    async with connection.transaction():
        if fix:
            await take_writer_lock(connection)
        for recount in recounts:
            for row in await connection.fetch(reconcile_sql(recount, fix=fix)):
                drift.append(Drift(recount.target, recount.columns, row["key"],
                                   tuple(row["stored"]), tuple(row["counted"])))
    return drift


async def reconcile(db: Database, *, registry: Registry = DEFAULT_REGISTRY,
                    fix: bool = False) -> list[Drift]:
    """Every counter that differs from a full recount; with `fix`, set it right (one transaction)."""
    drift = await db.run(_check, registry.recounts, fix)
    for item in drift:
        LOGGER.warning("counter drift%s: %s", " fixed" if fix else "", item)
    return drift
