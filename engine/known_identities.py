"""The DIDs a writer has seen committed to `identities`, so that a batch registers only new ones.

Every record names DIDs (its repo, a post's author, a subscription's community), and each needs
a row in `identities`, where identity and account events for it are kept (records/account.py).
Registering a DID is an `INSERT … ON CONFLICT DO NOTHING`: an index probe per DID and batch,
1.7 µs each, 4-6 % of the writer's Postgres time on both benchmark mixes — almost always for a
DID registered long ago. The writer remembers what it registered and sends only the rest.

Sound because nothing deletes from `identities` (a deleted account keeps its row with status
`deleted`). The memory belongs to one Writer: a restart, or a restored database, starts empty.
Bounded: the DIDs mentioned least recently are forgotten first, and sent again when they come
back (harmless: the insert does nothing).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import cachetools

__all__ = ["DEFAULT_SIZE", "KnownIdentities"]

# ~100-200 bytes a DID in memory: at most ~20 MB. The Zipf-shaped activity of a forum keeps its
# busy DIDs in far fewer.
DEFAULT_SIZE: Final = 100_000


class KnownIdentities:
    """DIDs known to have a committed row in `identities` (least recently mentioned forgotten)."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._known: cachetools.LRUCache[str, bool] = cachetools.LRUCache(size)

    def unknown(self, dids: Iterable[str]) -> list[str]:
        """Of `dids`, those to register, sorted (the order of the index they go into)."""
        known = self._known
        new = []
        for did in dids:
            try:
                known[did]  # a lookup marks it recently used
            except KeyError:
                new.append(did)
        new.sort()
        return new

    def committed(self, dids: Iterable[str]) -> None:
        """`dids` were registered by a transaction that has committed."""
        for did in dids:
            self._known[did] = True

    def __len__(self) -> int:
        return len(self._known)
