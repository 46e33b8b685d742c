"""Record handlers: one module per lexicon collection, registered here by NSID.

A handler maps an Event to RowOps (rows for the writer) or raises RejectedEvent. It is pure: no
I/O, so it can be re-run on the same event (the writer does when it retries one by one).
Adding a collection = one module exposing COLLECTION, TABLES, RECOUNTS and `handle`, plus one
line in `_MODULES`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Final

from ..events import COMMIT, Event
from ..tables import Recount, RowOp, Table
from . import community_profile, community_subscription

__all__ = ["DEFAULT_REGISTRY", "Handler", "Registry"]

Handler = Callable[[Event], list[RowOp]]

_MODULES: Final[tuple[ModuleType, ...]] = (community_profile, community_subscription)


@dataclasses.dataclass(frozen=True)
class Registry:
    """Which handler takes which event, and every table and recount they write.

    Attributes:
        commits: collection NSID → handler for commit events.
        kinds: event kind ("identity", "account") → handler.
    """

    commits: Mapping[str, Handler]
    kinds: Mapping[str, Handler]
    tables: tuple[Table, ...]
    recounts: tuple[Recount, ...]

    @classmethod
    def from_modules(cls, modules: Sequence[ModuleType]) -> Registry:
        commits: dict[str, Handler] = {}
        kinds: dict[str, Handler] = {}
        tables: list[Table] = []
        recounts: list[Recount] = []
        for module in modules:
            if hasattr(module, "COLLECTION"):
                commits[module.COLLECTION] = module.handle
            for kind in getattr(module, "KINDS", ()):
                kinds[kind] = module.handle
            tables.extend(t for t in module.TABLES if t not in tables)
            recounts.extend(module.RECOUNTS)
        return cls(commits, kinds, tuple(tables), tuple(recounts))

    def handler_for(self, event: Event) -> Handler | None:
        if event.kind == COMMIT:
            return self.commits.get(event.collection)
        return self.kinds.get(event.kind)

    def handle(self, event: Event) -> list[RowOp]:
        """Run the event's handler (no handler: no rows)."""
        handler = self.handler_for(event)
        return handler(event) if handler is not None else []


DEFAULT_REGISTRY: Final = Registry.from_modules(_MODULES)
