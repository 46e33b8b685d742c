"""API under load, next to its server stack's own ceiling (issue 4, issue 8).

    python -m bench.api_load [--scale 1.0] [--users 100] [--seconds 60] [--step 6]

(prints its report; `python -m bench` runs it in the suite and writes it to bench/RESULTS.md)

* Dataset (bench/_dataset.py): 10k communities, 1M posts, 1M comments, 5M votes at scale 1, built
  once inside Postgres and kept in the benchmark server's data directory (a later run with the
  same scale and schema reuses it).
* `coves api` in its own process over it (Hypercorn Trio worker, Quart-Trio, its pool of 8).
* Users: 100 closed-loop users, each a request from a mix of feed, thread, community and profile
  reads (MIX) then 0.5-2 s of thinking, for 60 s: p50/p95/p99 and errors per endpoint.
* Saturation: open-loop steps of rising rate with no think time, then two bisecting steps; the
  saturation rate is the highest step answered with p95 < 100 ms, no errors and ≥ 95 % of the
  offered rate. Run for the hello-world server (bench/_hello.py: the same stack, one JSON route),
  feed reads only, and the whole mix, with the same load generator (bench/_loadgen.py, its own
  process) in the same run. The load is logged-out readers, who share answers for
  ANONYMOUS_CACHE_TTL_S (api/shared_answers.py); feed reads run once more against a server
  that shares nothing (every request a statement, as a logged-in viewer's are), and that is
  the server py-spy profiles.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import math
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

import orjson
import trio

from engine.db import open_bridge, open_database

from ._dataset import Dataset, build, check_sample
from ._measure import ROOT, CpuClock
from ._postgres import BenchServer, open_server

__all__ = ["ApiLoad", "Step", "main", "run_api_load"]

THINK_S: Final = (0.5, 2.0)
STEP_S: Final = 6.0  # seconds per saturation step
# Every endpoint here answers hundreds a second (from 25/s the feed sweeps spent 4 steps each, ~75 s
# of the suite, below it); a server that misses the first step is swept downwards instead.
FIRST_RATE: Final = 300.0  # every load here passes it: lower steps only cost suite time
LOWEST_RATE: Final = 1.0
WARM_UP_RATE: Final = 200.0
WARM_UP_STEPS: Final = 2  # at most two steps' time (a smoke run's steps are short)
RATE_FACTOR: Final = 1.5
REFINE_STEPS: Final = 2  # bisections after the sweep: the saturation rate to within ~11 %
P95_LIMIT_S: Final = 0.100
START_TIMEOUT_S: Final = 60.0
# The interactive mix: (share, endpoint). Feed reads are half of it.
MIX: Final = ((0.30, "feed.getDiscover"), (0.20, "feed.getCommunity"),
              (0.20, "comment.getComments"), (0.10, "community.get"), (0.05, "community.list"),
              (0.10, "actor.getProfile"), (0.05, "actor.getPosts"))
FEEDS: Final = ("feed.getDiscover", "feed.getCommunity")


@dataclasses.dataclass
class Step:
    rate: float
    seconds: float
    tally: dict[str, Any]
    server_s: float
    postgres_s: float
    loadgen_s: float

    def latencies(self, names: tuple[str, ...] | None = None) -> list[float]:
        return sorted(v for name, values in self.tally["latencies"].items()
                      if names is None or name in names for v in values)

    @property
    def answered(self) -> int:
        return sum(len(v) for v in self.tally["latencies"].values())

    @property
    def errors(self) -> int:
        return sum(self.tally["errors"].values())

    @property
    def achieved(self) -> float:
        return self.answered / self.seconds

    def p(self, q: float, names: tuple[str, ...] | None = None) -> float:
        values = self.latencies(names)
        return values[min(len(values) - 1, int(q / 100 * len(values)))] if values else float("nan")

    @property
    def ok(self) -> bool:
        return (self.errors == 0 and self.p(95) < P95_LIMIT_S
                and self.answered >= 0.95 * self.rate * self.seconds)


@dataclasses.dataclass
class ApiLoad:
    dataset: Dataset
    counts: dict[str, int]
    users: Step
    saturation: dict[str, list[Step]]  # "hello", "feeds", "mix" → steps in order
    sample_problems: list[str]
    profile: list[tuple[float, str]]  # (share, function) of the API server at saturation
    user_count: int = 100

    def saturation_rate(self, name: str) -> float:
        good = [step.rate for step in self.saturation[name] if step.ok]
        return max(good) if good else 0.0


# ---- the dataset ----

def dataset_url(server: BenchServer, dataset: Dataset, progress: Any = print) -> str:
    """The kept dataset's database, built first if missing or stale."""
    schema = f"api_{server.schema}_"
    name = schema + hashlib.sha256(dataset.key.encode()).hexdigest()[:8]
    for stale in server.drop_stale("api_", current=schema):
        progress(f"dataset: dropped {stale} (an older schema's)")
    if server.exists(name):
        url = server.named(name, fresh=False)
        if trio.run(_ready, url):
            progress(f"dataset: reusing {name}")
            return url
    url = server.named(name, fresh=True)
    progress(f"dataset: building {name}")
    trio.run(_build, url, dataset, progress)
    return url


async def _ready(url: str) -> bool:
    async with open_bridge(), open_database(url, max_size=1) as db:
        return bool(await db.fetchval("SELECT to_regclass('bench_dataset_ready') IS NOT NULL"))


async def _build(url: str, dataset: Dataset, progress: Any) -> None:
    async with open_bridge(), open_database(url, max_size=2) as db:
        await build(db, dataset, progress)
        await db.execute("CREATE TABLE bench_dataset_ready (built_at timestamptz DEFAULT now())")
        await db.execute("INSERT INTO bench_dataset_ready DEFAULT VALUES")


async def _subjects(url: str) -> dict[str, Any]:
    async with open_bridge(), open_database(url, max_size=1) as db:
        def column(rows: list[Any]) -> list[str]:
            return [r[0] for r in rows]

        return {
            "communities": column(await db.fetch(
                "SELECT did FROM communities ORDER BY post_count DESC, did LIMIT 500")),
            "posts": column(await db.fetch(
                "SELECT uri FROM post_stats WHERE deleted_at IS NULL "
                "ORDER BY hot_key DESC, uri DESC LIMIT 2000")),
            "users": column(await db.fetch(
                "SELECT did FROM actor_profiles ORDER BY md5(did) LIMIT 2000")),
            "counts": {t: await db.fetchval(f"SELECT count(*) FROM {t}")
                       for t in ("communities", "posts", "comments", "votes", "subscriptions")},
            "problems": await check_sample(db),
        }


def requests_for(subjects: dict[str, Any], names: tuple[str, ...] | None = None,
                 count: int = 2000, seed: int = 1) -> list[tuple[str, str]]:
    """(endpoint, path) pairs drawn from MIX (restricted to `names`), popular subjects first."""
    rng = random.Random(seed)
    mix = [(share, name) for share, name in MIX if names is None or name in names]

    def zipf(items: list[str]) -> str:
        return items[min(len(items) - 1, int(len(items) * rng.random() ** 3))]

    def path(name: str) -> str:
        sort = rng.choices(["hot", "new", "top"], [0.6, 0.2, 0.2])[0]
        params: dict[str, Any] = {
            "feed.getDiscover": {"sort": sort, "timeframe": "day"},
            "feed.getCommunity": {"community": zipf(subjects["communities"]), "sort": sort,
                                  "timeframe": "week"},
            "comment.getComments": {"post": zipf(subjects["posts"]), "sort": "hot"},
            "community.get": {"community": rng.choice(subjects["communities"])},
            "community.list": {"sort": "popular"},
            "actor.getProfile": {"actor": rng.choice(subjects["users"])},
            "actor.getPosts": {"actor": rng.choice(subjects["users"])},
        }[name]
        nsid = "social.coves.community.comment.getComments" if name == "comment.getComments" \
            else f"social.coves.{name}"
        return f"/xrpc/{nsid}?{urlencode(params)}"

    shares, endpoints = [s for s, _ in mix], [n for _, n in mix]
    return [(name, path(name)) for name in rng.choices(endpoints, shares, k=count)]


# ---- servers and load ----

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Server:
    """A server process on a free port: `coves api`, or the hello-world stack."""

    def __init__(self, command: list[str], env: dict[str, str], port: int) -> None:
        self.port = port
        self.process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env},
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    error = self.process.stderr.read().decode()[-2000:] if self.process.stderr else ""
                    raise RuntimeError(f"server did not start: {error}") from None
                time.sleep(0.2)  # waiting for the child to listen: nothing else to wait on

    def close(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def api_server(url: str, **env: str) -> _Server:
    port = _free_port()
    return _Server([sys.executable, "-m", "engine.cli", "api"], {
        "DATABASE_URL": url, "API_PORT": str(port), "METRICS_PORT": "0", "LOG_LEVEL": "warning",
        "SKIP_DID_WEB_VERIFICATION": "true", "RATE_LIMIT_PER_MINUTE": "1000000",
        "RATE_LIMIT_COMMENTS_PER_MINUTE": "1000000", **env}, port)


def hello_server() -> _Server:
    port = _free_port()
    return _Server([sys.executable, "-m", "bench._hello", "--port", str(port)], {}, port)


def load(server: _Server, requests: list[tuple[str, str]], postmaster: int | None,
         **job: Any) -> Step:
    """Run one load generator job against `server`; measure the CPU of each side."""
    generator = subprocess.Popen([sys.executable, "-m", "bench._loadgen"], cwd=ROOT,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    clock = CpuClock(postmaster, server.process.pid)
    out, _ = generator.communicate(orjson.dumps({"host": "127.0.0.1", "port": server.port,
                                                 "requests": requests, **job}))
    cpu = clock.stop()
    tally = orjson.loads(out)
    return Step(job.get("rate", 0.0), job["seconds"], tally, cpu.child_s, cpu.postgres_s,
                tally["cpu_s"])


def warm_up(server: _Server, requests: list[tuple[str, str]], step_s: float) -> None:
    """Send each request about once, at WARM_UP_RATE, before anything is measured: the pool's
    connections and plans, and the pages the requests read (in the suite the overload before
    has pushed the dataset out of memory). The sweeps' steps below FIRST_RATE used to do this."""
    seconds = min(len(requests) / WARM_UP_RATE, WARM_UP_STEPS * step_s)
    load(server, requests, None, mode="rate", rate=WARM_UP_RATE, seconds=seconds)


def saturate(server: _Server, requests: list[tuple[str, str]], postmaster: int | None,
             step_s: float, progress: Any, label: str) -> list[Step]:
    """Rising open-loop rates from FIRST_RATE until a rate misses (p95, errors or
    throughput) twice in a row (falling rates instead until one passes, if none did); then
    REFINE_STEPS steps between the highest rate passed and the lowest missed above it (each
    halves the gap on a log scale: 1.5× becomes ~1.11×). A miss counts once repeated: on this
    shared machine one step's hiccup decided a suite run's figure (759/s missed with a p95 of
    279 ms; 760/s then passed at 10 ms, and 850/s at 56 ms).

    Returns the steps in the order run."""
    steps: list[Step] = []

    def run(rate: float) -> Step:
        step = load(server, requests, postmaster, mode="rate", rate=rate, seconds=step_s)
        steps.append(step)
        progress(f"{label} @ {rate:,.0f}/s: {step.achieved:,.0f}/s answered, "
                 f"p95 {step.p(95) * 1000:.1f} ms, errors {step.errors}; CPU ms/request: server "
                 f"{step.server_s / max(step.answered, 1) * 1000:.2f}, Postgres "
                 f"{step.postgres_s / max(step.answered, 1) * 1000:.2f}, load generator "
                 f"{step.loadgen_s / max(step.answered, 1) * 1000:.2f}")
        return step

    def missed_twice(rate: float) -> bool:
        return not run(rate).ok and not run(rate).ok

    rate = FIRST_RATE
    while not missed_twice(rate):
        rate *= RATE_FACTOR
    rate = FIRST_RATE
    while not any(s.ok for s in steps) and rate / RATE_FACTOR >= LOWEST_RATE:
        rate /= RATE_FACTOR
        run(rate)
    passed = [s.rate for s in steps if s.ok]
    if passed:
        low = max(passed)
        high = min(s.rate for s in steps if s.rate > low)
        for _ in range(REFINE_STEPS):
            middle = math.sqrt(low * high)
            if run(middle).ok:
                low = middle
            else:
                high = middle
    return steps


def profile_server(server: _Server, requests: list[tuple[str, str]], rate: float,
                   seconds: float) -> list[tuple[float, str]]:
    """py-spy the server under a steady `rate`; return its busiest functions (inclusive), or
    nothing when py-spy is not installed (the `bench` extra)."""
    py_spy = Path(sys.executable).parent / "py-spy"
    if not py_spy.exists():
        return []
    out = Path(f"/tmp/coves-bench-api-profile-{os.getpid()}.txt")
    spy = subprocess.Popen([str(py_spy), "record", "--pid", str(server.process.pid), "-r", "200",
                            "-f", "raw", "-o", str(out), "-d", str(int(seconds))],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    load(server, requests, None, mode="rate", rate=rate, seconds=seconds)
    spy.wait()
    if not out.exists():
        return []
    from .profile import top_functions
    result = top_functions(out.read_text(), inclusive=True, limit=25)
    out.unlink()
    return result


def run_api_load(server: BenchServer, dataset: Dataset, *, users: int = 100, seconds: float = 60,
                 step_s: float = STEP_S, profile: bool = True, progress: Any = print) -> ApiLoad:
    url = dataset_url(server, dataset, progress)
    subjects = trio.run(_subjects, url)
    mix, feeds = requests_for(subjects), requests_for(subjects, FEEDS)
    saturation: dict[str, list[Step]] = {}
    hello = hello_server()
    try:
        saturation["hello"] = saturate(hello, [("hello", "/xrpc/bench.hello")], None, step_s,
                                       progress, "hello-world")
    finally:
        hello.close()
    api = api_server(url)
    try:
        warm_up(api, mix, step_s)
        interactive = load(api, mix, server.postmaster, mode="users", users=users,
                           seconds=seconds, think_s=list(THINK_S))
        progress(f"{users} users: {interactive.achieved:,.0f} req/s, p95 "
                 f"{interactive.p(95) * 1000:.1f} ms, errors {interactive.errors}")
        saturation["feeds"] = saturate(api, feeds, server.postmaster, step_s, progress, "feeds")
        saturation["mix"] = saturate(api, mix, server.postmaster, step_s, progress, "mix")
    finally:
        api.close()
    # The same feed reads with nothing shared: each request a statement, as a viewer's are.
    fresh = api_server(url, ANONYMOUS_CACHE_TTL_S="0")
    try:
        warm_up(fresh, feeds, step_s)
        saturation["feeds_fresh"] = saturate(fresh, feeds, server.postmaster, step_s, progress,
                                             "feeds, nothing shared")
        result = ApiLoad(dataset, subjects["counts"], interactive, saturation,
                         subjects["problems"], [], users)
        if profile:
            rate = max(result.saturation_rate("feeds_fresh"), FIRST_RATE)
            result.profile = profile_server(fresh, feeds, rate, 10)
    finally:
        fresh.close()
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.api_load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="dataset size (1.0: 1M posts)")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0, help="of the users' run")
    parser.add_argument("--step", type=float, default=STEP_S, help="seconds per saturation step")
    args = parser.parse_args(argv)
    from ._report import api_section  # it imports this module

    with open_server() as server:
        result = run_api_load(server, Dataset().scaled(args.scale), users=args.users,
                              seconds=args.seconds, step_s=args.step)
    print("\n".join(api_section(result)))


if __name__ == "__main__":
    main()
