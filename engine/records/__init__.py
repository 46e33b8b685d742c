"""Record handlers: one module per lexicon collection, registered here by NSID.

A handler maps an Event to RowOps (rows for the writer) or raises RejectedEvent. It is pure: no
I/O, so it can be re-run on the same event (the writer does when it retries a refused batch in parts). Records
are checked against our lexicons (`lexicons/`) before the handler sees them, so handlers only
map fields.
Adding a collection = one module exposing COLLECTION, TABLES, RECOUNTS and `handle`, plus one
line in `_MODULES`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Final

from .. import syntax
from ..errors import RejectedEvent, RejectReason
from ..events import COMMIT, Event
from ..lexicon import Lexicons, load_default
from ..tables import Recount, RowOp, Table
from . import (
    account,
    actor_profile,
    aggregator_authorization,
    aggregator_service,
    community_block,
    community_comment,
    community_post,
    community_profile,
    community_subscription,
    feed_vote,
    identity,
    repo_state,
)

__all__ = ["DEFAULT_REGISTRY", "Handler", "Registry"]

Handler = Callable[[Event], list[RowOp]]

_MODULES: Final[tuple[ModuleType, ...]] = (
    community_profile, community_subscription, community_block, community_post, community_comment,
    feed_vote, actor_profile, aggregator_service, aggregator_authorization, identity, account,
    repo_state)


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
    def from_modules(cls, modules: Sequence[ModuleType], lexicons: Lexicons | None = None) -> Registry:
        """Collect the handlers of `modules`; commit handlers first validate the record."""
        lexicons = lexicons or load_default()
        commits: dict[str, Handler] = {}
        kinds: dict[str, Handler] = {}
        tables: list[Table] = []
        recounts: list[Recount] = []
        for module in modules:
            if hasattr(module, "COLLECTION"):
                commits[module.COLLECTION] = _validated(module.handle, module.COLLECTION, lexicons)
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


def _key_check(key: str) -> Callable[[str], bool]:
    """The record-key rule of a record lexicon ("tid", "nsid", "any" or "literal:<value>")."""
    if key.startswith("literal:"):
        literal = key.removeprefix("literal:")
        return lambda rkey: rkey == literal
    return {"tid": syntax.is_tid, "nsid": syntax.is_nsid}.get(key, syntax.is_rkey)


def _validated(handle: Handler, collection: str, lexicons: Lexicons) -> Handler:
    """`handle`, preceded by the lexicon's record-key rule (all operations) and record check."""
    if not lexicons.has_record(collection):
        raise ValueError(f"no record lexicon for {collection}")
    validate = lexicons.validate_record
    key = lexicons.def_for(collection).get("key", "any")
    key_ok = _key_check(key)

    def validated(event: Event) -> list[RowOp]:
        if not key_ok(event.rkey):
            raise RejectedEvent(RejectReason.INVALID_RKEY, f"rkey {event.rkey!r} breaks key rule {key!r}")
        if event.record is not None:
            validate(collection, event.record)
        return handle(event)

    validated.__doc__ = handle.__doc__
    return validated


DEFAULT_REGISTRY: Final = Registry.from_modules(_MODULES)
