"""The writer registers the DIDs records mention in `identities` before merging them, and sends
a DID it saw committed only once (engine/known_identities.py)."""

from __future__ import annotations

from typing import Any

import pytest

import engine.writer
from bench.ingest import build_batches
from engine.batcher import Batch
from engine.breaker import Breaker
from engine.db import Database
from engine.errors import DatabaseUnavailable
from engine.known_identities import KnownIdentities
from engine.pipeline import IngestSettings
from engine.records import DEFAULT_REGISTRY
from engine.writer import WritePlan, Writer
from tests import factories as f
from tests.helpers import ingest

C, U1, U2 = f.did("c"), f.did("u1"), f.did("u2")
P = f.uri(C, f.POST, "3k7a3dmb5bk2c")
PLAN = WritePlan(DEFAULT_REGISTRY.tables, DEFAULT_REGISTRY.recounts)


def test_known_identities_name_what_to_send_and_forget_what_two_generations_left_out() -> None:
    known = KnownIdentities(size=2)
    assert known.unknown({"did:plc:b", "did:plc:a"}) == ["did:plc:a", "did:plc:b"]  # sorted
    known.committed(["did:plc:a", "did:plc:b"])  # a generation of 2: now the previous one
    assert known.unknown({"did:plc:a", "did:plc:b", "did:plc:c"}) == ["did:plc:c"]
    # a and b, mentioned again, filled a new generation (now the previous one).
    known.committed(["did:plc:c"])  # c starts a new generation; a and b are the previous one
    assert known.unknown({"did:plc:c"}) == []
    known.committed(["did:plc:d"])  # c, d fill the generation: a and b are forgotten
    assert known.unknown({"did:plc:a", "did:plc:b", "did:plc:c", "did:plc:d"}) == \
        ["did:plc:a", "did:plc:b"]
    assert len(known) == 2


async def one_batch(*frames: bytes) -> Batch:
    [batch] = await build_batches(list(frames), IngestSettings(batch_max_size=len(frames)))
    return batch


async def registered(db: Database) -> set[str]:
    return {r["did"] for r in await db.fetch("SELECT did FROM identities")}


def new_writer(db: Database) -> Writer:
    return Writer(db, PLAN, breaker=Breaker("database"), label="test")


async def test_a_writer_sends_a_did_it_registered_only_once(writer_db: Database) -> None:
    writer = new_writer(writer_db)
    await writer.write(await one_batch(f.vote(U1, f.tid(1), P)))
    assert U1 in await registered(writer_db)

    # Nothing in the engine deletes identities; done by hand, it shows what the writer sends.
    await writer_db.execute("DELETE FROM identities WHERE did = $1", U1)
    await writer.write(await one_batch(f.vote(U1, f.tid(2), P), f.vote(U2, f.tid(3), P)))
    dids = await registered(writer_db)
    assert U2 in dids and U1 not in dids  # U1 known to this writer: not sent again

    await new_writer(writer_db).write(await one_batch(f.vote(U1, f.tid(4), P)))
    assert U1 in await registered(writer_db)  # a new writer (a restart) knows nothing yet


async def test_dids_of_an_attempt_that_rolled_back_are_sent_again(
        writer_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    finish = engine.writer._finish
    failures = [DatabaseUnavailable("connection lost before the commit")]

    async def failing_once(*args: Any) -> None:
        if failures:
            raise failures.pop()
        await finish(*args)

    monkeypatch.setattr(engine.writer, "RETRY_BASE_S", 0.001)
    monkeypatch.setattr(engine.writer, "_finish", failing_once)
    await new_writer(writer_db).write(await one_batch(f.vote(U1, f.tid(1), P)))
    assert not failures  # the first attempt failed after registering U1, and rolled back
    assert U1 in await registered(writer_db)


async def test_an_account_event_finds_a_did_first_mentioned_in_its_batch(
        writer_db: Database) -> None:
    await ingest(writer_db, [f.vote(U1, f.tid(1), P),
                             f.account(U1, False, "takendown", time_us=f.BASE_TIME_US + 10)])
    row = await writer_db.fetchrow("SELECT active, status FROM identities WHERE did = $1", U1)
    assert (row["active"], row["status"]) == (False, "takendown")
