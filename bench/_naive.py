"""The naive baseline: each event in its own transaction, `INSERT … ON CONFLICT` plus counter
`UPDATE`s — the pattern of Coves' Go consumers (`BrettM86/coves:internal/atproto/jetstream/`,
e.g. `vote_consumer.go`: a transaction per event, `upvote_count = upvote_count + 1`, and
`GREATEST(0, n - 1)` on deletes).

To compare only the write pattern, it does the engine's own Python work per event (decode, lexicon
check, record handler) and gives the pattern its best case: plain asyncio + asyncpg on one
connection (no Trio bridge), statements prepared once. No rev gate, no recount: this is what the
engine's design replaces, not a correct alternative.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Final

import asyncpg

from engine.db import _init_connection  # the engine's jsonb codecs (binary jsonb for COPY too)
from engine.decode import decode_jetstream
from engine.errors import RejectedEvent
from engine.events import DELETE
from engine.records import DEFAULT_REGISTRY
from engine.records.community_comment import TABLE as COMMENTS
from engine.records.community_post import STATS as POST_STATS
from engine.records.community_subscription import TABLE as SUBSCRIPTIONS
from engine.records.feed_vote import TABLE as VOTES
from engine.tables import Table

from ._measure import CpuClock, CpuSample

__all__ = ["run_naive"]

_VOTE_DELTA: Final = """
    UPDATE {target} SET upvote_count = GREATEST(0, upvote_count + $2),
                        downvote_count = GREATEST(0, downvote_count + $3),
                        score = score + $2 - $3
     WHERE uri = $1"""
_COUNTER: Final = "UPDATE {target} SET {column} = GREATEST(0, {column} + $2) WHERE {key} = $1"


def _upsert_sql(table: Table) -> str:
    names = [c.name for c in table.columns]
    values = [f"${i + 1}" for i in range(len(names))]
    updates = [f"{n} = EXCLUDED.{n}" for n in names if n not in table.key]
    if table.tombstones:
        names.append("deleted_at")
        values.append(f"CASE WHEN ${len(values) + 1}::boolean THEN now() END")
        updates.append("deleted_at = EXCLUDED.deleted_at")
    return (f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join(values)}) "
            f"ON CONFLICT ({', '.join(table.key)}) DO UPDATE SET {', '.join(updates)}")


def _stats_of(uri: str) -> str:
    return "comment_stats" if "/social.coves.community.comment/" in uri else "post_stats"


async def _counters(connection: asyncpg.Connection, table: Table, row: Sequence[Any],
                    previous: asyncpg.Record | None) -> None:
    """The counter updates of one row, by increment (what the engine recounts instead)."""
    deleted = row[-1]
    if table is VOTES:
        subject, direction = (previous["subject_uri"], previous["direction"]) if deleted and previous \
            else (row[5], row[7])
        if subject is None:
            return
        sign = -1 if deleted else 1
        up, down = (sign, 0) if direction == "up" else (0, sign)
        await connection.execute(_VOTE_DELTA.format(target=_stats_of(subject)), subject, up, down)
    elif table is COMMENTS and not deleted:
        await connection.execute(_COUNTER.format(target="post_stats", column="comment_count",
                                                 key="uri"), row[5], 1)
        if row[7] != row[5]:
            await connection.execute(_COUNTER.format(target="comment_stats", column="reply_count",
                                                     key="uri"), row[7], 1)
    elif table is POST_STATS:
        await connection.execute(_COUNTER.format(target="communities", column="post_count",
                                                 key="did"), row[2], -1 if deleted else 1)
    elif table is SUBSCRIPTIONS and not deleted:
        await connection.execute(_COUNTER.format(target="communities", column="subscriber_count",
                                                 key="did"), row[5], 1)


async def _apply(connection: asyncpg.Connection, upserts: dict[Table, str], frames: list[bytes],
                 deadline: float) -> int:
    handled = 0
    for number, frame in enumerate(frames, start=1):
        if time.perf_counter() > deadline:
            break
        try:
            event = decode_jetstream(frame, cursor=number)
            ops = DEFAULT_REGISTRY.handle(event)
        except RejectedEvent:
            continue
        async with connection.transaction():
            for table, row in ops:
                if table.merge is not None:
                    continue
                previous = None
                if table is VOTES and event.operation == DELETE:
                    previous = await connection.fetchrow(
                        "SELECT subject_uri, direction FROM votes WHERE uri = $1", row[0])
                await connection.execute(upserts[table], *row)
                await _counters(connection, table, row, previous)
        handled += 1
    return handled


async def _run(url: str, frames: list[bytes], max_seconds: float,
               clock: CpuClock) -> tuple[int, CpuSample]:
    connection = await asyncpg.connect(url)
    try:
        await _init_connection(connection)
        upserts = {t: _upsert_sql(t) for t in DEFAULT_REGISTRY.tables if t.merge is None}
        clock.start()
        handled = await _apply(connection, upserts, frames, time.perf_counter() + max_seconds)
        return handled, clock.stop()  # before the backend exits (see bench/ingest.py)
    finally:
        await connection.close()


def run_naive(url: str, frames: list[bytes], max_seconds: float,
              clock: CpuClock) -> tuple[int, CpuSample]:
    """Apply `frames` in order, one transaction each, for at most `max_seconds`.

    Returns:
        events applied, and `clock` over the run.
    """
    return asyncio.run(_run(url, frames, max_seconds, clock))
