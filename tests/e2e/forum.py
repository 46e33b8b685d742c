"""A Coves forum written to a real PDS, with the state an index of it must hold (a model).

`Forum` creates communities (profile and posts in the community's repo) and users
(subscriptions, comments, votes in their own repos) through the PDS's own XRPC API, and keeps
what was written: which records are live, and every counter they imply. `observed` reads the
same shape back from the database, limited to this forum's DIDs.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any, Final

import trio

from engine.db import Database
from tests.pds.harness import Account, PdsClient, unique_handle

PROFILE: Final = "social.coves.community.profile"
SUBSCRIPTION: Final = "social.coves.community.subscription"
POST: Final = "social.coves.community.post"
COMMENT: Final = "social.coves.community.comment"
VOTE: Final = "social.coves.feed.vote"
NOW: Final = "2026-11-26T08:00:00.000Z"
HOSTED_BY: Final = "did:web:localhost"


def rkey_of(uri: str) -> str:
    return uri.rsplit("/", 1)[1]


@dataclasses.dataclass
class Forum:
    """Writes through `pds`; `acked[uri]` is when the PDS acknowledged each create (trio clock)."""

    pds: PdsClient
    communities: dict[str, Account] = dataclasses.field(default_factory=dict)
    users: list[Account] = dataclasses.field(default_factory=list)
    names: dict[str, str] = dataclasses.field(default_factory=dict)  # community DID → name
    posts: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)  # uri → cid, community
    comments: dict[str, tuple[str, str, str]] = dataclasses.field(default_factory=dict)  # uri → cid, parent, author
    votes: dict[str, tuple[str, str, str]] = dataclasses.field(default_factory=dict)  # uri → voter, subject, dir
    subscriptions: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)  # uri → user, community
    cids: dict[str, str] = dataclasses.field(default_factory=dict)  # every post/comment ever made → cid
    acked: dict[str, float] = dataclasses.field(default_factory=dict)
    writes: int = 0

    @property
    def dids(self) -> list[str]:
        return [*self.communities, *(u.did for u in self.users)]

    async def _create(self, account: Account, collection: str, record: dict[str, Any],
                      rkey: str | None = None) -> tuple[str, str]:
        uri, cid = await self.pds.create_record(account, collection, record, rkey=rkey)
        self.acked[uri] = trio.current_time()
        self.writes += 1
        return uri, cid

    # ---- accounts ----

    async def add_community(self, name: str) -> Account:
        account = await self.pds.create_account(unique_handle("c-" + name))
        self.communities[account.did] = account
        await self.set_profile(account.did, name)
        return account

    async def set_profile(self, community: str, name: str) -> None:
        account = self.communities[community]
        record = {"name": name, "createdBy": account.did, "hostedBy": HOSTED_BY, "createdAt": NOW}
        if community in self.names:
            await self.pds.put_record(account, PROFILE, "self", record)
            self.writes += 1
        else:
            await self._create(account, PROFILE, record, rkey="self")
        self.names[community] = name

    async def add_users(self, count: int) -> None:
        async def one() -> None:
            self.users.append(await self.pds.create_account(unique_handle("user")))

        async with trio.open_nursery() as nursery:
            for _ in range(count):
                nursery.start_soon(one)

    # ---- records ----

    async def subscribe(self, user: Account, community: str) -> str:
        uri, _ = await self._create(user, SUBSCRIPTION, {"subject": community, "createdAt": NOW})
        self.subscriptions[uri] = (user.did, community)
        return uri

    async def post(self, community: str, author: Account, title: str) -> str:
        record = {"community": community, "author": author.did, "title": title, "createdAt": NOW}
        uri, cid = await self._create(self.communities[community], POST, record)
        self.posts[uri] = (cid, community)
        self.cids[uri] = cid
        return uri

    def _ref(self, uri: str) -> dict[str, str]:
        # From every record ever written: a vote may still point at a since-deleted comment.
        return {"uri": uri, "cid": self.cids[uri]}

    def _root(self, uri: str) -> str:
        while uri in self.comments:
            uri = self.comments[uri][1]
        return uri

    async def comment(self, author: Account, parent: str, content: str) -> str:
        record = {"reply": {"root": self._ref(self._root(parent)), "parent": self._ref(parent)},
                  "content": content, "createdAt": NOW}
        uri, cid = await self._create(author, COMMENT, record)
        self.comments[uri] = (cid, parent, author.did)
        self.cids[uri] = cid
        return uri

    async def vote(self, voter: Account, subject: str, direction: str) -> str:
        record = {"subject": self._ref(subject), "direction": direction, "createdAt": NOW}
        uri, _ = await self._create(voter, VOTE, record)
        self.votes[uri] = (voter.did, subject, direction)
        return uri

    def _account(self, did: str) -> Account:
        return next(u for u in self.users if u.did == did)

    async def flip_vote(self, uri: str) -> None:
        voter, subject, direction = self.votes[uri]
        flipped = "down" if direction == "up" else "up"
        record = {"subject": self._ref(subject), "direction": flipped, "createdAt": NOW}
        await self.pds.put_record(self._account(voter), VOTE, rkey_of(uri), record)
        self.writes += 1
        self.votes[uri] = (voter, subject, flipped)

    async def delete(self, uri: str) -> None:
        repo, collection = uri.split("/")[2:4]
        account = self.communities.get(repo) or self._account(repo)
        await self.pds.delete_record(account, collection, rkey_of(uri))
        self.writes += 1
        for table in (self.votes, self.comments, self.subscriptions, self.posts):
            table.pop(uri, None)  # type: ignore[attr-defined]

    # ---- what the index must hold ----

    def expected(self) -> dict[str, Any]:
        subscribers = {c: {u for u, s in self.subscriptions.values() if s == c} for c in self.communities}
        children: dict[str, int] = {}
        for _, parent, _ in self.comments.values():
            children[parent] = children.get(parent, 0) + 1
        ups: dict[str, int] = {}
        downs: dict[str, int] = {}
        for _, subject, direction in self.votes.values():
            tally = ups if direction == "up" else downs
            tally[subject] = tally.get(subject, 0) + 1

        def counts(uri: str) -> tuple[int, int, int]:
            return children.get(uri, 0), ups.get(uri, 0), downs.get(uri, 0)

        return {
            "communities": {c: (self.names[c], len(subscribers[c]),
                                sum(1 for _, pc in self.posts.values() if pc == c))
                            for c in self.communities},
            "posts": {uri: counts(uri) for uri in self.posts},
            "comments": {uri: counts(uri) for uri in self.comments},
            "votes": set(self.votes),
            "subscriptions": set(self.subscriptions),
        }


async def observed(db: Database, forum: Forum) -> dict[str, Any]:
    """The same shape as `Forum.expected`, read from the index (live rows of this forum only)."""
    dids = forum.dids
    communities = await db.fetch(
        "SELECT did, name, subscriber_count, post_count FROM communities "
        "WHERE did = ANY($1) AND deleted_at IS NULL", dids)
    posts = await db.fetch(
        "SELECT uri, comment_count, upvote_count, downvote_count FROM posts "
        "WHERE community_did = ANY($1) AND deleted_at IS NULL", dids)
    comments = await db.fetch(
        "SELECT uri, reply_count, upvote_count, downvote_count FROM comments "
        "WHERE did = ANY($1) AND deleted_at IS NULL", dids)
    votes = await db.fetch("SELECT uri FROM votes WHERE did = ANY($1) AND deleted_at IS NULL", dids)
    subs = await db.fetch("SELECT uri FROM subscriptions WHERE did = ANY($1) AND deleted_at IS NULL", dids)
    return {
        "communities": {r["did"]: (r["name"], r["subscriber_count"], r["post_count"]) for r in communities},
        "posts": {r["uri"]: (r["comment_count"], r["upvote_count"], r["downvote_count"]) for r in posts},
        "comments": {r["uri"]: (r["reply_count"], r["upvote_count"], r["downvote_count"]) for r in comments},
        "votes": {r["uri"] for r in votes},
        "subscriptions": {r["uri"] for r in subs},
    }


async def write_activity(forum: Forum, rng: random.Random, *, posts: int, comments: int,
                         votes: int, churn: int = 0) -> None:
    """Posts in every community, then comments and votes by every user (users write at once,
    each in order); then `churn` changes: flipped votes, deleted votes and comments, and one
    unsubscribe."""
    communities = list(forum.communities)
    for i in range(posts):
        await forum.post(communities[i % len(communities)], rng.choice(forum.users), f"post {i}")

    async def user_activity(user: Account, quota_comments: int, quota_votes: int) -> None:
        for i in range(quota_comments):
            targets = list(forum.posts) + list(forum.comments)
            await forum.comment(user, rng.choice(targets), f"comment {i}")
        voted = {subject for voter, subject, _ in forum.votes.values() if voter == user.did}
        subjects = [s for s in [*forum.posts, *forum.comments] if s not in voted]
        for subject in rng.sample(subjects, min(quota_votes, len(subjects))):
            await forum.vote(user, subject, rng.choice(("up", "up", "down")))

    per_user = len(forum.users)
    async with trio.open_nursery() as nursery:
        for n, user in enumerate(forum.users):
            nursery.start_soon(user_activity, user, comments // per_user + (n < comments % per_user),
                               votes // per_user + (n < votes % per_user))
    for i in range(churn):
        choice = i % 3
        if choice == 0 and forum.votes:
            await forum.flip_vote(rng.choice(sorted(forum.votes)))
        elif choice == 1 and forum.votes:
            await forum.delete(rng.choice(sorted(forum.votes)))
        else:
            leaves = [c for c in forum.comments if not any(p == c for _, p, _ in forum.comments.values())]
            if leaves:
                await forum.delete(rng.choice(sorted(leaves)))
    if forum.subscriptions:
        await forum.delete(sorted(forum.subscriptions)[0])
