"""Sources: where events come from. Each yields normalised Events to a Sink.

    jetstream.py  Jetstream v1 over WebSocket (live; reconnects)
    replay.py     a JSONL file of Jetstream events (ends at end of file)
    reconnect.py  the reconnect policy they share: backoff with jitter, idle watchdog

A source is told where to start (the committed cursor) and keeps its own position while it runs:
on reconnect it resumes from the last event it delivered, minus its rewind.
"""

from __future__ import annotations

from typing import Protocol

from ..errors import RejectedEvent
from ..events import Event

__all__ = ["Sink", "Source"]


class Sink(Protocol):
    """Where a source delivers (the Router)."""

    async def event(self, event: Event) -> None: ...

    async def reject(self, rejected: RejectedEvent, raw: bytes, cursor: int | None,
                     event: Event | None = None) -> None: ...

    def yielded(self) -> None:
        """The source just passed a schedule point (the other runnable tasks got a turn): the
        sink need not yield for the events delivered so far."""


class Source(Protocol):
    """A stream of events with a resumable position.

    Attributes:
        name: the cursor key in ingest_cursors (e.g. "jetstream", "firehose:host:port").
        label: the metrics label (a small fixed set: jetstream, firehose, replay).
    """

    name: str
    label: str

    async def run(self, start: int | None, sink: Sink) -> None:
        """Deliver events after `start` (None: the source's default start) until the input ends.

        Live sources never return; they end by cancellation.
        """
