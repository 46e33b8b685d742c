"""Checks for the Lexicon's leaf types: string, integer, boolean, bytes, cid-link, blob, unknown.

`engine.lexicon` compiles each schema node once into one of these closures; a closure raises
`LexiconViolation` with an empty path, and the containers above it prefix the field names.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import Any, Final

import regex

from engine.syntax import is_at_uri, is_cid, is_datetime, is_did, is_handle, is_nsid, is_rkey, is_tid

__all__ = ["Check", "LexiconViolation", "LEAF_CHECKS", "string_check"]

Check = Callable[[object], None]
"""A compiled schema node: returns None for a valid value, raises LexiconViolation otherwise."""

Node = dict[str, Any]

# Lexicon spec, "uri" format: any scheme per RFC 3986, "Maximum length in URIs is 8 KBytes".
MAX_URI_BYTES: Final = 8192
_URI_RE: Final = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:\S+$")
# BCP-47, loosely: a primary subtag of letters ("en", "i" for the grandfathered i-… tags), then
# alphanumeric subtags. The spec asks for BCP-47 syntax, not a registry lookup.
_LANGUAGE_RE: Final = re.compile(r"^[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*$")
# One extended grapheme cluster (UAX #29), which is what maxGraphemes counts.
_GRAPHEME_RE: Final = regex.compile(r"\X")
# UTF-8 spends at most 4 bytes on a code point (a lone surrogate, passed through, takes 3).
MAX_UTF8_BYTES_PER_CHAR: Final = 4


class LexiconViolation(ValueError):
    """A value breaks its lexicon. `path` locates it (`embed.images[2].alt`), `rule` says how."""

    def __init__(self, path: str, rule: str) -> None:
        super().__init__(path, rule)
        self.path = path
        self.rule = rule

    def under(self, segment: str) -> LexiconViolation:
        """Prefix the path with the field name or `[index]` that contains the bad value."""
        if not self.path:
            self.path = segment
        elif self.path.startswith("["):
            self.path = segment + self.path
        else:
            self.path = f"{segment}.{self.path}"
        return self

    def __str__(self) -> str:
        return f"{self.path}: {self.rule}" if self.path else self.rule


def _is_uri(value: str) -> bool:
    return _utf8_len(value) <= MAX_URI_BYTES and _URI_RE.match(value) is not None


def _is_language(value: str) -> bool:
    return len(value) <= 128 and _LANGUAGE_RE.match(value) is not None


def _is_at_identifier(value: str) -> bool:
    return is_did(value) or is_handle(value)


FORMATS: Final[dict[str, tuple[Callable[[str], bool], str]]] = {
    "at-identifier": (_is_at_identifier, "must be a did or handle"),
    "at-uri": (is_at_uri, "must be an at-uri"),
    "cid": (is_cid, "must be a cid"),
    "datetime": (is_datetime, "must be a datetime"),
    "did": (is_did, "must be a did"),
    "handle": (is_handle, "must be a handle"),
    "language": (_is_language, "must be a language tag"),
    "nsid": (is_nsid, "must be an nsid"),
    "record-key": (is_rkey, "must be a record key"),
    "tid": (is_tid, "must be a tid"),
    "uri": (_is_uri, "must be a uri"),
}


def _no_format(value: str) -> bool:
    return True


def _utf8_len(value: str) -> int:
    return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))


def _grapheme_count(value: str) -> int:
    # In ASCII only CR LF joins two code points into one cluster, so the regex is rarely needed.
    if value.isascii() and "\r\n" not in value:
        return len(value)
    return len(_GRAPHEME_RE.findall(value))


StringRule = Callable[[str], "str | None"]


def _max_bytes(limit: int) -> StringRule:
    def rule(value: str) -> str | None:
        chars = len(value)
        # Bytes lie between chars and 4 * chars: decide from the count alone when we can.
        if chars * MAX_UTF8_BYTES_PER_CHAR <= limit:
            return None
        if chars > limit or _utf8_len(value) > limit:
            return f"longer than {limit} bytes"
        return None
    return rule


def _min_bytes(limit: int) -> StringRule:
    def rule(value: str) -> str | None:
        chars = len(value)
        if chars >= limit:
            return None
        if chars * MAX_UTF8_BYTES_PER_CHAR < limit or _utf8_len(value) < limit:
            return f"shorter than {limit} bytes"
        return None
    return rule


def _max_graphemes(limit: int) -> StringRule:
    def rule(value: str) -> str | None:
        # A grapheme holds at least one code point: short strings pass without counting.
        if len(value) <= limit or _grapheme_count(value) <= limit:
            return None
        return f"longer than {limit} graphemes"
    return rule


def _min_graphemes(limit: int) -> StringRule:
    def rule(value: str) -> str | None:
        if len(value) < limit or _grapheme_count(value) < limit:
            return f"shorter than {limit} graphemes"
        return None
    return rule


def _string_rules(node: Node) -> list[StringRule]:
    rules: list[StringRule] = []
    if "const" in node:
        const = node["const"]
        rules.append(lambda value: None if value == const else f"must be {const!r}")
    if "enum" in node:
        allowed = frozenset(node["enum"])
        text = "must be one of " + ", ".join(node["enum"])
        rules.append(lambda value: None if value in allowed else text)
    # knownValues is deliberately not checked: it suggests values, it does not close the set.
    for key, make in (("maxLength", _max_bytes), ("minLength", _min_bytes),
                      ("maxGraphemes", _max_graphemes), ("minGraphemes", _min_graphemes)):
        if key in node:
            rules.append(make(node[key]))
    return rules


def string_check(node: Node) -> Check:
    """Compile a `string` node (also used for refs to a `token`, whose values are strings)."""
    rules = tuple(_string_rules(node))
    # The format is checked outside the rule loop: it is the one rule most strings have.
    predicate: Callable[[str], bool] = _no_format
    text = ""
    if "format" in node:
        try:
            predicate, text = FORMATS[node["format"]]
        except KeyError:
            raise ValueError(f"unknown string format {node['format']!r}") from None

    def check(value: object) -> None:
        if not isinstance(value, str):
            raise LexiconViolation("", "must be a string")
        if not predicate(value):
            raise LexiconViolation("", text)
        for rule in rules:
            problem = rule(value)
            if problem is not None:
                raise LexiconViolation("", problem)
    return check


def integer_check(node: Node) -> Check:
    minimum, maximum = node.get("minimum"), node.get("maximum")
    allowed = frozenset(node["enum"]) if "enum" in node else None
    has_const, const = "const" in node, node.get("const")

    def check(value: object) -> None:
        # `type(...) is int` rather than isinstance: True and False are ints to Python, not to JSON.
        if type(value) is not int:
            raise LexiconViolation("", "must be an integer")
        if minimum is not None and value < minimum:
            raise LexiconViolation("", f"below minimum {minimum}")
        if maximum is not None and value > maximum:
            raise LexiconViolation("", f"above maximum {maximum}")
        if allowed is not None and value not in allowed:
            raise LexiconViolation("", "must be one of " + ", ".join(map(str, sorted(allowed))))
        if has_const and value != const:
            raise LexiconViolation("", f"must be {const}")
    return check


def boolean_check(node: Node) -> Check:
    has_const, const = "const" in node, node.get("const")

    def check(value: object) -> None:
        if type(value) is not bool:
            raise LexiconViolation("", "must be a boolean")
        if has_const and value is not const:
            raise LexiconViolation("", f"must be {str(const).lower()}")
    return check


def bytes_check(node: Node) -> Check:
    """Bytes travel in JSON as `{"$bytes": <base64, unpadded>}`; the limits count decoded bytes."""
    min_len, max_len = node.get("minLength"), node.get("maxLength")

    def check(value: object) -> None:
        encoded = value.get("$bytes") if type(value) is dict and len(value) == 1 else None
        if not isinstance(encoded, str):
            raise LexiconViolation("", "must be {$bytes: base64}")
        try:
            size = len(base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True))
        except (binascii.Error, ValueError):
            raise LexiconViolation("", "must be {$bytes: base64}") from None
        if max_len is not None and size > max_len:
            raise LexiconViolation("", f"longer than {max_len} bytes")
        if min_len is not None and size < min_len:
            raise LexiconViolation("", f"shorter than {min_len} bytes")
    return check


def cid_link_check(node: Node) -> Check:
    def check(value: object) -> None:
        if not (type(value) is dict and len(value) == 1 and is_cid(value.get("$link"))):
            raise LexiconViolation("", "must be {$link: cid}")
    return check


def _mime_matcher(accept: list[str]) -> Callable[[str], bool]:
    exact = frozenset(a for a in accept if not a.endswith("/*"))
    prefixes = tuple(a[:-1] for a in accept if a.endswith("/*"))  # "image/*" -> "image/"
    if "*/*" in accept:
        return lambda mime: True
    return lambda mime: mime in exact or mime.startswith(prefixes)


def blob_check(node: Node) -> Check:
    """Accept `{"$type": "blob", "ref": {"$link": cid}, "mimeType", "size"}`, or the legacy
    `{"cid", "mimeType"}` form older records still carry (it has no size to check)."""
    accepts = _mime_matcher(node["accept"]) if "accept" in node else None
    max_size = node.get("maxSize")

    def check(value: object) -> None:
        if type(value) is not dict:
            raise LexiconViolation("", "must be a blob")
        mime, size = value.get("mimeType"), value.get("size")
        if value.get("$type") == "blob":
            ref = value.get("ref")
            well_formed = (type(ref) is dict and is_cid(ref.get("$link"))
                           and type(size) is int and size >= 0)
        else:
            well_formed, size = is_cid(value.get("cid")), None
        if not (well_formed and isinstance(mime, str)):
            raise LexiconViolation("", "must be a blob")
        if accepts is not None and not accepts(mime):
            raise LexiconViolation("", f"mimeType {mime} not accepted")
        if max_size is not None and size is not None and size > max_size:
            raise LexiconViolation("", f"size {size} above maxSize {max_size}")
    return check


def unknown_check(node: Node) -> Check:
    def check(value: object) -> None:
        if type(value) is not dict:
            raise LexiconViolation("", "must be an object")
    return check


LEAF_CHECKS: Final[dict[str, Callable[[Node], Check]]] = {
    "blob": blob_check,
    "boolean": boolean_check,
    "bytes": bytes_check,
    "cid-link": cid_link_check,
    "integer": integer_check,
    "string": string_check,
    "token": string_check,  # a ref to a token stands for the token's name, a string
    "unknown": unknown_check,
}
