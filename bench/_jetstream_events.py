"""Jetstream v1 events as the emulator buffers them: parsed once, encoded once per encoding.

Used by `bench/emulator.py`; also reads JSONL event files and builds the OVERSIZE fault's event.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import orjson
import zstandard

__all__ = ["BufferedEvent", "oversize_event", "read_events"]

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


def read_events(path: str | Path) -> list[bytes]:
    """Read a JSONL file of events, plain or whole-file zstd (no dictionary); skip blank lines."""
    data = Path(path).read_bytes()
    if data.startswith(ZSTD_MAGIC):
        reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data),
                                                            read_across_frames=True)
        data = reader.read()
    return [line for line in data.split(b"\n") if line.strip()]
