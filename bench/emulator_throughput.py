"""Measure how fast bench/emulator.py pushes frames to one client, and how well it keeps a rate.

Starts `python -m bench.emulator FILE --loop` in a child process and reads from it here with either
a trio-websocket client (what the engine uses) or a bare frame counter (the server's ceiling).
Run: `python -m bench.emulator_throughput [--seconds 5] [--repeat 3] [--events FILE]
[--zstd-dictionary PATH]`.

Measured 2026-11-26 on the 2-core VM (152 real v1 events looped, median of 3 x 5 s; other
sessions shared the machine, so runs under load came out 2-3x lower):
    trio-websocket client  plain ~40k frames/s (550 B), zstd ~51k (245 B); client ~100% CPU
    bare frame counter     plain ~48k frames/s, zstd ~48k; server 100% CPU (~21 us/frame)
    --rate 500 / 5000 / 20000 -> 500 / 5,000 / 19,987 frames/s
The server's ceiling is trio-websocket's send path, one `send_message` (wsproto framing, a lock,
one socket send, two scheduler passes) per frame: the same throwaway loop gave ~43k frames/s
through trio-websocket, ~90k with bare `SocketStream.send_all` per frame, and >500k when 16
pre-built frames share one `send_all`. A faster transport should batch frames per send.
A reader that wakes for every frame costs the sender more (VM wake-ups): the frame counter
sleeps 1 ms between reads so that it measures the server, not the wake-ups.
"""

from __future__ import annotations

import argparse
import base64
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import orjson
import trio
from trio_websocket import open_websocket_url

V1_EVENTS: Final = Path("/work/shared/jetstream-samples/expected_v1.jsonl")
V1_DICTIONARY: Final = Path("/work/shared/jetstream-samples/binary/legacy_subscribe.zdict")
WARMUP_S: Final = 1.0
CLK_TCK: Final = os.sysconf("SC_CLK_TCK")


def synthetic_events(n: int = 1000) -> list[bytes]:
    """Coves-like commit events of ~450 bytes, for runs without the shared samples."""
    return [orjson.dumps({
        "did": f"did:plc:user{i % 97:04d}", "time_us": 1_783_175_888_000_000 + i, "kind": "commit",
        "commit": {"rev": f"3mptbyp{i:06d}", "operation": "create",
                   "collection": "social.coves.community.post", "rkey": f"3mpt{i:09d}",
                   "cid": f"bafyreig{i:052d}",
                   "record": {"$type": "social.coves.community.post", "title": f"post {i}",
                              "content": "lorem ipsum " * 10,
                              "createdAt": "2026-07-04T14:38:08.999Z"}}}) for i in range(n)]


async def count_trio_websocket(url: str, seconds: float) -> tuple[int, int]:
    """Receive with trio-websocket for `seconds` after a warm-up; return (frames, bytes)."""
    async with open_websocket_url(url, max_message_size=16 * 2**20) as ws:
        frames = size = 0
        deadline = trio.current_time() + WARMUP_S
        while trio.current_time() < deadline:
            await ws.get_message()
        deadline = trio.current_time() + seconds
        while trio.current_time() < deadline:
            size += len(await ws.get_message())
            frames += 1
        return frames, size


async def count_raw_frames(url: str, seconds: float) -> tuple[int, int]:
    """Handshake by hand, then count server frames from their headers: no decoding at all."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    stream = await trio.open_tcp_stream(parts.hostname, parts.port)
    key = base64.b64encode(os.urandom(16)).decode()
    await stream.send_all(
        f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += await stream.receive_some(65536)
    assert buf.startswith(b"HTTP/1.1 101"), buf[:100]
    buf = buf[buf.index(b"\r\n\r\n") + 4:]
    frames = size = 0
    start = trio.current_time()
    counting_from = start + WARMUP_S
    while (now := trio.current_time()) < counting_from + seconds:
        await trio.sleep(0.001)  # let frames pile up: fewer wake-ups of this process
        buf += await stream.receive_some(1 << 20)
        pos = 0
        while len(buf) - pos >= 2:
            length, header = buf[pos + 1] & 0x7F, 2
            if length == 126:
                length, header = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
            elif length == 127:
                length, header = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
            if len(buf) - pos < header + length:
                break
            pos += header + length
            if now >= counting_from:
                frames += 1
                size += length
        buf = buf[pos:]
    await stream.aclose()
    return frames, size


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


async def measure(events_path: Path, dictionary: Path | None, client: str, compress: bool,
                  rate: float | None, seconds: float) -> tuple[float, float, float, float]:
    """Start an emulator process, read from it for `seconds`.

    Returns:
        frames/s, bytes per frame, server CPU share, client CPU share.
    """
    command = [sys.executable, "-m", "bench.emulator", str(events_path), "--port", "0", "--loop"]
    if dictionary is not None:
        command += ["--zstd-dictionary", str(dictionary)]
    if rate is not None:
        command += ["--rate", str(rate)]
    process = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE,
                                               cwd=Path(__file__).resolve().parents[1])
    try:
        assert process.stdout is not None
        line = b""
        while not line.endswith(b"\n"):
            line += await process.stdout.receive_some(1)
        url = line.decode().split()[1] + ("?compress=true" if compress else "")
        counter = count_trio_websocket if client == "trio-websocket" else count_raw_frames
        cpu_before, client_before = cpu_seconds(process.pid), time.process_time()
        frames, size = await counter(url, seconds)
        server_cpu = (cpu_seconds(process.pid) - cpu_before) / (seconds + WARMUP_S)
        client_cpu = (time.process_time() - client_before) / (seconds + WARMUP_S)
    finally:
        process.kill()
        await process.wait()
    return frames / seconds, size / max(frames, 1), server_cpu, client_cpu


async def report(events_path: Path, dictionary: Path | None, client: str, compress: bool,
                 rate: float | None, args: argparse.Namespace) -> None:
    """Measure one case `args.repeat` times; print the median run and the range."""
    runs = sorted([await measure(events_path, dictionary, client, compress, rate, args.seconds)
                   for _ in range(args.repeat)])
    median_rate, frame_bytes, server_cpu, client_cpu = runs[len(runs) // 2]
    wanted = "max" if rate is None else f"{rate:.0f}/s"
    print(f"{client:14} {'zstd' if compress else 'plain':5} rate={wanted:8} "
          f"{median_rate:9,.0f} frames/s (runs {runs[0][0]:,.0f}-{runs[-1][0]:,.0f}) "
          f"{median_rate * frame_bytes / 2**20:5.1f} MiB/s, {frame_bytes:.0f} B/frame; "
          f"CPU server {server_cpu:4.0%} ({server_cpu / median_rate * 1e6:.0f} us/frame) "
          f"client {client_cpu:4.0%}", flush=True)


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        events_path = args.events
        if events_path is None:
            events_path = Path(tmp) / "events.jsonl"
            events_path.write_bytes(b"\n".join(synthetic_events()) + b"\n")
        dictionary = args.zstd_dictionary
        print(f"events: {events_path}; dictionary: {dictionary}")
        for client in ("trio-websocket", "raw"):
            for compress in sorted({False, dictionary is not None}):
                await report(events_path, dictionary, client, compress, None, args)
        for rate in (500.0, 5000.0, 20000.0):
            await report(events_path, dictionary, "raw", False, rate, args)


def main() -> None:
    """Print frames/s for plain and zstd messages, two clients, and paced rates."""
    parser = argparse.ArgumentParser(prog="python -m bench.emulator_throughput",
                                     description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (median shown)")
    parser.add_argument("--events", type=Path,
                        default=V1_EVENTS if V1_EVENTS.exists() else None,
                        help="JSONL events (default: the shared v1 sample, else synthetic)")
    parser.add_argument("--zstd-dictionary", type=Path,
                        default=V1_DICTIONARY if V1_DICTIONARY.exists() else None,
                        help="dictionary for the zstd cases (default: the v1 one, if present)")
    trio.run(run, parser.parse_args())


if __name__ == "__main__":
    main()
