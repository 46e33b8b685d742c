"""API latency: the XRPC read endpoints over an index built from the Coves workload.

Builds a database from `bench.workload` (replayed through the engine, so counters, hot keys and
rank history are what production would hold), starts `coves api` in its own process, and times
sequential requests from this one (one client, one connection: latency, not throughput).

    python -m bench.api [--events 200000] [--requests 300] [--no-write]

Results are appended to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import httpx
import trio

from engine.db import open_bridge, open_database
from engine.pipeline import open_writer_database, run_ingest
from engine.sources.replay import ReplaySource

from ._measure import commit, machine
from ._postgres import open_server
from .ingest import SETTINGS
from .workload import generate, write_jsonl

RESULTS: Final = Path(__file__).resolve().parent / "RESULTS.md"

ROOT: Final = Path(__file__).resolve().parents[1]
START_TIMEOUT_S: Final = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _load(url: str, path: Path) -> dict[str, Any]:
    """Replay the workload into `url`; return subjects worth asking about."""
    async with open_bridge(), open_writer_database(url) as db:
        await run_ingest(db, ReplaySource(path), settings=SETTINGS, resume=False)
    async with open_bridge(), open_database(url, max_size=1) as db:
        # Fresh statistics, as autovacuum would gather within a minute of a bulk load: without
        # them the planner thinks the tables are nearly empty and picks plans that scan.
        await db.execute("ANALYZE")
        return {
            "community": await db.fetchval(
                "SELECT did FROM communities ORDER BY post_count DESC LIMIT 1"),
            "post": await db.fetchval("SELECT uri FROM posts ORDER BY comment_count DESC LIMIT 1"),
            "uris": [r["uri"] for r in await db.fetch(
                "SELECT uri FROM posts ORDER BY hot_key DESC LIMIT 25")],
            "posts": await db.fetchval("SELECT count(*) FROM posts"),
            "comments": await db.fetchval("SELECT count(*) FROM comments"),
        }


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def _time(http: httpx.Client, requests: int, make: Callable[[int], tuple[str, dict[str, Any]]]) -> list[float]:
    samples = []
    for n in range(requests):
        path, params = make(n)
        started = time.perf_counter()
        response = http.get(path, params=params)
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200, (path, response.status_code, response.text[:200])
    return samples


def run(events: int, requests: int) -> tuple[str, list[tuple[str, list[float]]]]:
    with tempfile.TemporaryDirectory(prefix="coves-bench-api-") as work:
        path = Path(work) / "events.jsonl"
        write_jsonl(path, generate(events))
        with open_server() as server:
            url = server.fresh("api")
            subjects = trio.run(_load, url, path)
            port = _free_port()
            environment = {**os.environ, "DATABASE_URL": url, "API_PORT": str(port),
                           "METRICS_PORT": "0", "LOG_LEVEL": "warning",
                           "SKIP_DID_WEB_VERIFICATION": "true",
                           "RATE_LIMIT_PER_MINUTE": "1000000",
                           "RATE_LIMIT_COMMENTS_PER_MINUTE": "1000000"}
            api = subprocess.Popen([sys.executable, "-m", "engine.cli", "api"], cwd=ROOT,
                                   env=environment)
            try:
                return _measure(f"http://127.0.0.1:{port}", subjects, requests)
            finally:
                api.send_signal(signal.SIGTERM)
                api.wait(timeout=30)


def _measure(base: str, subjects: dict[str, Any], requests: int) -> tuple[str, list[tuple[str, list[float]]]]:
    with httpx.Client(base_url=base, timeout=10) as http:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                http.get("/xrpc/_health")
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)  # the server process is starting; nothing to wait on but its port
        runs = []
        for name, make in [
            ("feed.getDiscover hot, first page (15)",
             lambda n: ("/xrpc/social.coves.feed.getDiscover", {"sort": "hot", "limit": 15})),
            ("feed.getCommunity hot (15), busiest community",
             lambda n: ("/xrpc/social.coves.feed.getCommunity",
                        {"community": subjects["community"], "sort": "hot"})),
            ("feed.getDiscover top, all time (15)",
             lambda n: ("/xrpc/social.coves.feed.getDiscover", {"sort": "top", "timeframe": "all"})),
            ("community.list popular (50)", lambda n: ("/xrpc/social.coves.community.list", {})),
            ("post.get (25 URIs)",
             lambda n: ("/xrpc/social.coves.community.post.get", {"uris": subjects["uris"]})),
            ("comment.getComments, most-commented post",
             lambda n: ("/xrpc/social.coves.community.comment.getComments",
                        {"post": subjects["post"], "sort": "hot", "limit": 50})),
        ]:
            _time(http, 20, make)  # warm: prepared statements, caches
            runs.append((name, _time(http, requests, make)))
            print(f"{name}: p50 {_percentile(runs[-1][1], 50) * 1000:.1f} ms", flush=True)
        # later pages of a walk (the snapshot-corrected statement)
        first = http.get("/xrpc/social.coves.feed.getDiscover", params={"sort": "hot"}).json()
        cursor = first.get("cursor")

        def next_page(n: int) -> tuple[str, dict[str, Any]]:
            return "/xrpc/social.coves.feed.getDiscover", {"sort": "hot", "cursor": cursor}

        if cursor:
            _time(http, 20, next_page)
            runs.append(("feed.getDiscover hot, page 2 (snapshot walk)", _time(http, requests, next_page)))
    world = f"{subjects['posts']:,} posts, {subjects['comments']:,} comments"
    return world, runs


def report(world: str, runs: list[tuple[str, list[float]]], command: str, requests: int) -> str:
    lines = [f"### API latency — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {commit()}",
             "",
             f"Machine: {machine()}. Command: `{command}`. Index: {world} (bench.workload, replayed "
             f"through the engine). `coves api` in its own process (Hypercorn, Trio worker, pool of "
             f"8); one sequential client over one connection; {requests} timed requests per row "
             f"after 20 warm-up ones.",
             "",
             "| request | p50 (ms) | p95 (ms) | p99 (ms) |",
             "|---|---:|---:|---:|"]
    for name, samples in runs:
        lines.append(f"| {name} | {_percentile(samples, 50) * 1000:.1f} | "
                     f"{_percentile(samples, 95) * 1000:.1f} | {_percentile(samples, 99) * 1000:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md")
    args = parser.parse_args(argv)
    command = "python -m bench.api " + " ".join(argv if argv is not None else sys.argv[1:])
    world, runs = run(args.events, args.requests)
    text = report(world, runs, command.strip(), args.requests)
    print()
    print(text)
    if not args.no_write:
        with RESULTS.open("a") as results:
            results.write("\n" + text)
        print(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
