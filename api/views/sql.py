"""SQL with named parameters (`:viewer`), compiled once to asyncpg's positional `$n`.

View fragments are composed into larger statements (a feed = selection + post hydration), so
positional numbers would collide; names do not. Values are always bound parameters; only code
constants (aliases, column names from fixed tables) are ever formatted into the text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["Query"]

# `:name` not preceded by ':' or a word character, so `x::text` and `HH24:MI` are left alone.
_PARAM: Final = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


class Query:
    """A statement compiled from `:name` placeholders.

    Attributes:
        text: the SQL with `$1…$n`.
        names: parameter names in position order.
    """

    def __init__(self, text: str) -> None:
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in names:
                names.append(name)
            return f"${names.index(name) + 1}"

        self.text = _PARAM.sub(number, text)
        self.names = tuple(names)

    def args(self, values: Mapping[str, Any]) -> list[Any]:
        """The positional arguments for `values`.

        Raises:
            KeyError: a parameter of the statement has no value (a programming error).
        """
        missing = [name for name in self.names if name not in values]
        if missing:
            raise KeyError(f"no value for SQL parameter(s) {', '.join(missing)}")
        return [values[name] for name in self.names]

    def __repr__(self) -> str:
        return f"Query({self.text[:60]!r}…, names={self.names})"
