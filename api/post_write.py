"""social.coves.community.post.create / update / delete: posts written into the community's
repository with its credentials, the caller recorded as `author`.

create: the community must be hosted here; the post must pass its lexicon and the community's
content rules (api/content_rules.py); an aggregator (a DID with an aggregator service record)
needs an enabled authorization from the community and, unless listed in TRUSTED_AGGREGATORS,
may post AGGREGATOR_POSTS_PER_HOUR per community and hour. The record is created on the PDS
and indexed at once through the writer path (api/optimistic.py).
update / delete: the author only — checked against the record as the PDS holds it (not our
index) — and written with `swapRecord` = the CID we checked, so a concurrent edit fails with
409 InvalidSwap instead of being overwritten.
A PDS that is down or failing answers 503 PdsUnavailable / 502 UpstreamFailure and nothing is
written.
"""

from __future__ import annotations

from typing import Any, Final

from .content_rules import check_post
from .credentials import Community
from .errors import Conflict, Forbidden, InvalidRequest, NotFound, RateLimitExceeded
from .optimistic import apply_commit
from .pds_client import PdsError, PdsRefused
from .writes import Writes, now_iso, pds_error, validate_record, writes_of
from .xrpc import Body, Call, Queries

__all__ = ["AGGREGATOR_BUCKET", "POST", "procedures"]

procedures = Queries()
POST: Final = "social.coves.community.post"
AGGREGATOR_BUCKET: Final = "aggregator-posts"
AGGREGATOR_WINDOW_S: Final = 3600.0
_EDITABLE: Final = ("title", "content", "facets", "embed", "labels", "langs", "tags")
# One statement: the community's content rules, and whether the caller is an aggregator and
# authorized here (its newest authorization record decides).
_POST_CONTEXT: Final = """
SELECT (SELECT c.record -> 'contentRules' FROM communities AS c WHERE c.did = $1) AS rules,
       EXISTS (SELECT 1 FROM aggregators AS a WHERE a.did = $2 AND a.deleted_at IS NULL) AS aggregator,
       (SELECT z.enabled FROM aggregator_authorizations AS z
         WHERE z.community_did = $1 AND z.aggregator_did = $2 AND z.deleted_at IS NULL
         ORDER BY z.rev DESC LIMIT 1) AS authorized"""


async def _community(writes: Writes, ref: str) -> Community:
    found = await writes.store.find(did=ref if ref.startswith("did:") else None,
                                    handle=None if ref.startswith("did:") else ref)
    if found is None or found.did is None:
        raise NotFound(f"Community not hosted here: {ref}", error="CommunityNotFound")
    return found


def _record_ref(uri: str) -> tuple[str, str]:
    """(repo DID, rkey) of a post URI."""
    parts = uri.removeprefix("at://").split("/")
    if len(parts) != 3 or parts[1] != POST:
        raise InvalidRequest(f"Not a post URI: {uri}")
    return parts[0], parts[2]


async def _rules(call: Call, writes: Writes, community: str, *, new_post: bool) -> Any:
    """The community's content rules; enforces the aggregator rules on the way (an edit needs
    the authorization too, but only a new post counts against the hourly budget)."""
    caller = call.viewer
    row = await call.db.fetchrow(_POST_CONTEXT, community, caller)
    assert row is not None
    if row["aggregator"]:
        if not row["authorized"]:
            raise Forbidden("This aggregator has no enabled authorization for the community",
                            error="NotAuthorized")
        trusted = writes.config.trusted_aggregators or frozenset()
        if new_post and caller not in trusted:
            limit = writes.config.aggregator_posts_per_hour
            decision = writes.budgets.hit(AGGREGATOR_BUCKET, f"{caller} {community}", limit,
                                          window_s=AGGREGATOR_WINDOW_S)
            if not decision.allowed:
                raise RateLimitExceeded(f"Aggregators may post {limit} times per hour in a "
                                        "community", headers=decision.headers())
    return row["rules"]


@procedures.procedure("social.coves.community.post.create")
async def create_post(call: Call) -> Body:
    """Create a post in a hosted community's repository (see the module docstring)."""
    writes = writes_of(call)
    body = call.input
    community = await _community(writes, body["community"])
    assert community.did is not None and call.viewer is not None
    record: dict[str, Any] = {"$type": POST, "community": community.did, "author": call.viewer,
                              "createdAt": now_iso()}
    record.update({k: body[k] for k in _EDITABLE if body.get(k) is not None})
    validate_record(record)
    check_post(record, await _rules(call, writes, community.did, new_post=True))
    try:
        token = await writes.tokens.access_token(community)
        out = await writes.pds.create_record(community.pds_url, token, community.did, POST, record)
    except PdsError as exc:
        raise pds_error(exc) from exc
    await apply_commit(writes.writer, did=community.did, collection=POST,
                       rkey=out["uri"].rsplit("/", 1)[1], rev=out["commit"]["rev"],
                       operation="create", record=record, cid=out["cid"])
    return {"uri": out["uri"], "cid": out["cid"]}


async def _own_post(call: Call, writes: Writes, uri: str) -> tuple[Community, str, dict[str, Any], str]:
    """(community, rkey, record, cid) of the caller's post, as the PDS holds it now."""
    repo, rkey = _record_ref(uri)
    community = await writes.store.find(did=repo)
    if community is None:
        raise NotFound(f"Post not found: {uri}", error="PostNotFound")
    try:
        current = await writes.pds.get_record(community.pds_url, repo, POST, rkey)
    except PdsRefused as exc:
        raise NotFound(f"Post not found: {uri}", error="PostNotFound") from exc
    except PdsError as exc:
        raise pds_error(exc) from exc
    record = current.get("value") or {}
    if record.get("author") != call.viewer:
        raise Forbidden("Only the post's author may change it", error="NotAuthorized")
    return community, rkey, record, current["cid"]


def _swap_failed(exc: PdsRefused) -> Conflict | None:
    if exc.error == "InvalidSwap":
        return Conflict("The post changed since it was read; read it again", error="InvalidSwap")
    return None


@procedures.procedure("social.coves.community.post.update")
async def update_post(call: Call) -> Body:
    """Edit the caller's post: given fields replace the stored ones."""
    writes = writes_of(call)
    body = call.input
    community, rkey, record, cid = await _own_post(call, writes, body["uri"])
    assert community.did is not None
    record = {**record, **{k: body[k] for k in _EDITABLE if k in body}}
    validate_record(record)
    check_post(record, await _rules(call, writes, community.did, new_post=False))
    try:
        token = await writes.tokens.access_token(community)
        out = await writes.pds.put_record(community.pds_url, token, community.did, POST, rkey,
                                          record, swap_record=cid)
    except PdsRefused as exc:
        raise _swap_failed(exc) or pds_error(exc) from exc
    except PdsError as exc:
        raise pds_error(exc) from exc
    await apply_commit(writes.writer, did=community.did, collection=POST, rkey=rkey,
                       rev=out["commit"]["rev"], operation="update", record=record, cid=out["cid"])
    return {"uri": out["uri"], "cid": out["cid"]}


@procedures.procedure("social.coves.community.post.delete")
async def delete_post(call: Call) -> Body:
    """Delete the caller's post."""
    writes = writes_of(call)
    community, rkey, _, cid = await _own_post(call, writes, call.input["uri"])
    assert community.did is not None
    try:
        token = await writes.tokens.access_token(community)
        out = await writes.pds.delete_record(community.pds_url, token, community.did, POST, rkey,
                                             swap_record=cid)
    except PdsRefused as exc:
        raise _swap_failed(exc) or pds_error(exc) from exc
    except PdsError as exc:
        raise pds_error(exc) from exc
    commit = out.get("commit")
    if isinstance(commit, dict) and commit.get("rev"):
        await apply_commit(writes.writer, did=community.did, collection=POST, rkey=rkey,
                           rev=commit["rev"], operation="delete")
    return {}
