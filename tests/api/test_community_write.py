"""social.coves.community.create / update against the reference PDS: the account, its encrypted
credentials, the profile in its repo, read-after-write, names, creators, races with ourselves
and a PDS that is down."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest

from engine.db import Database
from tests import factories as f

from .conftest import WriteWorld, get_json

CREATE = "social.coves.community.create"
UPDATE = "social.coves.community.update"


def fresh_name() -> str:
    return "t" + secrets.token_hex(5)


async def create(world: WriteWorld, caller: str, name: str | None = None,
                 **fields: Any) -> tuple[int, Any]:
    body = {"name": fresh_name() if name is None else name, "description": "a test community",
            **fields}
    return await world.call(CREATE, body, caller=caller)


async def test_create_provisions_the_account_profile_and_encrypted_credentials(
        world: WriteWorld, db: Database) -> None:
    creator, name = f.did("creator"), fresh_name()
    status, out = await create(world, creator, name, displayName="Gardening")
    assert status == 200, out
    assert out["handle"] == f"c-{name}.test" and out["did"].startswith("did:plc:")
    assert out["uri"] == f"at://{out['did']}/social.coves.community.profile/self"
    # the profile lives in the community's own repo on the PDS
    async with httpx.AsyncClient(base_url=world.pds_url) as http:
        stored = (await http.get("/xrpc/com.atproto.repo.getRecord", params={
            "repo": out["did"], "collection": "social.coves.community.profile",
            "rkey": "self"})).json()
    assert stored["cid"] == out["cid"]
    assert stored["value"]["createdBy"] == creator
    assert stored["value"]["hostedBy"] == "did:web:appview.test"  # INSTANCE_DID
    # readable at once (before any firehose event)
    status, view = await get_json(world.client, "/xrpc/social.coves.community.get",
                                  community=out["did"])
    assert status == 200 and view["handle"] == out["handle"] and view["displayName"] == "Gardening"
    # no secret is stored in clear
    row = await db.fetchrow("SELECT * FROM community_credentials WHERE name = $1", name)
    assert row["state"] == "ready" and row["did"] == out["did"] and row["created_by"] == creator
    community = await world.writes.store.by_name(name)
    for column, secret in (("password_enc", community.password),
                           ("access_jwt_enc", community.access_jwt),
                           ("refresh_jwt_enc", community.refresh_jwt)):
        assert secret and secret.encode() not in bytes(row[column])


@pytest.mark.parametrize("name", ["", "-abc", "abc-", "Abc", "a_b", "a" * 17, "ab.cd"])
async def test_malformed_names_are_refused(world: WriteWorld, name: str) -> None:
    status, out = await create(world, f.did("creator"), name)
    assert status == 400 and out["error"] in ("InvalidName", "InvalidRequest")


async def test_longest_name_fits_the_pds_handle_rule(world: WriteWorld) -> None:
    name = secrets.token_hex(8)  # 16 characters: c-{16}.test
    status, out = await create(world, f.did("creator"), name)
    assert status == 200 and out["handle"] == f"c-{name}.test"


async def test_creation_needs_a_token_and_a_listed_creator(
        make_write_world: Callable[..., AbstractAsyncContextManager[WriteWorld]]) -> None:
    allowed = f.did("allowed")
    async with make_write_world(COMMUNITY_CREATORS=allowed) as world:
        status, out = await world.call(CREATE, {"name": fresh_name(), "description": "x"})
        assert (status, out["error"]) == (401, "AuthenticationRequired")
        status, out = await create(world, f.did("stranger"))
        assert (status, out["error"]) == (403, "NotAuthorized")
        assert (await create(world, allowed))[0] == 200


async def test_a_taken_name_is_refused(world: WriteWorld) -> None:
    name = fresh_name()
    assert (await create(world, f.did("first"), name))[0] == 200
    for caller in (f.did("second"), f.did("first")):
        status, out = await create(world, caller, name)
        assert (status, out["error"]) == (409, "NameTaken")


async def test_pds_down_leaves_nothing_half_written(
        make_write_world: Callable[..., AbstractAsyncContextManager[WriteWorld]],
        db: Database) -> None:
    name = fresh_name()
    async with make_write_world(PDS_URL="http://127.0.0.1:9") as world:  # nothing listens
        status, out = await create(world, f.did("creator"), name)
    assert (status, out["error"]) == (503, "PdsUnavailable")
    assert await db.fetchval("SELECT count(*) FROM community_credentials WHERE name = $1", name) == 0
    async with make_write_world() as world:  # the name is still free
        assert (await create(world, f.did("creator"), name))[0] == 200


async def test_only_the_creator_updates_and_the_change_reads_back(world: WriteWorld) -> None:
    creator = f.did("creator")
    _, out = await create(world, creator, contentRules={"textOnly": True})
    status, refused = await world.call(UPDATE, {"community": out["did"], "description": "mine"},
                                       caller=f.did("intruder"))
    assert (status, refused["error"]) == (403, "NotAuthorized")
    status, updated = await world.call(
        UPDATE, {"community": out["did"], "description": "new words",
                 "contentRules": {"allowedEmbedTypes": ["external"]}}, caller=creator)
    assert status == 200 and updated["cid"] != out["cid"]
    _, view = await get_json(world.client, "/xrpc/social.coves.community.get", community=out["did"])
    assert view["description"] == "new words"


async def test_a_create_cut_short_after_the_account_is_finished_by_a_retry(
        world: WriteWorld, db: Database) -> None:
    from api.pds_client import PdsUnreachable

    creator, name = f.did("creator"), fresh_name()
    pds = world.writes.pds
    put = pds.put_record

    async def lost(*args: Any, **kwargs: Any) -> Any:
        raise PdsUnreachable("com.atproto.repo.putRecord", "PDS did not answer in time",
                             maybe_done=False)

    pds.put_record = lost  # type: ignore[method-assign]
    status, out = await create(world, creator, name)
    assert (status, out["error"]) == (503, "PdsUnavailable")
    row = await db.fetchrow("SELECT did, state FROM community_credentials WHERE name = $1", name)
    assert row["state"] == "provisioning" and row["did"] is not None  # the account exists
    pds.put_record = put  # type: ignore[method-assign]
    status, out = await create(world, f.did("someone-else"), name)
    assert (status, out["error"]) == (409, "NameTaken")  # only its creator may finish it
    status, out = await create(world, creator, name)
    assert status == 200 and out["did"] == row["did"]


async def test_content_rules_are_checked_on_create(world: WriteWorld) -> None:
    status, out = await create(world, f.did("creator"), contentRules={"allowedEmbedTypes": "images"})
    assert (status, out["error"]) == (400, "InvalidRequest") and "contentRules" in out["message"]
