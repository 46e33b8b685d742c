"""The writer ANALYZEs a table each time it got as many rows written as it held at its last
analysis (engine/table_stats.py), so plans prepared on a young database are made again before
they read a grown table whole."""

from __future__ import annotations

from engine.db import Database
from engine.table_stats import KEY_STATISTICS_TARGET, MIN_ROWS, GrowthAnalyzer
from engine.pipeline import IngestSettings, run_ingest
from tests import factories as f
from tests.helpers import MemorySource


def test_a_table_is_due_once_it_got_as_many_rows_as_it_held() -> None:
    growth = GrowthAnalyzer({"votes": ("uri",), "posts": ("uri",)}, min_rows=100)
    growth.count({"votes": 10_000})
    assert growth.due() == {}  # nothing is due before the table sizes are known
    growth.started({"votes": 0.0, "posts": 5000.0}, {"votes": 90, "posts": 0})
    growth.count({"votes": 9, "posts": 4999, "not_ours": 10**6})
    assert growth.due() == {}  # 99 < 100 (the floor), 4,999 < 5,000 held
    growth.count({"votes": 1, "posts": 1})
    assert growth.due() == {"votes": ("uri",), "posts": ("uri",)}
    growth.analyzed({"votes": 100.0})
    assert growth.due() == {"posts": ("uri",)}  # still waiting for its analysis
    growth.count({"votes": 99})
    assert growth.due() == {"posts": ("uri",)}
    growth.count({"votes": 1})
    assert growth.due() == {"votes": ("uri",), "posts": ("uri",)}


async def _reltuples(db: Database, table: str) -> float:
    value: float = await db.fetchval("SELECT reltuples FROM pg_class WHERE oid = to_regclass($1)",
                                     table)
    return value


async def test_the_writer_analyzes_a_table_when_it_has_doubled(writer_db: Database) -> None:
    # Only the writer analyzes votes here (autovacuum could analyze it at any time).
    await writer_db.execute("ALTER TABLE votes SET (autovacuum_enabled = off)")
    assert await _reltuples(writer_db, "votes") == -1  # never analyzed
    post = f"at://{f.did('community1')}/social.coves.community.post/{f.tid(1)}"
    half = MIN_ROWS // 2
    frames = [f.vote(f.did(f"user{n}"), f.tid(1), post) for n in range(3 * half)]
    # Batches of exactly `half` votes (the latency limit never ships one early).
    settings = IngestSettings(batch_max_size=half, batch_max_latency_s=60)
    await run_ingest(writer_db, MemorySource(frames, "memory"), settings=settings, resume=False)
    assert await writer_db.fetchval("SELECT count(*) FROM votes") == 3 * half
    # Analyzed after the second batch (1,000 rows written to an empty table), not after the
    # first (500 < the floor of 1,000) nor after the third (500 < the 1,000 rows it then held).
    assert await _reltuples(writer_db, "votes") == MIN_ROWS
    # Its key alone (the cheap part that fixes the plans); every column is autovacuum's job.
    analyzed = await writer_db.fetch("SELECT attname, n_distinct, "
                                     "cardinality(histogram_bounds::text::text[]) AS bounds "
                                     "FROM pg_stats WHERE tablename = 'votes'")
    assert [row["attname"] for row in analyzed] == ["uri"]
    # From a small sample: the key is unique, which a few thousand rows show as well as 30,000.
    assert analyzed[0]["n_distinct"] == -1
    assert analyzed[0]["bounds"] == KEY_STATISTICS_TARGET + 1
