"""Reading fields of records the lexicon validator already accepted, into column values.

Types and limits are the validator's job (engine/lexicon.py); these only convert (datetimes),
apply defaults, and stay safe if a handler is ever called on an unvalidated record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from typing import Final

from .. import syntax
from ..errors import RejectedEvent, RejectReason
from ..events import Event
from ..tables import Column, RowOp, Table

__all__ = ["IDENTIFIER", "REV", "blob_cid", "deleted", "integer", "invalid", "live", "record_table",
           "ref_uri", "self_labels", "stats_table", "strings", "text", "timestamp", "tombstone",
           "twin_row", "wrong_repo"]

REV: Final = 'text COLLATE "C"'  # TIDs compare byte-wise
# DIDs and AT-URIs: ASCII, compared only to find rows; byte-wise is their order and far cheaper
# than the database's default collation (sql/0012).
IDENTIFIER: Final = 'text COLLATE "C"'


def record_table(name: str, *columns: Column, key: str = "uri", repo: str = "did",
                 tracked: tuple[str, ...] = (), actors: tuple[str, ...] | None = None) -> Table:
    """A table of one record kind: `uri, <repo>, rkey, rev, cid`, then the record's columns.

    Args:
        key: "uri", or the repo column for one-per-repo records (rkey `self`).
        repo: the column holding the repo's DID (a post's is its community).
        actors: DIDs to register in `identities` (default: the repo).
    """
    head = (Column("uri", IDENTIFIER), Column(repo, IDENTIFIER), Column("rkey"), Column("rev", REV),
            Column("cid"))
    return Table(name=name, key=(key,), columns=head + columns, tracked=tracked,
                 actors=(repo,) if actors is None else actors, repo=repo)


def stats_table(name: str, *columns: Column, twin: Table, tracked: tuple[str, ...] = ()) -> Table:
    """The narrow twin of a record table holding its counters and sort keys (sql/0005):
    `uri, <repo>, rev`, then `columns`; merged with the same rev as its record. A new row's
    `first_seen_at` is now(): the hot key computed at its insert reads it (tables.merge_sql)."""
    assert twin.repo is not None
    head = (Column("uri", IDENTIFIER), Column(twin.repo, IDENTIFIER), Column("rev", REV))
    return Table(name=name, key=("uri",), columns=head + columns, tracked=tracked, repo=twin.repo,
                 twin_of=twin.name, defaults=(("first_seen_at", "now()"),))


def twin_row(table: Table, event: Event, *values: Any, deleted: bool = False) -> RowOp:
    """A stats twin's row: `uri, repo, rev`, then `values` (None for a delete)."""
    if deleted:
        values = (None,) * (len(table.columns) - 3)
    return RowOp(table, (event.uri, event.did, event.rev, *values, deleted))


def live(table: Table, event: Event, *values: Any) -> RowOp:
    """The row of a create or update: the record table's head from the event, then `values`."""
    return RowOp(table, (event.uri, event.did, event.rkey, event.rev, event.cid, *values, False))


def deleted(table: Table, event: Event, **known: Any) -> RowOp:
    """The tombstone row of a delete (only the head, and any `known` columns, are set)."""
    return RowOp(table, tombstone(table, uri=event.uri, rkey=event.rkey, rev=event.rev,
                                  **{table.repo or "did": event.did}, **known))


def invalid(field: str, rule: str) -> RejectedEvent:
    return RejectedEvent(RejectReason.INVALID_RECORD, f"{field}: {rule}")


def text(record: dict[str, Any], name: str) -> str | None:
    value = record.get(name)
    return value if type(value) is str else None


def timestamp(record: dict[str, Any], name: str) -> datetime | None:
    return syntax.parse_datetime(record.get(name))


def integer(record: dict[str, Any], name: str, default: int | None = None) -> int | None:
    value = record.get(name)
    return value if type(value) is int else default


def tombstone(table: Table, **values: Any) -> tuple[Any, ...]:
    """A delete row for `table`: the given columns set, every other column NULL, deleted = true."""
    row = tuple(values.get(c.name) for c in table.columns)
    return row + (True,)


def blob_cid(record: dict[str, Any], name: str) -> str | None:
    """The CID of a blob field (`{"ref": {"$link": cid}}`, or the legacy `{"cid": cid}`)."""
    blob = record.get(name)
    if type(blob) is not dict:
        return None
    ref = blob.get("ref")
    link = ref.get("$link") if type(ref) is dict else blob.get("cid")
    return link if type(link) is str else None


def strings(record: dict[str, Any], name: str) -> list[str] | None:
    value = record.get(name)
    if type(value) is not list:
        return None
    return [item for item in value if type(item) is str]


def self_labels(record: dict[str, Any]) -> list[str] | None:
    """The values of `labels: {values: [{val}]}` (com.atproto.label.defs#selfLabels)."""
    labels = record.get("labels")
    values = labels.get("values") if type(labels) is dict else None
    if type(values) is not list:
        return None
    return [item["val"] for item in values if type(item) is dict and type(item.get("val")) is str]


def ref_uri(record: dict[str, Any], *path: str) -> tuple[str | None, str | None]:
    """(uri, cid) of the strongRef at `path` (e.g. "reply", "parent")."""
    node: Any = record
    for step in path:
        node = node.get(step) if type(node) is dict else None
    if type(node) is not dict:
        return None, None
    uri, cid = node.get("uri"), node.get("cid")
    return (uri if type(uri) is str else None), (cid if type(cid) is str else None)


def wrong_repo(field: str, value: object, repo: str) -> RejectedEvent:
    return RejectedEvent(RejectReason.WRONG_REPO,
                         f"{field} is {str(value)[:100]!r} but the record lives in {repo}")
