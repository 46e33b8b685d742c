"""Query parameters, parsed and checked from the method's own lexicon `params` def.

The rules are what real Coves clients need (../shared/facts.md):
  * unknown parameters are ignored; an empty value counts as absent;
  * an integer above its maximum is clamped to it; one below its minimum, a negative or a
    non-number is refused (400);
  * `knownValues` of a query parameter are treated as the closed set we can act on;
  * arrays arrive as repeated keys (`uris=a&uris=b`); more items than `maxLength` is refused
    (silently dropping requested items would hide them from the caller);
  * string formats (did, handle, at-uri, …) are checked with the same rules as records.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Protocol

from engine.lexicon_primitives import FORMATS
from engine.syntax import is_did, is_handle

from .errors import InvalidRequest

__all__ = ["COMMUNITY_REF", "Format", "Param", "ParamSpec", "is_community_ref"]

_INTEGER: Final = re.compile(r"^[+-]?[0-9]+$")
_TRUE: Final = frozenset({"true", "1"})
_FALSE: Final = frozenset({"false", "0"})
# `!name@domain`, the way Coves writes a community's name at its instance.
_COMMUNITY_NAME: Final = re.compile(r"^!([a-zA-Z0-9][a-zA-Z0-9-]{0,62})@([a-zA-Z0-9.-]+\.[a-zA-Z0-9.-]+)$")
MAX_PARAM_BYTES: Final = 8192  # Lexicon: URIs are at most 8 KiB; no parameter needs more


class MultiValues(Protocol):
    """What parsing needs from a query string (werkzeug's MultiDict fits)."""

    def getlist(self, key: str) -> list[str]: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Format:
    """A string format: a predicate and the message when it fails."""

    name: str
    check: Callable[[str], bool]
    message: str


def is_community_ref(value: str) -> bool:
    """A community identifier: DID, handle, or `!name@domain`."""
    return is_did(value) or is_handle(value) or _COMMUNITY_NAME.match(value) is not None


def split_community_name(value: str) -> tuple[str, str] | None:
    """(name, domain) of `!name@domain`, lower-cased; None for other forms."""
    match = _COMMUNITY_NAME.match(value)
    return (match.group(1).lower(), match.group(2).lower()) if match else None


COMMUNITY_REF: Final = Format("community-ref", is_community_ref,
                              "must be a community DID, handle or !name@domain")
_FORMATS: Final = {name: Format(name, check, message) for name, (check, message) in FORMATS.items()}


@dataclasses.dataclass(frozen=True, slots=True)
class Param:
    """One query parameter as its lexicon declares it."""

    name: str
    type: str  # string | integer | boolean | array
    item_type: str | None = None  # for arrays
    required: bool = False
    default: Any = None
    minimum: int | None = None
    maximum: int | None = None
    min_length: int | None = None  # string bytes, or array items
    max_length: int | None = None
    choices: frozenset[str] | None = None  # enum / knownValues
    format: Format | None = None

    @classmethod
    def from_lexicon(cls, name: str, node: Mapping[str, Any], *, required: bool,
                     format_override: Format | None = None) -> Param:
        """Build from a `params` property; arrays take their item rules from `items`."""
        kind = node["type"]
        leaf = node["items"] if kind == "array" else node
        if kind not in ("string", "integer", "boolean", "array"):
            raise ValueError(f"parameter {name}: type {kind} cannot travel in a query string")
        values = leaf.get("enum", leaf.get("knownValues"))
        fmt = format_override or (_FORMATS[leaf["format"]] if "format" in leaf else None)
        return cls(
            name=name, type=kind, item_type=leaf["type"] if kind == "array" else None,
            required=required, default=node.get("default"),
            minimum=leaf.get("minimum"), maximum=leaf.get("maximum"),
            min_length=node.get("minLength"), max_length=node.get("maxLength"),
            choices=frozenset(values) if values else None, format=fmt)

    def parse(self, raw: list[str]) -> Any:
        """The value from the query string's values for this name (missing: default or None).

        Raises:
            InvalidRequest: naming the parameter and what is wrong with it.
        """
        present = [value for value in raw if value != ""]
        if not present:
            if self.required:
                raise InvalidRequest(f"Missing required parameter: {self.name}")
            return self.default
        if self.type != "array":
            return self._scalar(present[0], self.type)
        if self.max_length is not None and len(present) > self.max_length:
            raise InvalidRequest(f"{self.name}: at most {self.max_length} values are accepted")
        if self.min_length is not None and len(present) < self.min_length:
            raise InvalidRequest(f"{self.name}: at least {self.min_length} values are required")
        assert self.item_type is not None
        return [self._scalar(value, self.item_type) for value in present]

    def _scalar(self, value: str, kind: str) -> Any:
        if len(value.encode()) > MAX_PARAM_BYTES:
            raise InvalidRequest(f"{self.name}: longer than {MAX_PARAM_BYTES} bytes")
        if "\x00" in value:  # Postgres text cannot hold NUL; no parameter needs one
            raise InvalidRequest(f"{self.name}: must not contain NUL characters")
        if kind == "integer":
            return self._integer(value)
        if kind == "boolean":
            lowered = value.lower()
            if lowered in _TRUE or lowered in _FALSE:
                return lowered in _TRUE
            raise InvalidRequest(f"{self.name}: must be true or false")
        return self._string(value)

    def _integer(self, value: str) -> int:
        if not _INTEGER.match(value.strip()):
            raise InvalidRequest(f"{self.name}: must be an integer")
        number = int(value)
        if number < 0:
            raise InvalidRequest(f"{self.name}: must not be negative")
        if self.minimum is not None and number < self.minimum:
            raise InvalidRequest(f"{self.name}: must be at least {self.minimum}")
        if self.maximum is not None and number > self.maximum:
            return int(self.maximum)  # clamp: clients ask for more than a page holds
        return number

    def _string(self, value: str) -> str:
        size = len(value.encode())
        if self.max_length is not None and self.type == "string" and size > self.max_length:
            raise InvalidRequest(f"{self.name}: longer than {self.max_length} bytes")
        if self.min_length is not None and self.type == "string" and size < self.min_length:
            raise InvalidRequest(f"{self.name}: shorter than {self.min_length} bytes")
        if self.choices is not None and value not in self.choices:
            raise InvalidRequest(f"{self.name}: must be one of {', '.join(sorted(self.choices))}")
        if self.format is not None and not self.format.check(value):
            raise InvalidRequest(f"{self.name}: {self.format.message}")
        return value


@dataclasses.dataclass(frozen=True, slots=True)
class ParamSpec:
    """Every parameter of one method."""

    params: tuple[Param, ...]

    @classmethod
    def from_lexicon(cls, defn: Mapping[str, Any],
                     formats: Mapping[str, Format] | None = None) -> ParamSpec:
        """Build from a query def; `formats` replaces the format of named parameters."""
        node = defn.get("parameters") or {}
        required = set(node.get("required", ()))
        formats = formats or {}
        unknown = set(formats) - set(node.get("properties", {}))
        if unknown:
            raise ValueError(f"format overrides for undeclared parameters {sorted(unknown)}")
        return cls(tuple(
            Param.from_lexicon(name, prop, required=name in required,
                               format_override=formats.get(name))
            for name, prop in sorted(node.get("properties", {}).items())))

    def parse(self, query: MultiValues) -> dict[str, Any]:
        """Every declared parameter's value (default or None when absent); others ignored.

        Raises:
            InvalidRequest: the first parameter that is missing or malformed.
        """
        return {param.name: param.parse(query.getlist(param.name)) for param in self.params}

    def names(self) -> Iterable[str]:
        return (param.name for param in self.params)
