"""Smoke tests of the reference-PDS harness: writes reach the firehose, PDSes share one PLC."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any, Final

import httpx
import libipld
import pytest
import trio
from trio_websocket import open_websocket_url

from tests.pds.fixtures import pds_installed, pds_network, pds_network_factory  # noqa: F401
from tests.pds.harness import (
    PdsCallError,
    PdsClient,
    PdsHarnessError,
    PdsNetwork,
    start_pds_network,
    unique_handle,
)

# Raw firehose frames are at most ~5 MB (facts.md); trio-websocket's default is 1 MiB.
FIREHOSE_MAX_MESSAGE_BYTES: Final = 5 * 2**20
# A frame arrives within a few ms of the write; replaying from cursor 0 is as quick.
FIREHOSE_WAIT_S: Final = 15.0

PROFILE: Final = "social.coves.community.profile"
POST: Final = "social.coves.community.post"
VOTE: Final = "social.coves.feed.vote"
NOW: Final = "2026-11-26T08:00:00.000Z"


async def read_firehose_creates(
    pds_url: str, wanted: set[tuple[str, str]]
) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    """Replay subscribeRepos from cursor 0 until every `(did, path)` in `wanted` was created.

    Returns:
        `(did, path) -> (cid, record)` for each wanted create op, the record decoded from
        the commit's CAR slice.
    """
    url = "ws" + pds_url.removeprefix("http") + "/xrpc/com.atproto.sync.subscribeRepos?cursor=0"
    found: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    with trio.fail_after(FIREHOSE_WAIT_S):
        async with open_websocket_url(url, max_message_size=FIREHOSE_MAX_MESSAGE_BYTES) as ws:
            while not wanted <= found.keys():
                frame = await ws.get_message()
                assert isinstance(frame, bytes)
                header, body = libipld.decode_dag_cbor_multi(frame)
                assert header["op"] == 1, body
                if header["t"] != "#commit":
                    continue
                _roots, blocks = libipld.decode_car(body["blocks"])
                for op in body["ops"]:
                    key = (body["repo"], op["path"])
                    if key in wanted and op["action"] == "create":
                        # ops and decode_car's block keys are raw binary CIDs
                        found[key] = (libipld.encode_cid(op["cid"]), blocks[op["cid"]])
    return found


def jwt_part(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


async def test_records_written_to_pds_appear_as_firehose_commits(
    pds_network: PdsNetwork,  # noqa: F811
) -> None:
    async with PdsClient(pds_network.pds_urls[0]) as pds:
        community = await pds.create_account(unique_handle("c-garden"))
        voter = await pds.create_account(unique_handle("voter"))

        profile = {
            "name": "garden",
            "displayName": "Gardening",
            "description": "Plants and dirt",
            "createdBy": voter.did,
            "hostedBy": "did:web:localhost",
            "visibility": "public",
            "createdAt": NOW,
        }
        post = {
            "community": community.did,
            "author": voter.did,
            "title": "First tomatoes",
            "content": "Ripe in November.",
            "createdAt": NOW,
        }
        profile_uri, profile_cid = await pds.create_record(
            community, PROFILE, profile, rkey="self"
        )
        post_uri, post_cid = await pds.create_record(community, POST, post)
        vote = {"subject": {"uri": post_uri, "cid": post_cid}, "direction": "up", "createdAt": NOW}
        vote_uri, vote_cid = await pds.create_record(voter, VOTE, vote)

    assert profile_uri == f"at://{community.did}/{PROFILE}/self"
    written = {
        (community.did, f"{PROFILE}/self"): (profile_cid, {"$type": PROFILE, **profile}),
        (community.did, post_uri.split("/", 3)[3]): (post_cid, {"$type": POST, **post}),
        (voter.did, vote_uri.split("/", 3)[3]): (vote_cid, {"$type": VOTE, **vote}),
    }
    seen = await read_firehose_creates(pds_network.pds_urls[0], set(written))
    assert seen == written


async def test_client_uploads_blobs_rewrites_deletes_and_exports_repos(
    pds_network: PdsNetwork,  # noqa: F811
) -> None:
    async with PdsClient(pds_network.pds_urls[0]) as pds:
        alice = await pds.create_account(unique_handle("alice"))
        blob = await pds.upload_blob(alice, b"\x89PNG\r\n\x1a\n" + bytes(64), "image/png")
        assert blob["mimeType"] == "image/png" and blob["size"] == 72

        profile = {"name": "garden", "avatar": blob, "createdAt": NOW}
        await pds.put_record(alice, PROFILE, "self", profile)
        _, cid = await pds.put_record(alice, PROFILE, "self", {**profile, "name": "garden2"})
        post_uri, _ = await pds.create_record(alice, POST, {"title": "gone", "createdAt": NOW})
        await pds.delete_record(alice, POST, post_uri.rsplit("/", 1)[1])
        create = {
            "$type": "com.atproto.repo.applyWrites#create",
            "collection": POST,
            "rkey": "batched",
            "value": {"$type": POST, "title": "kept", "createdAt": NOW},
        }
        results = await pds.apply_writes(alice, [create])
        assert results[0]["uri"] == f"at://{alice.did}/{POST}/batched"

        assert alice.did in {repo["did"] for repo in await pds.list_repos()}
        _header, blocks = libipld.decode_car(await pds.get_repo(alice.did))
        with pytest.raises(PdsCallError) as refused:
            await pds.create_account(alice.handle)

    records = [block for block in blocks.values() if "$type" in block]
    assert sorted(r["$type"] + ":" + r.get("name", r.get("title", "")) for r in records) == [
        f"{POST}:kept",
        f"{PROFILE}:garden2",
    ]
    (profile_cid,) = [k for k, v in blocks.items() if v.get("name") == "garden2"]
    assert libipld.encode_cid(profile_cid) == cid
    assert refused.value.status == 400
    assert "Handle already taken" in str(refused.value.message)


def test_start_failure_reports_the_process_stderr(pds_installed: None) -> None:  # noqa: F811
    with pytest.raises(PdsHarnessError, match="count must be an integer in 1..16"):
        with start_pds_network(count=0):
            pass


async def test_service_auth_token_is_es256k_signed_by_the_account(
    pds_network: PdsNetwork,  # noqa: F811
) -> None:
    async with PdsClient(pds_network.pds_urls[0]) as pds:
        alice = await pds.create_account(unique_handle("alice"))
        token = await pds.get_service_auth(
            alice, aud="did:web:coves.test", lxm="social.coves.community.post.create"
        )

    assert jwt_part(token, 0)["alg"] == "ES256K"
    claims = jwt_part(token, 1)
    assert claims["iss"] == alice.did
    assert claims["aud"] == "did:web:coves.test"
    assert claims["lxm"] == "social.coves.community.post.create"


async def test_two_pdses_register_their_accounts_in_one_plc(
    pds_network_factory: Callable[..., PdsNetwork],  # noqa: F811
) -> None:
    network = pds_network_factory(2)
    pds1_url, pds2_url = network.pds_urls
    async with PdsClient(pds1_url) as pds1, PdsClient(pds2_url) as pds2:
        on_pds1 = await pds1.create_account(unique_handle("alice"))
        on_pds2 = await pds2.create_account(unique_handle("bob"))
        assert [r["did"] for r in await pds2.list_repos()] == [on_pds2.did]

    async with httpx.AsyncClient(base_url=network.plc_url) as plc:
        docs = {acct.did: (await plc.get(f"/{acct.did}")).json() for acct in (on_pds1, on_pds2)}

    def pds_endpoint(doc: dict[str, Any]) -> str:
        (service,) = [s for s in doc["service"] if s["id"] == "#atproto_pds"]
        endpoint: str = service["serviceEndpoint"]
        return endpoint

    assert pds_endpoint(docs[on_pds1.did]) == pds1_url
    assert pds_endpoint(docs[on_pds2.did]) == pds2_url
    assert docs[on_pds2.did]["alsoKnownAs"] == [f"at://{on_pds2.handle}"]
