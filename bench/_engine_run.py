"""One engine run in a process of its own, for the lag and overload benchmarks: its RSS and CPU
are then the engine's alone. Prints one JSON object on stdout when done.

    python -m bench._engine_run DATABASE_URL WS_URL --events N [--transport T] [--max-seconds S]

It subscribes from cursor 0 to the emulator at WS_URL (which stamps each event's time_us when it
sends it), ingests until N events are committed (or `--max-seconds`, or until lag passes
`--give-up-lag-s`: the rate is then clearly not sustainable), and reports commit lag (commit
time − time_us) percentiles overall and per second, and RSS sampled every RSS_EVERY_S.
"""

from __future__ import annotations

import argparse
import array
import sys
import time
from typing import Any, Final

import orjson
import trio

from engine.batcher import Batch
from engine.db import open_bridge
from engine.pipeline import IngestSettings, open_writer_database, run_ingest
from engine.runtime import tune_gc
from engine.sources.jetstream import JetstreamSource

from ._measure import peak_rss_mib, rss_mib

__all__ = ["main"]

RSS_EVERY_S: Final = 0.25


def percentile(ordered: list[float] | array.array[float], p: float) -> float:
    """The p-th percentile of sorted values (nearest rank)."""
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


class LagRecorder:
    """Commit lag of every committed event, and when it was committed."""

    def __init__(self) -> None:
        self.lags = array.array("d")
        self.per_second: dict[int, list[float]] = {}
        self.committed = 0
        self.started = time.time()

    def committed_batch(self, batch: Batch) -> None:
        now = time.time()
        second = int(now - self.started)
        bucket = self.per_second.setdefault(second, [])
        for event, _ in batch.events:
            lag = now - event.time_us / 1_000_000
            self.lags.append(lag)
            bucket.append(lag)
        self.committed += batch.size

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.lags)
        series = []
        for second in sorted(self.per_second):
            values = sorted(self.per_second[second])
            series.append([second, len(values), percentile(values, 50), percentile(values, 99),
                           values[-1]])
        return {"p50": percentile(ordered, 50), "p95": percentile(ordered, 95),
                "p99": percentile(ordered, 99), "max": ordered[-1] if ordered else float("nan"),
                "series": series}


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    recorder = LagRecorder()
    done = trio.Event()
    gave_up = False
    rss: list[tuple[float, float]] = []

    def committed(batch: Batch) -> None:
        nonlocal gave_up
        recorder.committed_batch(batch)
        if recorder.committed >= args.events:
            done.set()
        elif recorder.lags and recorder.lags[-1] > args.give_up_lag_s:
            gave_up = True
            done.set()

    async def sample_rss() -> None:
        while True:
            rss.append((time.time() - recorder.started, rss_mib()))
            await trio.sleep(RSS_EVERY_S)

    source = JetstreamSource(args.ws_url, ("social.coves.*",), transport=args.transport)
    settings = IngestSettings(args.batch_max_rows, args.batch_max_latency_ms / 1000)
    cpu_before = time.process_time()
    async with open_bridge(), open_writer_database(args.database_url) as db, \
            trio.open_nursery() as nursery:
        nursery.start_soon(sample_rss)
        recorder.started = time.time()
        nursery.start_soon(lambda: run_ingest(db, source, settings=settings, start=0, resume=False,
                                              on_commit=committed))
        with trio.move_on_after(args.max_seconds):
            await done.wait()
        seconds = time.time() - recorder.started
        nursery.cancel_scope.cancel()
    return {"committed": recorder.committed, "seconds": seconds, "gave_up": gave_up,
            "cpu_s": time.process_time() - cpu_before,
            "peak_rss_mib": peak_rss_mib(),  # VmHWM: ru_maxrss would carry the parent's over exec
            "rss": rss, **recorder.summary()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench._engine_run", description=__doc__)
    parser.add_argument("database_url")
    parser.add_argument("ws_url")
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--transport", default="sansio")
    parser.add_argument("--max-seconds", type=float, default=600)
    parser.add_argument("--give-up-lag-s", type=float, default=30)
    parser.add_argument("--batch-max-rows", type=int, default=IngestSettings().batch_max_size)
    parser.add_argument("--batch-max-latency-ms", type=float,
                        default=IngestSettings().batch_max_latency_s * 1000)
    args = parser.parse_args(argv)
    tune_gc()
    result = trio.run(_run, args)
    sys.stdout.buffer.write(orjson.dumps(result, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n")


if __name__ == "__main__":
    main()
