"""`coves reconcile`: recount every aggregate from its source rows and report (or fix) drift.

The writer recounts touched subjects per batch, so drift should never exist; this is the proof,
and the repair if a bug or a manual edit ever caused one.
"""

from __future__ import annotations

import dataclasses
import logging

import asyncpg

from .db import Database
from .records import DEFAULT_REGISTRY, Registry
from .tables import Recount, reconcile_sql

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
