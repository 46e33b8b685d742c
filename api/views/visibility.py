"""Who may see what: the visibility rules every read shares, as SQL fragments.

  * A hidden account (`identities.active = false`: takendown, suspended, deactivated…) shows
    nothing: its posts, comments, communities and profile disappear from every read;
    `active = true` brings them back. In comment threads its comments become placeholders, as
    deleted ones do, so other people's replies keep their place.
  * A community exists for readers while its profile is live, its hostedBy passed the did:web
    check (`host_ok`, set by the identity host verifier) or SKIP_DID_WEB_VERIFICATION is on, and
    its account is not hidden.
  * `visibility` (the community profile's field):
      - public: everywhere;
      - unlisted: reachable directly (community.get, its feed, its posts and threads, authors'
        pages) and in subscribers' timelines, but absent from discovery (community.list and
        .search unless the viewer subscribes; feed.getDiscover, feed.getAll, post.search);
      - private: readable only by its subscribers (a live subscription record), everywhere
        including direct reads; to everyone else it does not exist (404 / notFound).
      Any other value is treated as unlisted.
  * The viewer's blocked communities (`community_blocks`) are left out of aggregated feeds
    (timeline, discover, all, post.search, authors' pages), community.list and .search; a
    direct read still answers, with `viewer.blocked` (post.get answers a blockedPost entry).
  * Deleted posts are left out of feeds and lists; post.get answers a tombstone view. Deleted
    comments stay in threads as placeholders.

Fragments are code constants: `c`/`p` name the row aliases; `:viewer` (text, NULL when
anonymous) and `:skip_host_check` (boolean) are bound parameters.
"""

from __future__ import annotations

__all__ = ["account_visible", "community_exists", "community_listed", "community_public",
           "community_readable", "not_blocked", "post_live", "subscribed"]


def account_visible(did: str) -> str:
    """The account `did` (an SQL expression) is not hidden."""
    return (f"NOT EXISTS (SELECT 1 FROM identities AS hidden "
            f"WHERE hidden.did = {did} AND NOT hidden.active)")


def subscribed(c: str = "c") -> str:
    """The viewer holds a live subscription to community `c`."""
    return (f"EXISTS (SELECT 1 FROM subscriptions AS mine WHERE mine.did = :viewer::text "
            f"AND mine.subject = {c}.did AND mine.deleted_at IS NULL)")


def not_blocked(c: str = "c") -> str:
    """The viewer has not blocked community `c`."""
    return (f"NOT EXISTS (SELECT 1 FROM community_blocks AS blocking WHERE blocking.did = "
            f":viewer::text AND blocking.subject = {c}.did AND blocking.deleted_at IS NULL)")


def community_exists(c: str = "c") -> str:
    """Community `c` is live, host-verified (or the check is skipped) and not hidden."""
    return (f"{c}.deleted_at IS NULL AND ({c}.host_ok OR :skip_host_check::boolean) "
            f"AND {account_visible(c + '.did')}")


def community_readable(c: str = "c") -> str:
    """Direct reads: public and unlisted communities; private ones for subscribers."""
    return f"{community_exists(c)} AND ({c}.visibility IS DISTINCT FROM 'private' OR {subscribed(c)})"


def community_listed(c: str = "c") -> str:
    """community.list/.search: public communities, plus any the viewer subscribes to."""
    return f"{community_exists(c)} AND ({c}.visibility = 'public' OR {subscribed(c)})"


def community_public(c: str = "c") -> str:
    """Discovery feeds (discover, all, post.search): public communities only."""
    return f"{community_exists(c)} AND {c}.visibility = 'public'"


def post_live(p: str = "p") -> str:
    """Post `p` is not deleted and its author is not hidden."""
    return f"{p}.deleted_at IS NULL AND {account_visible(p + '.author_did')}"
