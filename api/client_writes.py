"""Writes the AppView does not forward: the caller writes these records to their own PDS.

Votes, comments, subscriptions and blocks live in the user's own repository. Coves clients
write them there (`com.atproto.repo.createRecord` / `deleteRecord` with `repo` = their DID);
the indexer picks them up from the firehose. These procedures exist so that a client calling
them learns that at once: 400 WriteToYourPDS, naming the collection and the record to write.
"""

from __future__ import annotations

from typing import Final

from .errors import InvalidRequest
from .xrpc import Body, Call, Queries

__all__ = ["CLIENT_WRITES", "procedures"]

procedures = Queries()
_STRONG_REF: Final = "{uri, cid}"
# nsid → (collection, what to do)
CLIENT_WRITES: Final = {
    "social.coves.community.subscribe": (
        "social.coves.community.subscription",
        "create a record {subject: <community DID>, createdAt}"),
    "social.coves.community.unsubscribe": (
        "social.coves.community.subscription",
        "delete your record whose subject is the community (deleteRecord with its rkey)"),
    "social.coves.community.blockCommunity": (
        "social.coves.community.block",
        "create a record {subject: <community DID>, createdAt}"),
    "social.coves.community.unblockCommunity": (
        "social.coves.community.block",
        "delete your record whose subject is the community (deleteRecord with its rkey)"),
    "social.coves.feed.vote.create": (
        "social.coves.feed.vote",
        f"create a record {{subject: {_STRONG_REF} of the post or comment, direction: "
        "\"up\" | \"down\", createdAt}"),
    "social.coves.feed.vote.delete": (
        "social.coves.feed.vote",
        "delete your vote record on the subject (deleteRecord with its rkey)"),
    "social.coves.community.comment.create": (
        "social.coves.community.comment",
        f"create a record {{reply: {{root: {_STRONG_REF} of the post, parent: {_STRONG_REF} of "
        "the post or comment}, content, createdAt, embed?, facets?, labels?, langs?}"),
    "social.coves.community.comment.update": (
        "social.coves.community.comment",
        "put the changed record at its rkey (putRecord; reply refs cannot change)"),
    "social.coves.community.comment.delete": (
        "social.coves.community.comment",
        "delete the record (deleteRecord with its rkey)"),
}


async def _write_to_your_pds(call: Call) -> Body:
    collection, shape = CLIENT_WRITES[call.nsid]
    raise InvalidRequest(
        f"{call.nsid} is not served by this AppView: write to your own PDS — in collection "
        f"{collection}, {shape} — with com.atproto.repo.createRecord/putRecord/deleteRecord and "
        f"repo = your DID. The AppView indexes it from the firehose.", error="WriteToYourPDS")


for _nsid in CLIENT_WRITES:
    procedures.procedure(_nsid, auth="none", input="none")(_write_to_your_pds)
