"""Lexicon validation of records and API values, compiled once per schema for the ingest hot path.

`Lexicons.load()` reads `lexicons/**.json` and compiles every value def into a tree of closures
(leaves in `engine.lexicon_primitives`); `validate_record` is then a dict lookup and a call. Record
handlers call it per event; failures become `RejectedEvent(INVALID_RECORD, "<path>: <rule>")`.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Final

from engine.errors import RejectedEvent, RejectReason
from engine.lexicon_primitives import LEAF_CHECKS, Check, LexiconViolation
from engine.syntax import is_nsid

__all__ = ["LEXICON_DIR", "LexiconViolation", "Lexicons", "load_default"]

LEXICON_DIR: Final = Path(__file__).resolve().parent.parent / "lexicons"
# Defs that describe endpoints or streams, not values: nothing validates against them directly.
_NON_VALUE_TYPES: Final = frozenset({"query", "procedure", "subscription"})

Node = dict[str, Any]


def _accept(value: object) -> None:
    """Stand-in for union members whose def is not published: an unknown $type is let through."""


def _full_ref(ref: str, doc_id: str = "") -> str:
    """Resolve `#name` against `doc_id`, and a bare NSID to its `main` def."""
    if ref.startswith("#"):
        return doc_id + ref
    return ref if "#" in ref else ref + "#main"


class Lexicons:
    """A loaded lexicon set with every value def compiled to a check."""

    def __init__(self, docs: list[Node]) -> None:
        self._defs: dict[str, Node] = {}
        self._records: dict[str, Check] = {}
        self._checks: dict[str, Check] = {}
        self._compiling: set[str] = set()
        for doc in docs:
            for name, defn in doc["defs"].items():
                self._defs[f"{doc['id']}#{name}"] = defn
        for ref, defn in self._defs.items():
            if defn["type"] not in _NON_VALUE_TYPES:
                self._check_for(ref)
            if defn["type"] == "record":
                self._records[ref.removesuffix("#main")] = self._record_check(ref)

    @classmethod
    def load(cls, root: Path = LEXICON_DIR) -> Lexicons:
        """Read and compile every `*.json` lexicon under `root`.

        Raises:
            ValueError: a file is not a Lexicon v1 document, an id repeats, or a def is malformed
                (unknown type or format, a plain ref to a def that does not exist).
        """
        docs: list[Node] = []
        seen: set[str] = set()
        for path in sorted(root.rglob("*.json")):
            doc = json.loads(path.read_text(encoding="utf-8"))
            if not (isinstance(doc, dict) and doc.get("lexicon") == 1 and is_nsid(doc.get("id"))
                    and isinstance(doc.get("defs"), dict) and doc["defs"]):
                raise ValueError(f"{path}: not a Lexicon v1 document")
            if doc["id"] in seen:
                raise ValueError(f"{path}: lexicon {doc['id']} defined twice")
            seen.add(doc["id"])
            docs.append(doc)
        return cls(docs)

    def has_record(self, nsid: str) -> bool:
        return nsid in self._records

    def validate_record(self, nsid: str, record: dict[str, Any]) -> None:
        """Check a record against its collection's lexicon.

        Raises:
            RejectedEvent: INVALID_RECORD, detail `"<path>: <rule>"`.
            KeyError: `nsid` is not a record lexicon we have (ask `has_record` first).
        """
        try:
            self._records[nsid](record)
        except LexiconViolation as exc:
            raise RejectedEvent(RejectReason.INVALID_RECORD, str(exc)) from exc

    def validate_value(self, ref: str, value: object, path: str = "") -> None:
        """Check `value` against any value def, e.g. `social.coves.feed.defs#feedViewPost`.

        Raises:
            LexiconViolation: with `path` prefixed to the location inside `value`.
            KeyError: no such def, or the def is an endpoint.
        """
        try:
            self._checks[_full_ref(ref)](value)
        except LexiconViolation as exc:
            raise exc.under(path) if path else exc

    def input_check(self, nsid: str) -> Check:
        """The check of a procedure's JSON `input` schema (compiled on first use).

        Raises:
            KeyError: no such def. ValueError: it is not a procedure with a JSON object input.
        """
        ref = _full_ref(nsid) + ":input"
        check = self._checks.get(ref)
        if check is None:
            defn = self.def_for(nsid)
            schema = defn.get("input", {}).get("schema") if defn["type"] == "procedure" else None
            if not isinstance(schema, dict) or schema.get("type") != "object":
                raise ValueError(f"{nsid} is not a procedure with a JSON object input")
            check = self._checks[ref] = self._compile(schema, nsid)
        return check

    def def_for(self, ref: str) -> Node:
        """The raw def behind `ref` (a bare NSID means its `main`). Raises KeyError if unknown."""
        return self._defs[_full_ref(ref)]

    def _check_for(self, ref: str) -> Check:
        check = self._checks.get(ref)
        if check is not None:
            return check
        if ref in self._compiling:
            # A def that contains itself (a comment thread): look the check up when it runs.
            return lambda value: self._checks[ref](value)
        defn = self._defs.get(ref)
        if defn is None:
            raise ValueError(f"ref to unknown def {ref}")
        self._compiling.add(ref)
        try:
            node = defn["record"] if defn["type"] == "record" else defn
            check = self._compile(node, ref.partition("#")[0])
        except ValueError as exc:
            raise ValueError(f"{ref}: {exc}") from None
        finally:
            self._compiling.discard(ref)
        self._checks[ref] = check
        return check

    def _record_check(self, ref: str) -> Check:
        nsid, body = ref.removesuffix("#main"), self._checks[ref]

        def check(value: object) -> None:
            if type(value) is dict and value.get("$type", nsid) != nsid:
                raise LexiconViolation("$type", f"must be {nsid}")
            body(value)
        return check

    def _compile(self, node: Node, doc_id: str) -> Check:
        kind = node.get("type")
        if kind in ("object", "params"):
            return self._object(node, doc_id)
        if kind == "array":
            return _array(self._compile(node["items"], doc_id), node)
        if kind == "ref":
            return self._check_for(_full_ref(node["ref"], doc_id))
        if kind == "union":
            return self._union(node, doc_id)
        if kind in LEAF_CHECKS:
            return LEAF_CHECKS[kind](node)
        raise ValueError(f"cannot validate values of type {kind!r}")

    def _object(self, node: Node, doc_id: str) -> Check:
        properties = {
            name: self._compile(sub, doc_id) for name, sub in node.get("properties", {}).items()}
        required = tuple(node.get("required", ()))
        nullable = frozenset(node.get("nullable", ()))
        # Not Lexicon v1, but Coves uses it for string-keyed maps (postStats.tagCounts).
        extra = None
        if "additionalProperties" in node:
            extra = self._compile(node["additionalProperties"], doc_id)

        def check(value: object) -> None:
            if type(value) is not dict:
                raise LexiconViolation("", "must be an object")
            for name in required:
                if name not in value:
                    raise LexiconViolation(name, "required")
            # Walk the value, not the schema: records carry few of their optional fields.
            for name, item in value.items():
                sub = properties.get(name, extra)
                if sub is None:
                    continue  # unknown fields are allowed: lexicons evolve by adding fields
                if item is None:
                    if name in nullable:
                        continue
                    raise LexiconViolation(name, "must not be null")
                try:
                    sub(item)
                except LexiconViolation as exc:
                    raise exc.under(name)
        return check

    def _union(self, node: Node, doc_id: str) -> Check:
        members: dict[str, Check] = {}
        for ref in (_full_ref(r, doc_id) for r in node.get("refs", ())):
            member = self._check_for(ref) if ref in self._defs else _accept
            members[ref] = member
            if ref.endswith("#main"):
                members[ref.removesuffix("#main")] = member  # `$type` names a main def bare
        closed = bool(node.get("closed", False))

        def check(value: object) -> None:
            kind = value.get("$type") if type(value) is dict else None
            if not isinstance(kind, str):
                raise LexiconViolation("", "must be an object with $type")
            member = members.get(kind)
            if member is not None:
                member(value)
            elif closed:
                raise LexiconViolation("", f"$type {kind} is not allowed in this closed union")
        return check


def _array(items: Check, node: Node) -> Check:
    min_len, max_len = node.get("minLength"), node.get("maxLength")

    def check(value: object) -> None:
        if type(value) is not list:
            raise LexiconViolation("", "must be an array")
        if max_len is not None and len(value) > max_len:
            raise LexiconViolation("", f"more than {max_len} items")
        if min_len is not None and len(value) < min_len:
            raise LexiconViolation("", f"fewer than {min_len} items")
        for index, item in enumerate(value):
            try:
                items(item)
            except LexiconViolation as exc:
                raise exc.under(f"[{index}]")
    return check


@functools.cache
def load_default() -> Lexicons:
    """The project's lexicons (`LEXICON_DIR`), loaded and compiled once per process."""
    return Lexicons.load()
