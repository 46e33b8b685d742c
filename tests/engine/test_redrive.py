"""`coves redrive`: rejects that now pass are applied and removed; the others stay, always."""

from __future__ import annotations

import trio

from engine.db import Database
from engine.redrive import redrive
from tests import factories as f
from tests.helpers import ingest, table

C1, C2 = f.did("community1"), f.did("community2")


async def test_a_reject_postgres_still_refuses_is_kept_not_dropped(writer_db: Database) -> None:
    with trio.fail_after(30):  # it also looped: the re-stored reject was examined again forever
        await _redrive_keeps_a_refused_reject(writer_db)


async def _redrive_keeps_a_refused_reject(writer_db: Database) -> None:
    # Postgres text cannot hold U+0000: decode and handler accept the event, the database does
    # not — before, redrive counted it "applied" and deleted its reject in the same transaction.
    await ingest(writer_db, [f.profile(C1, name="nul\u0000here"), f.profile(C2, name="fine")])
    before = await table(writer_db, "SELECT reason, did, raw FROM ingest_rejects")
    assert [(r["reason"], r["did"]) for r in before] == [("database_error", C1)]

    report = await redrive(writer_db)

    assert (report.examined, report.applied, report.still_rejected) == (1, 0, 1)
    after = await table(writer_db, "SELECT reason, did, raw FROM ingest_rejects")
    assert after == before
    # stored anew: a second redrive examines it once more, and again keeps it
    assert (await redrive(writer_db)).still_rejected == 1
    assert await writer_db.fetchval("SELECT count(*) FROM communities WHERE did = $1", C1) == 0
