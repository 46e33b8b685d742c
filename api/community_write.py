"""social.coves.community.create / update: communities as accounts on PDS_URL.

create:
  1. `name` is 1–16 characters of [a-z0-9-], no hyphen at either end (the PDS allows 18 for a
     handle's first label; `c-` takes 2); COMMUNITY_CREATORS, when set, lists who may create.
  2. A 'provisioning' row reserves the name with a generated email and password (sealed): the
     unique name decides a race, so of N concurrent creates exactly one proceeds (409 NameTaken
     for the others).
  3. `createAccount` on PDS_URL with handle `c-{name}.{domain}`; the session is stored sealed.
  4. The profile `social.coves.community.profile/self` is written into the new repo
     (`hostedBy` = INSTANCE_DID, `createdBy` = the caller), the row becomes 'ready', and the
     profile is indexed at once (api/optimistic.py).
  If the PDS is down before the account exists, the reservation is dropped: nothing is left
  half-written. If the account exists but the profile could not be written (or the answer to
  createAccount was lost), the row stays 'provisioning' and the same creator's retry finishes it
  (createSession with the stored password when needed).
update: the creator only; the stored profile is read from the PDS, changed, and written back
with `swapRecord` (409 InvalidSwap when it changed meanwhile).
"""

from __future__ import annotations

import re
import secrets
from typing import Any, Final

import trio

from engine.lexicon import LexiconViolation, load_default

from .credentials import Community
from .errors import Conflict, Forbidden, InvalidRequest, NotFound
from .optimistic import apply_commit
from .pds_client import PdsDown, PdsError, PdsRefused, PdsUnreachable, Session
from .writes import Writes, now_iso, pds_error, validate_record, writes_of
from .xrpc import Body, Call, Queries

__all__ = ["PROFILE", "procedures"]

procedures = Queries()
PROFILE: Final = "social.coves.community.profile"
PROFILE_RKEY: Final = "self"
CONTENT_RULES: Final = "social.coves.community.contentRules"
_NAME: Final = re.compile(r"^[a-z0-9]([a-z0-9-]{0,14}[a-z0-9])?$")
_PROFILE_FIELDS: Final = ("displayName", "description", "visibility", "contentRules", "avatar",
                          "banner", "moderationType")
_locks: dict[str, trio.Lock] = {}


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidRequest("name must be 1-16 characters of a-z, 0-9 and '-', not starting or "
                             "ending with '-'", error="InvalidName")
    return name


@procedures.procedure("social.coves.community.create")
async def create_community(call: Call) -> Body:
    """Provision a community account and its profile (see the module docstring)."""
    writes = writes_of(call)
    caller = call.viewer
    assert caller is not None
    creators = writes.config.community_creators
    if creators is not None and caller not in creators:
        raise Forbidden("Only COMMUNITY_CREATORS may create communities here", error="NotAuthorized")
    name = _check_name(call.input["name"])
    lock = _locks.setdefault(name, trio.Lock())
    try:
        async with lock:
            return await _create(writes, name, caller, call.input)
    finally:
        if not lock.locked() and not lock.statistics().tasks_waiting:
            _locks.pop(name, None)  # keep only names being created right now


async def _create(writes: Writes, name: str, caller: str, body: dict[str, Any]) -> Body:
    """Steps 2-4 of the module docstring, under the name's lock (this process)."""
    community = await _reserve(writes, name, caller)
    session = await _account(writes, community)
    record = _profile(writes, community, caller, body)
    try:
        out = await writes.pds.put_record(community.pds_url, session.access_jwt, session.did,
                                          PROFILE, PROFILE_RKEY, record)
    except PdsError as exc:
        raise pds_error(exc) from exc
    await writes.store.mark_ready(name)
    await apply_commit(writes.writer, did=session.did, collection=PROFILE, rkey=PROFILE_RKEY,
                       rev=out["commit"]["rev"], operation="create", record=record, cid=out["cid"])
    return {"uri": out["uri"], "cid": out["cid"], "did": session.did, "handle": community.handle}


async def _reserve(writes: Writes, name: str, caller: str) -> Community:
    """The provisioning row of `name` for `caller`: new, or theirs to finish."""
    existing = await writes.store.by_name(name)
    if existing is None:
        domain = await writes.handle_domain()
        if await writes.store.reserve(
                name=name, handle=f"c-{name}.{domain}", created_by=caller,
                pds_url=writes.config.pds_url, email=f"c-{name}@{domain}.invalid",
                password=secrets.token_urlsafe(24)):
            existing = await writes.store.by_name(name)
    if existing is None or existing.state == "ready" or existing.created_by != caller:
        raise Conflict(f"Community name {name!r} is taken", error="NameTaken")
    return existing


async def _account(writes: Writes, community: Community) -> Session:
    """The community's account session: created now, or recovered for a retry."""
    pds = writes.pds
    try:
        if community.did is None:
            try:
                session = await pds.create_account(community.pds_url, community.handle,
                                                   community.email, community.password)
            except PdsRefused as exc:
                if exc.error not in ("HandleNotAvailable", "AlreadyExists"):
                    raise
                # A create whose answer was lost made the account with our stored password.
                session = await pds.create_session(community.pds_url, community.handle,
                                                   community.password)
        else:
            session = await pds.create_session(community.pds_url, community.did, community.password)
    except PdsRefused as exc:
        await writes.store.release(community.name)
        raise Conflict(f"The PDS refused the community account: {exc.detail or exc.error}",
                       error="NameTaken") from exc
    except PdsDown as exc:
        if community.did is None and isinstance(exc, PdsUnreachable) and not exc.maybe_done:
            await writes.store.release(community.name)  # the PDS never saw it
        raise pds_error(exc) from exc
    await writes.store.store_session(community.name, session)
    return session


def _check_rules(body: dict[str, Any]) -> None:
    """`contentRules` is our addition to Coves' input (lexicons/…/contentRules.json)."""
    if "contentRules" in body:
        try:
            load_default().validate_value(CONTENT_RULES, body["contentRules"], "contentRules")
        except LexiconViolation as exc:
            raise InvalidRequest(f"Invalid input: {exc}") from None


def _profile(writes: Writes, community: Community, caller: str, body: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {
        "$type": PROFILE, "name": community.name, "handle": community.handle,
        "createdBy": caller, "hostedBy": writes.config.service_did, "createdAt": now_iso(),
        "visibility": body.get("visibility", "public"),
    }
    for field in _PROFILE_FIELDS:
        if body.get(field) is not None and field not in record:
            record[field] = body[field]
    _check_rules(body)
    validate_record(record)
    return record


@procedures.procedure("social.coves.community.update")
async def update_community(call: Call) -> Body:
    """Change a community's profile; only its creator may."""
    writes = writes_of(call)
    body = call.input
    community = await writes.store.find(did=body["community"])
    if community is None or community.did is None:
        raise NotFound(f"Community not found here: {body['community']}")
    if community.created_by != call.viewer:
        raise Forbidden("Only the community's creator may update it", error="NotAuthorized")
    try:
        token = await writes.tokens.access_token(community)
        current = await writes.pds.get_record(community.pds_url, community.did, PROFILE,
                                              PROFILE_RKEY)
        record = dict(current["value"])
        for field in _PROFILE_FIELDS:
            if field in body:
                record[field] = body[field]
        _check_rules(body)
        validate_record(record)
        out = await writes.pds.put_record(community.pds_url, token, community.did, PROFILE,
                                          PROFILE_RKEY, record, swap_record=current["cid"])
    except PdsRefused as exc:
        if exc.error == "InvalidSwap":
            raise Conflict("The profile changed meanwhile; read it again", error="InvalidSwap") from exc
        raise pds_error(exc) from exc
    except PdsError as exc:
        raise pds_error(exc) from exc
    await apply_commit(writes.writer, did=community.did, collection=PROFILE, rkey=PROFILE_RKEY,
                       rev=out["commit"]["rev"], operation="update", record=record, cid=out["cid"])
    return {"uri": out["uri"], "cid": out["cid"]}
