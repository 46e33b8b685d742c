"""Commit lag under offered load, and an overload burst.

    python -m bench.lag [--mix coves] [--rates 500 2000 5000 10000 20000] [--duration 60]

Lag at a rate R: the emulator (its own process) offers the workload at R events/s, stamping each
event's time_us with the wall-clock time it was due (as Jetstream stamps an event when it arrives,
however late its subscriber reads it); the engine (its own process, bench/_engine_run.py) commits
and records commit time − time_us for every event. The offer lasts `duration` seconds; a run
ends when all R × duration events are committed, or GRACE_S after the offer ended (then R was not
sustainable), or once lag passes GIVE_UP_LAG_S. Lag is *bounded* at R when everything offered
was committed within GRACE_S of the end of the offer and p99 stayed under BOUNDED_P99_S.

Overload: offer 10 × the highest bounded rate for `burst` seconds; the engine's RSS is sampled
every 0.25 s (bounded: it plateaus while the backlog stays in the emulator and the socket), and
once the burst has drained the database must hold every record of the offered events, with no
rejects and every counter equal to a recount (`coves reconcile`).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Final

import orjson
import trio

from engine.db import open_bridge, open_database
from engine.reconcile import reconcile
from engine.sources.jetstream import DEFAULT_TRANSPORT

from ._jetstream_events import iter_events
from ._measure import ROOT, CpuClock, process_cpu_s
from ._postgres import CACHE_DIR, BenchServer, open_server
from .ingest import Emulator
from .workload import EventFile, cached_workload

__all__ = ["BOUNDED_P99_S", "GIVE_UP_LAG_S", "GRACE_S", "LAG_SEED", "OVERLOAD_SEED", "WORKLOADS_DIR",
           "LagRun", "OverloadRun", "lag_run", "main", "overload_run"]

WORKLOADS_DIR: Final = CACHE_DIR / "workloads"  # the offered streams, kept between runs
LAG_SEED: Final = 2  # the lag sweep's stream; the overload's is another
OVERLOAD_SEED: Final = 3
GRACE_S: Final = 15.0  # after the offer ends, how long the engine may take to catch up
GIVE_UP_LAG_S: Final = 10.0  # lag beyond this (2 × BOUNDED_P99_S): the rate is not sustainable
BOUNDED_P99_S: Final = 5.0
COLLECTION_TABLES: Final = {
    "social.coves.feed.vote": "votes",
    "social.coves.community.comment": "comment_records",
    "social.coves.community.post": "post_records",
    "social.coves.community.subscription": "subscriptions",
    "social.coves.community.block": "community_blocks",
    "social.coves.actor.profile": "actor_profiles",
    "social.coves.community.profile": "communities",
}


@dataclasses.dataclass
class LagRun:
    rate: float
    duration_s: float
    offered: int
    result: dict[str, Any]
    postgres_s: float
    emulator_s: float

    @property
    def committed(self) -> int:
        return int(self.result["committed"])

    @property
    def caught_up(self) -> bool:
        return self.committed >= self.offered and not self.result["gave_up"]

    @property
    def bounded(self) -> bool:
        return self.caught_up and self.result["p99"] < BOUNDED_P99_S

    @property
    def achieved(self) -> float:
        return self.committed / self.result["seconds"] if self.result["seconds"] else float("nan")


@dataclasses.dataclass
class OverloadRun:
    rate: float
    burst_s: float
    lag: LagRun
    missing: dict[str, tuple[int, int]]  # table → (expected, found) where they differ
    rejects: int
    drift: int

    @property
    def nothing_missing(self) -> bool:
        return not self.missing and self.rejects == 0 and self.drift == 0 and self.lag.caught_up


def _engine(url: str, ws_url: str, events: int, transport: str, max_seconds: float,
            give_up_lag_s: float) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench._engine_run", url, ws_url, "--events", str(events),
               "--transport", transport, "--max-seconds", str(max_seconds),
               "--give-up-lag-s", str(give_up_lag_s)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"engine run failed ({done.returncode}): {done.stderr.decode()[-3000:]}")
    result: dict[str, Any] = orjson.loads(done.stdout.splitlines()[-1])
    return result


def _offer(server: BenchServer, master: EventFile, name: str, rate: float, offered: int,
           transport: str, max_seconds: float, give_up_lag_s: float) -> tuple[str, LagRun]:
    offered = min(offered, master.events)
    url = server.fresh(name)
    with Emulator(master.path, rate=rate, stamp_time=True, limit=offered) as emulator:
        clock = CpuClock(server.postmaster)
        emulator_before = process_cpu_s(emulator.pid)
        result = _engine(url, emulator.url, offered, transport, max_seconds, give_up_lag_s)
        emulator_s = process_cpu_s(emulator.pid) - emulator_before
        time.sleep(0.5)  # the engine's backend has exited: let the postmaster reap it
        cpu = clock.stop()
    return url, LagRun(rate, offered / rate, offered, result, cpu.postgres_s, emulator_s)


def lag_run(server: BenchServer, master: EventFile, rate: float, duration_s: float,
            transport: str) -> LagRun:
    """Offer `rate` events/s for `duration_s` (or as many events as `master` holds)."""
    url, run = _offer(server, master, f"lag{int(rate)}", rate, int(rate * duration_s),
                      transport, duration_s + GRACE_S, GIVE_UP_LAG_S)
    server.drop(url)
    return run


def overload_run(server: BenchServer, master: EventFile, rate: float, burst_s: float,
                 transport: str, drain_rate: float) -> OverloadRun:
    """Offer `rate` events/s for `burst_s` s and wait until the engine drained all of it
    (at `drain_rate`, with a margin); then check that nothing is missing."""
    offered = int(rate * burst_s)
    max_seconds = burst_s + 3 * offered / max(drain_rate, 1.0) + 60
    url, run = _offer(server, master, "overload", rate, offered, transport, max_seconds, math.inf)
    expected = expected_rows(master.path, run.offered)
    missing, rejects, drift = trio.run(_check, url, expected)
    server.drop(url)
    return OverloadRun(rate, burst_s, run, missing, rejects, drift)


def expected_rows(path: Path, events: int) -> dict[str, int]:
    """Rows each record table must hold after the first `events` events: one per distinct record
    (deletes leave tombstones)."""
    keys: dict[str, set[tuple[str, str]]] = {table: set() for table in COLLECTION_TABLES.values()}
    for line in iter_events(path, events):
        event = orjson.loads(line)
        commit = event.get("commit")
        if commit and commit["collection"] in COLLECTION_TABLES:
            keys[COLLECTION_TABLES[commit["collection"]]].add((event["did"], commit["rkey"]))
    return {table: len(found) for table, found in keys.items()}


async def _check(url: str, expected: dict[str, int]) -> tuple[dict[str, tuple[int, int]], int, int]:
    async with open_bridge(), open_database(url, max_size=1) as db:
        missing = {}
        for table, count in expected.items():
            found = await db.fetchval(f"SELECT count(*) FROM {table}")
            if found != count:
                missing[table] = (count, found)
        rejects = await db.fetchval("SELECT count(*) FROM ingest_rejects")
        drift = len(await reconcile(db))
    return missing, rejects, drift


def main(argv: list[str] | None = None) -> None:
    """The lag runs alone (the suite, `python -m bench`, also runs the overload burst)."""
    parser = argparse.ArgumentParser(prog="python -m bench.lag", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mix", choices=("coves", "core"), default="coves")
    parser.add_argument("--rates", type=float, nargs="+", default=[500, 2000, 5000, 10_000, 20_000],
                        help="offered events/s, one run each")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of offer per rate")
    parser.add_argument("--transport", default=DEFAULT_TRANSPORT,
                        help="Jetstream transport: trio-websocket or sansio")
    args = parser.parse_args(argv)
    from ._report import lag_table

    runs: list[LagRun] = []
    with open_server() as server:
        master = cached_workload(WORKLOADS_DIR, int(max(args.rates) * args.duration), mix=args.mix,
                                 seed=LAG_SEED)
        for rate in args.rates:
            run = lag_run(server, master, rate, args.duration, args.transport)
            runs.append(run)
            print(f"{args.mix} @ {rate:,.0f} ev/s: p99 {run.result['p99'] * 1000:,.0f} ms, "
                  f"bounded {run.bounded}", flush=True)
    print("\n".join(lag_table(runs)))


if __name__ == "__main__":
    main()
