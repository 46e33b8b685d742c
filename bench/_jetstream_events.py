"""Jetstream v1 events as the emulator buffers them: parsed once, encoded once per encoding.

Used by `bench/emulator.py`; also reads JSONL event files and builds the OVERSIZE fault's event.
"""

from __future__ import annotations

import io
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import orjson
import zstandard

__all__ = ["BufferedEvent", "iter_events", "oversize_event"]

ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"


@dataclass(slots=True)
class BufferedEvent:
    """One v1 event: its original bytes, the fields filters need, and its cached messages."""

    raw: bytes
    time_us: int
    did: str
    collection: str | None  # None for identity and account events
    zstd: bytes | None = None  # `raw` compressed with the emulator's dictionary

    @classmethod
    def parse(cls, frame: bytes) -> BufferedEvent:
        """Read the routing fields of a v1 event (one orjson parse); keep the bytes as they are.

        Raises:
            ValueError: not JSON, or no `did`, `time_us`, `kind` (and `commit.collection`).
        """
        try:
            doc = orjson.loads(frame)
            collection = doc["commit"]["collection"] if doc["kind"] == "commit" else None
            return cls(frame, int(doc["time_us"]), doc["did"], collection)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a Jetstream v1 event: {frame[:100]!r}") from exc

    def compressed(self, compressor: zstandard.ZstdCompressor) -> bytes:
        """`raw` as one zstd frame, compressed on first use and kept."""
        if self.zstd is None:
            self.zstd = compressor.compress(self.raw)
        return self.zstd

    def stamped(self, time_us: int) -> bytes:
        """`raw` with its top-level `time_us` replaced (the first `"time_us":` key: inside JSON
        strings quotes are escaped, and v1 events put the envelope before the record)."""
        raw = self.raw
        start = raw.find(b'"time_us":') + 10
        end = start
        while raw[end:end + 1].isdigit():
            end += 1
        return raw[:start] + str(time_us).encode() + raw[end:]

    def message(self, compressor: zstandard.ZstdCompressor | None) -> str | bytes:
        """Return the WebSocket message: JSON text, or one zstd frame if `compressor` is given.

        The zstd frame is computed on first use and kept, so replays to many subscribers (or the
        same buffer sent in a loop) do no compression work. The text is not kept: trio-websocket
        sends text only from `str`, decoding costs 0.07-0.33 us per ~550 B event against ~50 us
        per send measured here, and caching it would double the buffer's memory.
        """
        if compressor is None:
            return self.raw.decode()
        return self.compressed(compressor)


def oversize_event(size: int, time_us: int) -> BufferedEvent:
    """Build a commit event of exactly `size` bytes (the smallest one if `size` is smaller)."""
    time_us = time_us or time.time_ns() // 1000
    head = (b'{"did":"did:plc:emulatoroversize","time_us":%d,"kind":"commit","commit":{"rev":'
            b'"2222222222222","operation":"create","collection":"bench.emulator.oversize",'
            b'"rkey":"oversize","record":{"pad":"' % time_us)
    tail = b'"}}}'
    raw = head + b"a" * max(0, size - len(head) - len(tail)) + tail
    return BufferedEvent(raw, time_us, "did:plc:emulatoroversize", "bench.emulator.oversize")


def iter_events(path: str | Path, limit: int | None = None) -> Iterator[bytes]:
    """The events of a JSONL file, plain or whole-file zstd (no dictionary), read as needed;
    blank lines skipped. With `limit`, only the first `limit` (a cached workload may hold millions
    more than a run offers)."""
    with Path(path).open("rb") as raw:
        magic = raw.read(len(ZSTD_MAGIC))
        raw.seek(0)
        lines: Iterator[bytes] = raw
        if magic == ZSTD_MAGIC:
            reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
            lines = io.BufferedReader(reader)
        events = (line.rstrip(b"\n") for line in lines if line.strip())
        yield from itertools.islice(events, limit)
