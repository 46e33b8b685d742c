"""Replay source: a JSONL file of Jetstream v1 events (optionally zstd-compressed), read once.

Its cursor is the line number, so a replay interrupted by a database outage resumes exactly
where its last batch committed. The file is read synchronously in the reader task (local disk
is fast); the reader yields to the other tasks every CHECKPOINT_LINES lines and whenever the
batcher is full.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import trio
import zstandard

from ..decode import decode_jetstream
from ..errors import RejectedEvent
from . import Sink

__all__ = ["ReplaySource", "read_lines"]

CHECKPOINT_LINES: Final = 1000


def read_lines(path: Path) -> Iterator[bytes]:
    """The file's lines as bytes; `.zst` files are decompressed as a stream."""
    if path.suffix == ".zst":
        with path.open("rb") as raw:
            reader = zstandard.ZstdDecompressor().stream_reader(raw)
            yield from io.BufferedReader(reader, buffer_size=1 << 20)
    else:
        with path.open("rb", buffering=1 << 20) as handle:
            yield from handle


class ReplaySource:
    """Replays a Jetstream JSONL file. Cursor key `replay:<absolute path>`; cursor = line number."""

    label = "replay"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"replay:{path.resolve()}"

    async def run(self, start: int | None, sink: Sink) -> None:
        """Deliver every event after line `start` (None: from the first line); return at EOF."""
        skip_until = start or 0
        for number, line in enumerate(read_lines(self.path), start=1):
            if number % CHECKPOINT_LINES == 0:
                await trio.lowlevel.checkpoint()
            if number <= skip_until:
                continue
            line = line.strip()
            if not line:
                continue
            try:
                event = decode_jetstream(line, cursor=number)
            except RejectedEvent as rejected:
                await sink.reject(rejected, line, number)
                continue
            await sink.event(event)
