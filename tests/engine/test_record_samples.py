"""Coves' own sample records (../shared/coves-lexicons/record-samples): every `*-valid*` one of a
collection we index is applied by the engine, every `*-invalid*` one is rejected with a reason."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from engine.db import Database
from engine.records import DEFAULT_REGISTRY
from engine.syntax import make_tid
from tests import factories as f
from tests.conftest import SHARED
from tests.helpers import ingest, table

SAMPLES = SHARED / "coves-lexicons" / "record-samples"
ALL = sorted(SAMPLES.rglob("*.json")) if SAMPLES.exists() else []
INDEXED = [p for p in ALL if orjson.loads(p.read_bytes()).get("$type") in DEFAULT_REGISTRY.commits]


def repo_and_rkey(record: dict) -> tuple[str, str]:
    """Where the record would live: posts in their community, profiles at rkey self, …"""
    collection = record["$type"]
    if collection == f.POST and isinstance(record.get("community"), str) and record["community"].startswith("did:"):
        return record["community"], make_tid(1_780_000_000_000_000)
    if collection.endswith(".profile"):
        return f.did("sample"), "self"
    return f.did("sample"), make_tid(1_780_000_000_000_000)


def frame_for(path: Path) -> bytes:
    record = orjson.loads(path.read_bytes())
    repo, rkey = repo_and_rkey(record)
    return f.commit(repo, record["$type"], rkey, record=record)


def test_samples_present() -> None:
    if not SAMPLES.exists():
        pytest.skip(f"{SAMPLES} not present: the sample conformance tests read Coves' samples")
    assert INDEXED, "no sample of an indexed collection found"


@pytest.mark.parametrize("path", INDEXED, ids=lambda p: f"{p.parent.name}/{p.stem}")
async def test_sample_is_applied_or_rejected_as_named(writer_db: Database, path: Path) -> None:
    await ingest(writer_db, [frame_for(path)])
    rejects = await table(writer_db, "SELECT reason, detail FROM ingest_rejects")
    if "-invalid" in path.stem:
        assert len(rejects) == 1, f"{path.name} was accepted"
        assert rejects[0]["reason"] in {"invalid_record", "wrong_repo"}
        assert ": " in rejects[0]["detail"]  # names the field and the rule
    else:
        assert rejects == [], f"{path.name} was rejected: {rejects}"
