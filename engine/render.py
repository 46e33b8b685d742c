"""Event → Jetstream v1 JSON: the `raw` of events that did not arrive as Jetstream JSON.

Raw firehose frames and repo exports are CBOR holding many events; a handler reject must keep
just its own event, in a form `coves redrive` can read again (it decodes Jetstream v1 JSON).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from .events import ACCOUNT, COMMIT, DELETE, IDENTITY, Event

__all__ = ["jetstream_json", "time_text"]


def time_text(time_us: int) -> str:
    """RFC 3339 time with milliseconds, as the firehose and Jetstream write it."""
    moment = datetime.fromtimestamp(time_us / 1_000_000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def jetstream_json(event: Event) -> bytes:
    """The event as one Jetstream v1 JSON object (other kinds keep Jetstream's layout)."""
    out: dict[str, Any] = {"did": event.did, "time_us": event.time_us, "kind": event.kind}
    if event.kind == COMMIT:
        commit: dict[str, Any] = {"rev": event.rev, "operation": event.operation,
                                  "collection": event.collection, "rkey": event.rkey}
        if event.operation != DELETE:
            commit["record"] = event.record
            commit["cid"] = event.cid
        out["commit"] = commit
        return orjson.dumps(out)
    body: dict[str, Any] = {"did": event.did, "seq": event.seq, "time": time_text(event.time_us)}
    if event.kind == IDENTITY and event.handle is not None:
        body["handle"] = event.handle
    elif event.kind == ACCOUNT:
        body["active"] = event.active
        if event.status is not None:
            body["status"] = event.status
    elif event.rev:
        body["rev"] = event.rev
    out[event.kind] = body
    return orjson.dumps(out)
