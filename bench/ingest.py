"""Ingest benchmark: events/s through the emulator and from a file, and commit lag at fixed rates.

    python -m bench.ingest                 # 100k events, lag at 1k and 5k ev/s for 20 s each
    python -m bench.ingest --quick         # a smoke run (CI): small numbers, same code paths

Every run uses the same generated workload (bench/workload.py, seeded) and a fresh database
(DATABASE_URL's server, or an embedded Postgres in a temp dir). Figures are printed and appended
to bench/RESULTS.md with the machine, date, commit and command.

* socket: the emulator in its own process serves the file at full speed over WebSocket; the
  engine (this process) subscribes from cursor 0 until it committed the last event.
* replay: the same file through the replay source (no socket).
* lag@R: the emulator (in this process) publishes live at R events/s, stamping each event's
  time_us with the wall clock when it is published, as Jetstream does; lag = commit time − time_us.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Final

import orjson
import trio

from bench.emulator import JetstreamEmulator
from bench.workload import generate, write_jsonl
from engine.batcher import Batch
from engine.db import open_bridge, open_database
from engine.migrate import apply_migrations
from engine.pipeline import IngestSettings, open_writer_database, run_ingest
from engine.sources import Source
from engine.sources.jetstream import JetstreamSource
from engine.sources.replay import ReplaySource

ROOT: Final = Path(__file__).resolve().parents[1]
RESULTS: Final = ROOT / "bench" / "RESULTS.md"
SETTINGS: Final = IngestSettings()  # the engine's defaults: 5000 events or 100 ms


@dataclasses.dataclass
class Figure:
    name: str
    events: int
    seconds: float
    lags_s: list[float] = dataclasses.field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.lags_s)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")

    def row(self) -> str:
        lag = (f"{self.percentile(50) * 1000:.0f} / {self.percentile(95) * 1000:.0f} / "
               f"{self.percentile(99) * 1000:.0f}" if self.lags_s else "–")
        return f"| {self.name} | {self.events:,} | {self.seconds:.2f} | {self.rate:,.0f} | {lag} |"


# ---- Postgres for the runs ----

@contextmanager
def open_server(work: Path) -> Iterator[Callable[[str], str]]:
    """Yield a function that makes a fresh, migrated database and returns its URL."""
    admin_url = os.environ.get("DATABASE_URL")
    server = None
    if admin_url is None:
        import pgserver
        from engine.embedded_pg import url_for
        server = pgserver.get_server(work / "pgdata", cleanup_mode="stop")
        admin_url = url_for(server, "postgres")
    counter = iter(range(1_000_000))

    def fresh(name: str) -> str:
        database = f"bench_{name}_{next(counter)}".replace("@", "_").replace(".", "_")

        async def create() -> str:
            async with open_bridge(), open_database(admin_url, max_size=1) as admin:
                await admin.execute(f"DROP DATABASE IF EXISTS {database}")
                await admin.execute(f"CREATE DATABASE {database}")
            url = admin_url.replace("/postgres?", f"/{database}?", 1) if "?" in admin_url \
                else admin_url.rsplit("/", 1)[0] + f"/{database}"
            async with open_bridge(), open_database(url, max_size=1) as db:
                await apply_migrations(db)
            return url

        return trio.run(create)

    try:
        yield fresh
    finally:
        if server is not None:
            server.cleanup()


# ---- the runs ----

async def _ingest(url: str, source: Source, last_cursor: int, *, start: int | None,
                  on_commit: Callable[[Batch], None] | None = None) -> float:
    """Run the engine until it commits `last_cursor`; return the seconds it took."""
    done = trio.Event()
    started = time.perf_counter()

    def committed(batch: Batch) -> None:
        if on_commit is not None:
            on_commit(batch)
        if batch.cursor is not None and batch.cursor >= last_cursor:
            done.set()

    async with open_bridge(), open_writer_database(url) as db, trio.open_nursery() as nursery:
        nursery.start_soon(lambda: run_ingest(db, source, settings=SETTINGS, start=start,
                                              resume=False, on_commit=committed))
        await done.wait()
        elapsed = time.perf_counter() - started
        nursery.cancel_scope.cancel()
    return elapsed


def run_socket(url: str, path: Path, events: int, last_time_us: int) -> Figure:
    emulator = subprocess.Popen([sys.executable, "-m", "bench.emulator", str(path), "--port", "0"],
                                stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert emulator.stdout is not None
        line = emulator.stdout.readline()
        if not line.startswith("READY "):
            raise RuntimeError(f"emulator did not start: {line!r}")
        source = JetstreamSource(line.split()[1], ("social.coves.*",))
        seconds = trio.run(lambda: _ingest(url, source, last_time_us, start=0))
    finally:
        emulator.terminate()
        emulator.wait()
    return Figure("socket (emulator → trio-websocket → Postgres)", events, seconds)


def run_replay(url: str, path: Path, events: int) -> Figure:
    seconds = trio.run(lambda: _ingest(url, ReplaySource(path), events, start=None))
    return Figure("replay (file → Postgres)", events, seconds)


def run_lag(url: str, frames: list[bytes], rate: float, duration_s: float) -> Figure:
    count = min(len(frames), int(rate * duration_s))
    lags: list[float] = []

    def committed(batch: Batch) -> None:
        now_us = time.time() * 1_000_000
        lags.extend((now_us - event.time_us) / 1_000_000 for event, _ in batch.events)

    async def main() -> float:
        emulator = JetstreamEmulator()
        async with trio.open_nursery() as nursery:
            await nursery.start(emulator.serve)
            source = JetstreamSource(emulator.url, ("social.coves.*",))
            result: list[float] = []

            async def engine() -> None:
                result.append(await _ingest(url, source, 2**62, start=None, on_commit=committed))

            nursery.start_soon(engine)
            await emulator.wait_for_connections(1)
            started = trio.current_time()
            for index, frame in enumerate(frames[:count]):
                due = started + index / rate
                if due > trio.current_time():
                    await trio.sleep_until(due)
                event = orjson.loads(frame)
                event["time_us"] = int(time.time() * 1_000_000)
                emulator.publish(orjson.dumps(event))
            with trio.move_on_after(30):
                while len(lags) < count:
                    await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
        return trio.current_time() - started

    seconds = trio.run(main)
    return Figure(f"lag @ {rate:,.0f} ev/s for {duration_s:g} s", len(lags), seconds, lags)


# ---- report ----

def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, Python {platform.python_version()}"


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=ROOT, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def report(figures: list[Figure], command: str) -> str:
    lines = [
        f"### Ingest — {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, commit {commit()}",
        "",
        f"Machine: {machine()}. Command: `{command}`. Engine defaults: batches of "
        f"{SETTINGS.batch_max_size} events or {SETTINGS.batch_max_latency_s * 1000:.0f} ms.",
        "",
        "| run | events | seconds | events/s | lag p50 / p95 / p99 (ms) |",
        "|---|---:|---:|---:|---|",
        *[figure.row() for figure in figures],
        "",
    ]
    by_name = {f.name.split(" ")[0]: f for f in figures}
    if "socket" in by_name and "replay" in by_name:
        ratio = by_name["socket"].rate / by_name["replay"].rate
        lines += [f"Ratio socket / replay in this run: {ratio:.2f}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rates", type=float, nargs="*", default=[1000, 5000],
                        help="offered rates for the lag runs (events/s)")
    parser.add_argument("--duration", type=float, default=20, help="seconds per lag run")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5000 events, 3 s of lag")
    parser.add_argument("--mix", default="coves", help="workload mix (bench/workload.py MIXES)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md")
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.rates, args.duration = 5000, [1000], 3
    command = "python -m bench.ingest " + " ".join(argv if argv is not None else sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="coves-bench-") as work:
        work_path = Path(work)
        path = work_path / "events.jsonl"
        write_jsonl(path, generate(args.events, mix=args.mix))
        frames = path.read_bytes().splitlines()
        last_time_us = orjson.loads(frames[-1])["time_us"]
        figures = []
        with open_server(work_path) as fresh:
            figures.append(run_socket(fresh("socket"), path, len(frames), last_time_us))
            print(figures[-1].row(), flush=True)
            figures.append(run_replay(fresh("replay"), path, len(frames)))
            print(figures[-1].row(), flush=True)
            for rate in args.rates:
                figures.append(run_lag(fresh(f"lag{int(rate)}"), frames, rate, args.duration))
                print(figures[-1].row(), flush=True)
    text = report(figures, command.strip())
    print()
    print(text)
    if not args.no_write:
        with RESULTS.open("a") as results:
            results.write("\n" + text)
        print(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
