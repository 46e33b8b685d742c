"""Repo-level events → backfill_repos: `sync` sends a repo back to backfill, `backfilled` marks
it done — in the same transaction as the snapshot's last rows (see engine/backfill.py).

A `#sync` (or a `tooBig` commit) says the repo must be re-read whole. Only repos we already know
— DIDs our records mention (`identities`) or repos backfill has seen — are marked: every new
account on the network starts with a #sync, and fetching them all would be wasted work. A repo
counts as done only once a snapshot at least as new as the rev a #sync asked for was applied.
"""

from __future__ import annotations

from typing import Final

from ..events import BACKFILLED, SYNC, Event
from ..tables import Column, RowOp, Table
from .fields import IDENTIFIER, REV

__all__ = ["BACKFILLED_TABLE", "KINDS", "RECOUNTS", "SYNC_TABLE", "TABLES", "handle"]

KINDS: Final = (SYNC, BACKFILLED)

_COLUMNS: Final = (Column("did", IDENTIFIER), Column("rev", REV))

SYNC_TABLE: Final = Table(
    name="repo_sync_events",  # staging only: the merge updates `backfill_repos`
    key=("did",),
    columns=_COLUMNS,
    tombstones=False,
    merge="""
WITH incoming AS (SELECT DISTINCT ON (did) did, rev FROM stage_repo_sync_events
                  ORDER BY did, rev DESC),
merged AS (INSERT INTO backfill_repos AS t (did, state, requested_rev)
           SELECT i.did, 'pending', i.rev FROM incoming AS i
            WHERE EXISTS (SELECT 1 FROM identities AS d WHERE d.did = i.did)
               OR EXISTS (SELECT 1 FROM backfill_repos AS b WHERE b.did = i.did)
           ON CONFLICT (did) DO UPDATE
              SET state = 'pending', updated_at = now(),
                  requested_rev = GREATEST(t.requested_rev, EXCLUDED.requested_rev)
            WHERE t.rev IS NULL OR t.rev < EXCLUDED.requested_rev
        RETURNING t.did)
SELECT (SELECT count(*) FROM merged) AS changed, ARRAY(SELECT did FROM merged) AS merged_keys""",
)

BACKFILLED_TABLE: Final = Table(
    name="repo_backfilled_events",  # staging only: the merge updates `backfill_repos`
    key=("did",),
    columns=_COLUMNS,
    tombstones=False,
    merge="""
WITH incoming AS (SELECT DISTINCT ON (did) did, rev FROM stage_repo_backfilled_events
                  ORDER BY did, rev DESC),
merged AS (INSERT INTO backfill_repos AS t (did, state, rev, done_at)
           SELECT did, 'done', rev, now() FROM incoming
           ON CONFLICT (did) DO UPDATE
              SET state = CASE WHEN t.requested_rev > EXCLUDED.rev THEN 'pending' ELSE 'done' END,
                  rev = GREATEST(t.rev, EXCLUDED.rev), attempts = 0, error = NULL,
                  done_at = now(), updated_at = now()
        RETURNING t.did)
SELECT (SELECT count(*) FROM merged) AS changed, ARRAY(SELECT did FROM merged) AS merged_keys""",
)
TABLES: Final = (SYNC_TABLE, BACKFILLED_TABLE)
RECOUNTS: Final = ()


def handle(event: Event) -> list[RowOp]:
    table = SYNC_TABLE if event.kind == SYNC else BACKFILLED_TABLE
    return [RowOp(table, (event.did, event.rev))]
