"""`coves redrive`: re-apply stored rejects (after a fix) and remove those that now apply.

Each reject's raw bytes are decoded and handled again. Those that now produce rows are written
through the normal writer (rev gate and recounts included) and deleted in the same transaction;
those still refused keep their row, with the new reason and detail. The cursor is not touched.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Final

from .batcher import Batch
from .breaker import Breaker
from .db import Database
from .decode import decode_jetstream
from .errors import RejectedEvent, RejectReason
from .records import DEFAULT_REGISTRY, Registry
from .writer import WritePlan, Writer

__all__ = ["RedriveReport", "redrive"]

LOGGER = logging.getLogger(__name__)
PAGE_SIZE: Final = 1000

# Only rejects that existed when the redrive began ($4): one Postgres refuses again is stored anew
# (a higher id) and must not be examined again and again.
_PAGE: Final = """
    SELECT id, source, reason, detail, raw, raw_size, cursor FROM ingest_rejects
     WHERE id > $1 AND id <= $4 AND ($2::text IS NULL OR reason = $2)
     ORDER BY id LIMIT $3"""
_STILL_REJECTED: Final = """
    UPDATE ingest_rejects AS r SET reason = u.reason, detail = u.detail, last_seen_at = now()
      FROM unnest($1::bigint[], $2::text[], $3::text[]) AS u(id, reason, detail)
     WHERE r.id = u.id"""


@dataclasses.dataclass
class RedriveReport:
    examined: int = 0
    applied: int = 0
    still_rejected: int = 0
    skipped: int = 0  # decoded fine but nothing to store (e.g. a collection we do not index)

    def __str__(self) -> str:
        return (f"examined {self.examined}, applied {self.applied}, skipped {self.skipped}, "
                f"still rejected {self.still_rejected}")


async def redrive(db: Database, *, registry: Registry = DEFAULT_REGISTRY, reason: str | None = None,
                  limit: int | None = None, dry_run: bool = False) -> RedriveReport:
    """Retry rejects (optionally only those with `reason`, at most `limit`).

    Args:
        db: the writer's database (from `open_writer_database`).
        dry_run: report what would happen, change nothing.
    """
    plan = WritePlan(registry.tables, registry.recounts)
    writer = Writer(db, plan, breaker=Breaker("database"), label="redrive")
    report = RedriveReport()
    last_id = 0
    newest = await db.fetchval("SELECT coalesce(max(id), 0) FROM ingest_rejects")
    while limit is None or report.examined < limit:
        page_size = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - report.examined)
        rows = await db.fetch(_PAGE, last_id, reason, page_size, newest)
        if not rows:
            break
        last_id = rows[-1]["id"]
        batch = Batch(source="redrive")
        still: list[tuple[int, str, str]] = []
        for row in rows:
            report.examined += 1
            raw = bytes(row["raw"])
            if len(raw) < row["raw_size"]:
                # Only oversize frames are stored cut; they cannot be re-read.
                still.append((row["id"], RejectReason.OVERSIZE.value,
                              f"{row['raw_size']} bytes; only the first {len(raw)} were kept"))
                continue
            if row["source"].startswith("firehose:") and not raw.startswith(b"{"):
                # A raw firehose frame that could not be decoded (events refused by a handler
                # are stored as Jetstream JSON): not re-readable here; keep its reason.
                still.append((row["id"], row["reason"], row["detail"]))
                continue
            try:
                event = decode_jetstream(raw, cursor=row["cursor"])
                ops = registry.handle(event)
            except RejectedEvent as rejected:
                still.append((row["id"], rejected.reason.value, rejected.detail))
                continue
            batch.resolved_rejects.append(row["id"])
            batch.size += 1
            if ops:
                batch.events.append((event, ops))
                for table, values in ops:
                    batch.rows.setdefault(table, []).append(values)
                report.applied += 1
            else:
                report.skipped += 1
        report.still_rejected += len(still)
        if dry_run:
            continue
        if batch.size:
            refused = await writer.write(batch)  # Postgres may still refuse some: kept as rejects
            report.applied -= refused
            report.still_rejected += refused
        if still:
            ids, reasons, details = zip(*still)
            await db.execute(_STILL_REJECTED, list(ids), list(reasons), list(details))
    LOGGER.info("redrive finished: %s", report, extra=dataclasses.asdict(report))
    return report
