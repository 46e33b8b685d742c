"""An HTTP/1.1 load generator for the API benchmarks: keep-alive connections, requests written
as prepared bytes, responses read by Content-Length — a few tens of µs of CPU per request, so it
stays a small share of the 2 cores next to the server it measures.

Two ways to load a server, both recording each request's latency under its endpoint's name:

* `run_users`: closed loop — N users, each sends a request and, once it is answered, thinks for
  a random 0.5-2 s before the next (the interactive mix).
* `run_rate`: open loop — requests start at a fixed rate whatever the server does; latency counts
  from when a request was due, so a server that falls behind shows it (no coordinated omission).

Runs on plain asyncio in a process of its own (`python -m bench._loadgen`, JSON in and out), so
neither its CPU nor its event loop mixes with the server's or the benchmark's.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

__all__ = ["Request", "Tally", "main"]

TIMEOUT_S: Final = 10.0  # a request slower than this counts as an error
MAX_CONNECTIONS: Final = 256  # open loop: requests beyond this many in flight queue for one


@dataclass(frozen=True)
class Request:
    name: str  # the endpoint, as reported
    path: str  # path and query string


@dataclass
class Tally:
    """Latencies (seconds) and errors per endpoint name."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    statuses: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def as_json(self) -> dict[str, Any]:
        return {"latencies": self.latencies, "errors": self.errors, "statuses": self.statuses}


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def get(self, request: bytes) -> tuple[int, bytes, bool]:
        """(status, body, whether the server keeps the connection open)."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        keep = True
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                keep = False
        body = await self.reader.readexactly(length) if length else b""
        return status, body, keep


class _Client:
    """Connections to one server, reused; a failed one is replaced."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[_Connection] = []
        self.slots = asyncio.Semaphore(MAX_CONNECTIONS)

    def encode(self, path: str) -> bytes:
        return f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode()

    async def get(self, request: bytes) -> tuple[int, bytes]:
        async with self.slots:
            connection = self.idle.pop() if self.idle else _Connection(
                *await asyncio.open_connection(self.host, self.port))
            try:
                status, body, keep = await asyncio.wait_for(connection.get(request), TIMEOUT_S)
            except BaseException:
                connection.writer.close()
                raise
            # Hypercorn closes a connection after keep_alive_max_requests (1000) and says so:
            # reusing it would fail the next request, an error of this client, not the server.
            if keep:
                self.idle.append(connection)
            else:
                connection.writer.close()
            return status, body


async def _timed(client: _Client, tally: Tally, name: str, request: bytes, due: float) -> None:
    try:
        status, _ = await client.get(request)
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
        tally.errors[name] += 1
        tally.statuses["failed"] += 1
        return
    tally.statuses[str(status)] += 1
    if status != 200:
        tally.errors[name] += 1
    tally.latencies[name].append(time.perf_counter() - due)


async def run_users(host: str, port: int, requests: list[Request], users: int, seconds: float,
                    think_s: tuple[float, float], seed: int = 1) -> Tally:
    """`users` closed-loop users for `seconds`; each picks its next request at random."""
    client, tally = _Client(host, port), Tally()
    encoded = [(r.name, client.encode(r.path)) for r in requests]
    deadline = time.perf_counter() + seconds

    async def user(n: int) -> None:
        rng = random.Random(seed * 1000 + n)
        await asyncio.sleep(rng.uniform(0, think_s[1]))  # users arrive spread out
        while time.perf_counter() < deadline:
            name, request = rng.choice(encoded)
            await _timed(client, tally, name, request, time.perf_counter())
            await asyncio.sleep(rng.uniform(*think_s))

    await asyncio.gather(*(user(n) for n in range(users)))
    return tally


async def run_rate(host: str, port: int, requests: list[Request], rate: float, seconds: float,
                   seed: int = 1) -> Tally:
    """Start requests at `rate` per second for `seconds` (evenly spaced); wait for them all."""
    client, tally = _Client(host, port), Tally()
    encoded = [(r.name, client.encode(r.path)) for r in requests]
    rng = random.Random(seed)
    tasks = []
    start = time.perf_counter()
    count = int(rate * seconds)
    for k in range(count):
        due = start + k / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        name, request = rng.choice(encoded)
        tasks.append(asyncio.ensure_future(_timed(client, tally, name, request, due)))
    await asyncio.gather(*tasks)
    return tally


def main() -> None:
    """Read a job from stdin as JSON, run it, print the tally and the CPU seconds as JSON."""
    job = orjson.loads(sys.stdin.buffer.read())
    requests = [Request(name, path) for name, path in job["requests"]]
    started = time.process_time()
    if job["mode"] == "users":
        tally = asyncio.run(run_users(job["host"], job["port"], requests, job["users"],
                                      job["seconds"], tuple(job["think_s"])))
    else:
        tally = asyncio.run(run_rate(job["host"], job["port"], requests, job["rate"],
                                     job["seconds"]))
    result = {**tally.as_json(), "cpu_s": time.process_time() - started}
    sys.stdout.buffer.write(orjson.dumps(result))


if __name__ == "__main__":
    main()
