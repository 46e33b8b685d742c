"""`python -m bench --quick` runs every benchmark end to end and reports every target. It asserts
that the suite runs, produces its report and plots, and what it checks for correctness (the
overload leaves nothing missing), never timings: CI machines are shared and noisy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench._measure import CpuSample
from bench._report import BEGIN, END, overload_text, replace_section
from bench.ingest import Run
from bench.lag import LagRun, OverloadRun
from bench.suite import cpu_floor, pipeline_floor, targets

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("### Throughput, core mix", "### Throughput, coves mix", "### Lag, coves mix",
            "### Overload, coves mix", "### API load", "### Targets")
PLOTS = ("throughput.png", "lag_percentiles.png", "lag_over_time.png", "overload_rss.png",
         "api_saturation.png")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_quick_suite_runs_every_benchmark_and_writes_its_report_and_plots(
        pg_admin_url: str, tmp_path: Path) -> None:
    kept = tmp_path / "RESULTS.md"
    kept.write_text("# Hand-written notes\n\nkept as they are\n")
    results = ROOT / "bench" / "RESULTS.md"
    before = results.read_bytes()
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
                          cwd=ROOT, timeout=900, capture_output=True, check=False,
                          env={**os.environ, "DATABASE_URL": pg_admin_url})
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    report = kept.read_text()
    assert report.startswith("# Hand-written notes\n\nkept as they are\n")
    assert report.count(BEGIN) == 1 and report.count(END) == 1
    for section in SECTIONS:
        assert section in report, section
    assert "**Nothing missing.**" in report
    assert "| api | feed reads saturation / hello-world, logged out (answers shared for 1 s) |" in report
    assert "| api | feed reads saturation / hello-world, nothing shared (each request a statement) |" in report
    assert "| feed reads, nothing shared (each request a statement) |" in report
    for name in PLOTS:
        assert (tmp_path / "plots" / name).read_bytes().startswith(PNG_SIGNATURE), name
        assert f"![{name}](plots/{name})" in report
    assert results.read_bytes() == before  # --out: the repository's report is left alone


def test_a_new_run_replaces_the_last_one_and_keeps_the_hand_written_text() -> None:
    first = replace_section("# Notes\n", "## Suite — run 1\n")
    assert first == f"# Notes\n\n{BEGIN}\n## Suite — run 1\n{END}\n"
    second = replace_section(first + "\nAnalysis by hand.\n", "## Suite — run 2")
    assert second == f"# Notes\n\n{BEGIN}\n## Suite — run 2\n{END}\n\nAnalysis by hand.\n"


def test_a_throughput_target_out_of_reach_names_the_cores_it_would_need() -> None:
    # 10,000 events in 1 s with 0.6 s of engine, 0.5 s of Postgres and 0.1 s of emulator CPU:
    # 12 CPU-s per 100k events, so 40,000 ev/s would need 4.8 cores and 15,000 only 1.8.
    run = Run("engine", 10_000, CpuSample(wall_s=1.0, self_s=0.6, postgres_s=0.5, child_s=0.1))
    note = cpu_floor(run, 40_000, cores=2)
    assert note.startswith("CPU-bound: at 40,000 ev/s")
    assert "engine 6.0, Postgres 5.0, emulator 1.0 CPU-s/100k" in note
    assert "needs 4.8 cores; the machine has 2" in note
    assert cpu_floor(run, 15_000, cores=2) == ""
    remote = Run("engine", 10_000, CpuSample(1.0, 0.6, float("nan"), 0.1))  # Postgres unmeasured
    assert "Postgres" not in cpu_floor(remote, 40_000, cores=2)


def test_a_throughput_target_neither_postgres_nor_the_cpu_explains_names_the_pipeline() -> None:
    # As core replay at 2de11de: 49,566 ev/s against 50,000, the writer's SQL alone 58,505, and
    # 2.8 CPU-s per 100k events (2 cores would carry 71k ev/s).
    replay = Run("engine, replay", 40_000, CpuSample(0.807, 0.51, 0.60, 0.0))
    writer = Run("writer", 40_000, CpuSample(0.684, 0.08, 0.61, 0.0))
    assert cpu_floor(replay, 50_000, cores=2) == ""
    assert pipeline_floor(replay, writer).startswith(
        "pipeline-bound: the writer's SQL alone takes 0.68 s of this run's 0.81 s")


def test_the_overload_paragraph_says_what_the_drain_cost_each_side() -> None:
    # 6M events committed with 2,600 s of engine, 3,300 s of Postgres and 120 s of emulator CPU.
    result = {"seconds": 415.0, "rss": [(0.0, 200.0), (1.0, 230.0)], "peak_rss_mib": 425.0,
              "max": 354.9, "cpu_s": 2_600.0, "committed": 6_000_000, "gave_up": False,
              "p99": 300.0}
    drain = LagRun(100_000, 60, 6_000_000, result, postgres_s=3_300.0, emulator_s=120.0)
    text = "\n".join(overload_text(OverloadRun(100_000, 60, drain, {}, 0, 0)))
    assert "CPU seconds per 100k events, engine / Postgres / emulator: 43.33 / 55.00 / 2.00" in text
    assert "**Nothing missing.**" in text
