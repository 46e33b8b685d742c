"""100k hostile events through the real pipeline (decode → router → batcher → writer → Postgres):
nothing crashes, and every event is accounted for — applied, skipped on purpose, or stored in
ingest_rejects with a reason from the closed set."""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest
from prometheus_client import REGISTRY

from bench.workload import generate
from engine.batcher import Batch
from engine.db import Database
from engine.errors import RejectReason
from engine.reconcile import reconcile
from engine.redrive import redrive
from tests.helpers import ingest

from .conftest import Scenario
from .hostile import HostileStream

EVENTS = 100_000
OVERSIZE = 5  # frames over the 4 MiB event cap, placed at random


def _metric(name: str) -> dict[str, float]:
    """Samples of a `coves_ingest_events_*_total` counter for the replay label, by label set."""
    found: dict[str, float] = {}
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.name == name and sample.labels.get("source") == "replay":
                key = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                found[key] = sample.value
    return found


def _total(before: dict[str, float], after: dict[str, float]) -> int:
    return round(sum(after.values()) - sum(before.values()))


@pytest.mark.slow
@pytest.mark.scenario("event-fuzz")
async def test_every_hostile_event_is_applied_skipped_or_rejected_with_a_reason(
        writer_db: Database, scenario: Scenario) -> None:
    rng = random.Random(2026)
    started = time.monotonic()
    stream = HostileStream(list(generate(3000, seed=4, communities=30, users=300)), rng)
    frames = stream.frames(EVENTS - OVERSIZE)
    for _ in range(OVERSIZE):
        frames.insert(rng.randrange(len(frames)), b'{"did":"did:plc:' + b"x" * (5 * 2**20) + b'"}')
    drawn = time.monotonic() - started
    names = ("coves_ingest_events_applied_total", "coves_ingest_events_skipped_total",
             "coves_ingest_events_rejected_total")
    before = {name: _metric(name) for name in names}
    batches: list[Batch] = []

    started = time.monotonic()
    cursor = await ingest(writer_db, frames, batch_size=2000, on_commit=batches.append)
    ingested = time.monotonic() - started

    assert cursor == len(frames)  # the pipeline read to the end and committed it
    assert sum(batch.size for batch in batches) == len(frames)
    applied, skipped, rejected = (_total(before[name], _metric(name)) for name in names)
    assert applied + skipped + rejected == len(frames)
    stored = await writer_db.fetch(
        "SELECT reason, count(*) AS rows, sum(seen_count) AS seen FROM ingest_rejects GROUP BY reason")
    assert sum(row["seen"] for row in stored) == rejected  # every refusal is in the table
    assert {row["reason"] for row in stored} <= {reason.value for reason in RejectReason}
    assert await writer_db.fetchval(
        "SELECT count(*) FROM ingest_rejects WHERE detail = '' OR reason = ''") == 0
    assert applied >= EVENTS // 5  # the untouched quarter, and mutations that stay valid
    assert await reconcile(writer_db) == []  # whatever was applied, counters equal a recount
    reasons = Counter({row["reason"]: int(row["seen"]) for row in stored})
    scenario.note(f"{len(frames):,} events drawn in {drawn:.1f} s, ingested in {ingested:.1f} s: "
                  f"{applied:,} applied + {skipped:,} skipped + {rejected:,} rejected = "
                  f"{applied + skipped + rejected:,} sent")
    scenario.note("rejects by reason: " + ", ".join(f"{k} {v:,}" for k, v in reasons.most_common()))
    scenario.note("mutations used: " + ", ".join(f"{k} {v:,}" for k, v in stream.used.most_common()))

    # The rejects are safe to retry: redrive re-examines them and keeps each one refused.
    report = await redrive(writer_db, limit=5000)
    assert await reconcile(writer_db) == []
    scenario.note(f"`coves redrive` over 5,000 of them: {report}")
