"""Reading fields of records the lexicon validator already accepted, into column values.

Types and limits are the validator's job (engine/lexicon.py); these only convert (datetimes),
apply defaults, and stay safe if a handler is ever called on an unvalidated record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .. import syntax
from ..errors import RejectedEvent, RejectReason
from ..tables import Table

__all__ = ["blob_cid", "integer", "invalid", "ref_uri", "self_labels", "strings", "text", "timestamp",
           "tombstone", "wrong_repo"]


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
