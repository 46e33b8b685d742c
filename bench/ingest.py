"""Ingest throughput: the same events, the same run, every way in — and what each side costs.

    python -m bench.ingest [--mix coves|core] [--events 100000] [--quick]

For one generated workload (bench/workload.py, seeded) it runs, each into a fresh database:

* engine over each WebSocket transport: the emulator (its own process) serves the file as fast
  as the socket takes it; the engine (this process) subscribes from cursor 0 until it committed
  the last event (JETSTREAM_TRANSPORT = trio-websocket, then sansio);
* replay: the same file through the replay source (no socket);
* receive ceiling of each transport: the same emulator, a client that only receives messages;
* writer ceiling: the engine's batches built beforehand (decode, lexicon check, handlers,
  batcher), then only the writer's SQL timed (COPY → staging → rev-gated merge → recounts →
  cursor, one transaction per batch): the database's own ceiling for these rows;
* naive: each event in its own transaction, INSERT … ON CONFLICT + counter UPDATE (Coves' Go
  pattern, bench/_naive.py), for at most NAIVE_SECONDS.

Each row reports events/s and CPU seconds per 100k events of the engine process, Postgres (the
postmaster and all its children) and the emulator. Lag and overload are in bench/lag.py; the
whole suite (`python -m bench`) runs both and writes bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

import orjson
import trio

from engine.batcher import Batch, Batcher
from engine.breaker import Breaker
from engine.db import open_bridge
from engine.decode import decode_jetstream
from engine.errors import RejectedEvent
from engine.pipeline import IngestSettings, open_writer_database, run_ingest
from engine.records import DEFAULT_REGISTRY
from engine.router import Router
from engine.runtime import tune_gc
from engine.sources import Source
from engine.sources.jetstream import MAX_MESSAGE_BYTES, JetstreamSource
from engine.sources.replay import ReplaySource
from engine.sources.websocket import TRANSPORTS, open_message_stream
from engine.writer import WritePlan, Writer

from ._measure import ROOT, CpuClock, CpuSample
from ._naive import run_naive
from ._postgres import BenchServer, open_server
from .workload import generate, write_jsonl

__all__ = ["Run", "SETTINGS", "Emulator", "ingest", "main", "throughput_runs"]

SETTINGS: Final = IngestSettings()  # the engine's defaults (BATCH_MAX_ROWS, BATCH_MAX_LATENCY_MS)
NAIVE_SECONDS: Final = 20.0  # the naive baseline runs this long at most (it is ~10-50x slower)
COLLECTIONS: Final = ("social.coves.*",)


@dataclasses.dataclass
class Run:
    """One measured run: events through, seconds, and CPU seconds per side."""

    name: str
    events: int
    cpu: CpuSample
    note: str = ""

    @property
    def rate(self) -> float:
        return self.events / self.cpu.wall_s if self.cpu.wall_s > 0 else float("nan")

    def per_100k(self, seconds: float) -> float:
        return seconds / self.events * 100_000 if self.events else float("nan")

    def row(self) -> str:
        pg = self.per_100k(self.cpu.postgres_s)
        return (f"| {self.name} | {self.events:,} | {self.cpu.wall_s:.2f} | {self.rate:,.0f} | "
                f"{self.per_100k(self.cpu.self_s):.2f} | {'–' if math.isnan(pg) else f'{pg:.2f}'} | "
                f"{self.per_100k(self.cpu.child_s):.2f} |")


HEADER: Final = ("| run | events | seconds | events/s | CPU s/100k: this process | Postgres | "
                 "emulator |\n|---|---:|---:|---:|---:|---:|---:|")


# ---- the emulator in its own process ----

class Emulator:
    """`python -m bench.emulator FILE` in a child process (so its CPU is not the engine's)."""

    def __init__(self, path: Path, *, rate: float | None = None, stamp_time: bool = False,
                 limit: int | None = None) -> None:
        command = [sys.executable, "-m", "bench.emulator", str(path), "--port", "0"]
        if rate is not None:
            command += ["--rate", str(rate)]
        if limit is not None:
            command += ["--limit", str(limit)]
        if stamp_time:
            command.append("--stamp-time")
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("READY "):
            self.close()
            raise RuntimeError(f"emulator did not start: {line!r}")
        self.url = line.split()[1]

    @property
    def pid(self) -> int:
        return self.process.pid

    def close(self) -> None:
        self.process.terminate()
        self.process.wait()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---- runs ----

async def ingest(url: str, source: Source, last_cursor: int, *, start: int | None,
                 clock: CpuClock | None = None, on_commit: Callable[[Batch], None] | None = None,
                 settings: IngestSettings = SETTINGS) -> CpuSample | None:
    """Run the engine until it commits `last_cursor` (or beyond).

    Returns:
        `clock` stopped as the last batch committed (before the writer's connection closes: a
        backend that exits between two samples would take its CPU seconds with it).
    """
    done = trio.Event()

    def committed(batch: Batch) -> None:
        if on_commit is not None:
            on_commit(batch)
        if batch.cursor is not None and batch.cursor >= last_cursor:
            done.set()

    async with open_bridge(), open_writer_database(url) as db, trio.open_nursery() as nursery:
        if clock is not None:
            clock.start()
        nursery.start_soon(lambda: run_ingest(db, source, settings=settings, start=start,
                                              resume=False, on_commit=committed))
        await done.wait()
        cpu = clock.stop() if clock is not None else None
        nursery.cancel_scope.cancel()
    return cpu


def run_socket(server: BenchServer, path: Path, events: int, last_time_us: int,
               transport: str) -> Run:
    url = server.fresh(f"socket_{transport}")
    with Emulator(path) as emulator:
        source = JetstreamSource(emulator.url, COLLECTIONS, transport=transport)
        clock = CpuClock(server.postmaster, emulator.pid)
        cpu = trio.run(lambda: ingest(url, source, last_time_us, start=0, clock=clock))
    assert cpu is not None
    server.drop(url)
    return Run(f"engine, emulator → {transport} → Postgres", events, cpu)


def run_replay(server: BenchServer, path: Path, events: int) -> Run:
    url = server.fresh("replay")
    clock = CpuClock(server.postmaster)
    cpu = trio.run(lambda: ingest(url, ReplaySource(path), events, start=None, clock=clock))
    assert cpu is not None
    server.drop(url)
    return Run("engine, replay file → Postgres (no socket)", events, cpu)


async def _receive_all(url: str, transport: str, events: int) -> None:
    received = 0
    async with open_message_stream(transport, url + "?cursor=0", max_message_bytes=MAX_MESSAGE_BYTES,
                                   idle_timeout_s=60) as stream:
        while received < events:
            received += len(await stream.receive())


def run_receive_ceiling(path: Path, events: int, transport: str,
                        postmaster: int | None) -> Run:
    with Emulator(path) as emulator:
        clock = CpuClock(postmaster, emulator.pid)
        trio.run(_receive_all, emulator.url, transport, events)
        cpu = clock.stop()
    return Run(f"receive only, emulator → {transport} (socket ceiling)", events, cpu)


async def build_batches(frames: list[bytes], settings: IngestSettings = SETTINGS) -> list[Batch]:
    """The batches the engine would write for `frames` (replay cursors), built in memory."""
    send, receive = trio.open_memory_channel[Batch](math.inf)
    batcher = Batcher(send, source="bench", max_size=settings.batch_max_size, max_latency_s=3600,
                      known_collections=DEFAULT_REGISTRY.commits)
    router = Router(DEFAULT_REGISTRY, batcher, label="replay")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(batcher.run)
        for number, frame in enumerate(frames, start=1):
            try:
                await router.event(decode_jetstream(frame, cursor=number))
            except RejectedEvent as rejected:
                await router.reject(rejected, frame, number)
        await batcher.aclose()
    return [batch async for batch in receive]


async def _write_all(url: str, batches: list[Batch], postmaster: int | None) -> CpuSample:
    plan = WritePlan(DEFAULT_REGISTRY.tables, DEFAULT_REGISTRY.recounts)
    async with open_bridge(), open_writer_database(url) as db:
        writer = Writer(db, plan, breaker=Breaker("database"), label="bench")
        clock = CpuClock(postmaster)
        for batch in batches:
            await writer.write(batch)
        return clock.stop()


def run_writer_ceiling(server: BenchServer, frames: list[bytes]) -> Run:
    batches = trio.run(build_batches, frames)
    url = server.fresh("writer")
    cpu = trio.run(_write_all, url, batches, server.postmaster)
    server.drop(url)
    return Run("writer SQL only, batches built beforehand (database ceiling)", len(frames), cpu)


def run_naive_baseline(server: BenchServer, frames: list[bytes], max_seconds: float) -> Run:
    url = server.fresh("naive")
    applied, cpu = run_naive(url, frames, max_seconds, CpuClock(server.postmaster))
    server.drop(url)
    return Run("naive: one transaction per event, INSERT + counter UPDATE", applied, cpu,
               note=f"stopped after {max_seconds:g} s" if applied < len(frames) else "")


def throughput_runs(server: BenchServer, path: Path, *, naive_seconds: float = NAIVE_SECONDS,
                    progress: Callable[[Run], None] = lambda run: None) -> dict[str, Run]:
    """Every throughput run on the file at `path`; keys: socket:<transport>, replay,
    ceiling:<transport>, writer, naive."""
    frames = path.read_bytes().splitlines()
    last_time_us = orjson.loads(frames[-1])["time_us"]
    runs: dict[str, Run] = {}

    def done(key: str, run: Run) -> None:
        runs[key] = run
        progress(run)

    for transport in TRANSPORTS:
        done(f"socket:{transport}", run_socket(server, path, len(frames), last_time_us, transport))
    done("replay", run_replay(server, path, len(frames)))
    for transport in TRANSPORTS:
        done(f"ceiling:{transport}", run_receive_ceiling(path, len(frames), transport,
                                                         server.postmaster))
    done("writer", run_writer_ceiling(server, frames))
    done("naive", run_naive_baseline(server, frames, naive_seconds))
    return runs


def ratios(runs: dict[str, Run]) -> list[tuple[str, float]]:
    """The ratios issue 8 asks for, named."""
    out = []
    for transport in TRANSPORTS:
        socket, ceiling = runs.get(f"socket:{transport}"), runs.get(f"ceiling:{transport}")
        if socket and ceiling:
            out.append((f"engine({transport}) / receive ceiling({transport})",
                        socket.rate / ceiling.rate))
    best = max((runs[k] for k in runs if k.startswith("socket:")), key=lambda r: r.rate, default=None)
    if best and "writer" in runs:
        out.append(("best engine / writer ceiling (database)", best.rate / runs["writer"].rate))
    if best and "naive" in runs:
        out.append(("best engine / naive", best.rate / runs["naive"].rate))
    if "socket:sansio" in runs and "socket:trio-websocket" in runs:
        out.append(("engine sansio / engine trio-websocket",
                    runs["socket:sansio"].rate / runs["socket:trio-websocket"].rate))
    if "replay" in runs and "writer" in runs:
        out.append(("replay / writer ceiling", runs["replay"].rate / runs["writer"].rate))
    return out


def table(runs: dict[str, Run]) -> str:
    lines = [HEADER, *[run.row() for run in runs.values()], ""]
    lines += [f"- {name}: **{value:.2f}**" for name, value in ratios(runs)]
    notes = [f"- {run.name}: {run.note}" for run in runs.values() if run.note]
    return "\n".join(lines + notes)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--mix", default="coves", help="workload mix (bench/workload.py MIXES)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3000 events")
    args = parser.parse_args(argv)
    tune_gc()  # the engine runs in this process as `coves run` runs it
    events = 3000 if args.quick else args.events
    with tempfile.TemporaryDirectory(prefix="coves-bench-") as work:
        path = Path(work) / "events.jsonl"
        write_jsonl(path, generate(events, mix=args.mix))
        with open_server() as server:
            started = time.perf_counter()
            runs = throughput_runs(server, path, naive_seconds=2 if args.quick else NAIVE_SECONDS,
                                   progress=lambda run: print(run.row(), flush=True))
    print()
    print(table(runs))
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
