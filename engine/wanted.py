"""Which collections we want, as Jetstream's wantedCollections patterns, matched locally.

Jetstream filters on the server; the raw firehose and repo exports carry every collection, so
the firehose source and backfill apply the same patterns (JETSTREAM_COLLECTIONS) themselves.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["WantedCollections"]


class WantedCollections:
    """Matches NSIDs against patterns: an exact NSID, or a prefix ending in `.*`.

    `social.coves.*` matches `social.coves.feed.vote` but not `social.coves` itself, as in
    Jetstream. No patterns at all means everything is wanted.
    """

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self.patterns = tuple(patterns)
        self._exact = frozenset(p for p in self.patterns if not p.endswith(".*"))
        self._prefixes = tuple(p[:-1] for p in self.patterns if p.endswith(".*"))
        self._everything = not self.patterns
        self._seen: dict[str, bool] = {}

    def __call__(self, collection: str) -> bool:
        # Memoised: the network has a few thousand collections, each seen again and again.
        known = self._seen.get(collection)
        if known is None:
            known = (self._everything or collection in self._exact
                     or collection.startswith(self._prefixes))
            if len(self._seen) < 100_000:
                self._seen[collection] = known
        return known

    def __repr__(self) -> str:
        return f"WantedCollections({list(self.patterns)!r})"
