"""DidResolver: did:plc and did:web documents, id checks, caching (found and failed), purge,
one shared fetch for concurrent lookups."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.identity.errors import DidDocumentInvalid, DidNotFound, DidResolutionError
from engine.identity.fetch import Fetcher
from engine.identity.resolver import DidDocument, DidResolver, DidWeb, parse_did_web

from .server import Reply, TestServer, json_reply

ALICE = "did:plc:" + "alice".rjust(24, "a")
KEY = "zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme"


def did_doc(did: str, handle: str | None = "alice.coves.test", **extra: Any) -> dict[str, Any]:
    return {
        "@context": ["https://www.w3.org/ns/did/v1"],
        "id": did,
        "alsoKnownAs": [f"at://{handle}"] if handle else [],
        "verificationMethod": [{"id": f"{did}#atproto", "type": "Multikey", "controller": did,
                                "publicKeyMultibase": KEY}],
        "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                     "serviceEndpoint": "https://pds.coves.test"}],
        **extra,
    }


def plc_resolver(fetcher: Fetcher, server: TestServer, **kwargs: Any) -> DidResolver:
    return DidResolver(fetcher, plc_url=f"https://plc.coves.test:{server.port}", **kwargs)


async def test_resolves_a_did_plc_through_the_plc_directory(
        https_server: TestServer, fetcher: Fetcher) -> None:
    https_server.routes[f"/{ALICE}"] = json_reply(did_doc(ALICE, "Alice.Coves.Test"))
    document = await plc_resolver(fetcher, https_server).resolve(ALICE)
    assert document.id == ALICE
    assert document.handle == "alice.coves.test"
    assert document.also_known_as == ("at://Alice.Coves.Test",)
    assert document.pds_endpoint == "https://pds.coves.test"
    assert document.signing_key == KEY
    assert document.raw["id"] == ALICE
    assert https_server.seen[0].host == f"plc.coves.test:{https_server.port}"


async def test_resolves_did_web_at_the_well_known_path_and_path_style(
        https_server: TestServer, fetcher: Fetcher) -> None:
    host_did = f"did:web:localhost%3A{https_server.port}"
    user_did = f"did:web:localhost%3A{https_server.port}:u:alice"
    https_server.routes["/.well-known/did.json"] = json_reply(did_doc(host_did, "localhost.test"))
    https_server.routes["/u/alice/did.json"] = json_reply(did_doc(user_did, None))
    resolver = DidResolver(fetcher)
    assert (await resolver.resolve(host_did)).handle == "localhost.test"
    user = await resolver.resolve(user_did)
    assert user.handle is None and user.signing_key == KEY
    assert https_server.paths() == ["/.well-known/did.json", "/u/alice/did.json"]


def test_did_web_parsing() -> None:
    assert parse_did_web("did:web:coves.social") == DidWeb("coves.social", None, ())
    assert parse_did_web("did:web:Localhost%3A8443") == DidWeb("localhost", 8443, ())
    assert parse_did_web("did:web:example.com:u:bob").url == "https://example.com/u/bob/did.json"
    assert parse_did_web("did:web:example.com%3A99").url == "https://example.com:99/.well-known/did.json"
    for bad in ("did:plc:abc", "did:web:", "did:web:exa_mple.com", "did:web:1.2.3.4",
                "did:web:example.com%3Ax", "did:web:example.com%3A70000", "did:web:a.com:%2F:x",
                "did:web:a.com:..", "did:web:a.com%2Fpath"):
        with pytest.raises(ValueError):
            parse_did_web(bad)


async def test_a_document_for_another_did_is_refused_and_remembered(
        mock_clock: trio.testing.MockClock, https_server: TestServer, fetcher: Fetcher) -> None:
    https_server.routes[f"/{ALICE}"] = json_reply(did_doc("did:plc:" + "b" * 24))
    resolver = plc_resolver(fetcher, https_server)
    for _ in range(2):
        with pytest.raises(DidDocumentInvalid, match="is not the DID"):
            await resolver.resolve(ALICE)
    assert len(https_server.seen) == 1  # the failure was cached
    mock_clock.jump(301)  # failures are remembered 5 min
    https_server.routes[f"/{ALICE}"] = json_reply(did_doc(ALICE))
    assert (await resolver.resolve(ALICE)).id == ALICE
    assert len(https_server.seen) == 2


async def test_not_found_is_cached_5_min_and_a_server_error_30_s(
        mock_clock: trio.testing.MockClock, https_server: TestServer, fetcher: Fetcher) -> None:
    bob = "did:plc:" + "b" * 24
    https_server.routes[f"/{bob}"] = Reply(status=500)
    resolver = plc_resolver(fetcher, https_server)
    for did, error in ((ALICE, DidNotFound), (bob, DidResolutionError)):
        for _ in range(2):
            with pytest.raises(error):
                await resolver.resolve(did)
    assert https_server.paths() == [f"/{ALICE}", f"/{bob}"]
    mock_clock.jump(31)
    with pytest.raises(DidResolutionError):
        await resolver.resolve(bob)
    with pytest.raises(DidNotFound):
        await resolver.resolve(ALICE)
    assert https_server.paths() == [f"/{ALICE}", f"/{bob}", f"/{bob}"]


async def test_found_documents_are_cached_for_the_ttl_then_fetched_again(
        mock_clock: trio.testing.MockClock, https_server: TestServer, fetcher: Fetcher) -> None:
    https_server.routes[f"/{ALICE}"] = json_reply(did_doc(ALICE))
    resolver = plc_resolver(fetcher, https_server)
    await resolver.resolve(ALICE)
    mock_clock.jump(3599)
    await resolver.resolve(ALICE)
    assert len(https_server.seen) == 1
    mock_clock.jump(2)
    await resolver.resolve(ALICE)
    assert len(https_server.seen) == 2


async def test_purge_and_fresh_fetch_again(https_server: TestServer, fetcher: Fetcher) -> None:
    https_server.routes[f"/{ALICE}"] = json_reply(did_doc(ALICE, "old.coves.test"))
    resolver = plc_resolver(fetcher, https_server)
    assert (await resolver.resolve(ALICE)).handle == "old.coves.test"
    https_server.routes[f"/{ALICE}"] = json_reply(did_doc(ALICE, "new.coves.test"))
    assert (await resolver.resolve(ALICE)).handle == "old.coves.test"  # cached
    resolver.purge(ALICE)
    assert (await resolver.resolve(ALICE)).handle == "new.coves.test"
    https_server.routes[f"/{ALICE}"] = json_reply(did_doc(ALICE, "newer.coves.test"))
    assert (await resolver.resolve(ALICE, fresh=True)).handle == "newer.coves.test"
    assert (await resolver.resolve(ALICE)).handle == "newer.coves.test"  # fresh refilled the cache
    assert len(https_server.seen) == 3


async def test_concurrent_lookups_of_one_did_share_one_fetch(
        https_server: TestServer, fetcher: Fetcher) -> None:
    gate = trio.Event()
    https_server.routes[f"/{ALICE}"] = Reply(body=json_reply(did_doc(ALICE)).body, gate=gate)
    resolver = plc_resolver(fetcher, https_server)
    results: list[DidDocument] = []

    async def lookup() -> None:
        results.append(await resolver.resolve(ALICE))

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(lookup)
        await https_server.wait_for_requests(1)
        await trio.testing.wait_all_tasks_blocked()
        gate.set()
    assert len(results) == 5 and all(r == results[0] for r in results)
    assert len(https_server.seen) == 1


async def test_a_purge_during_a_fetch_keeps_its_result_out_of_the_cache(
        https_server: TestServer, fetcher: Fetcher) -> None:
    gate = trio.Event()
    https_server.routes[f"/{ALICE}"] = Reply(body=json_reply(did_doc(ALICE, "old.coves.test")).body,
                                              gate=gate)
    resolver = plc_resolver(fetcher, https_server)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(resolver.resolve, ALICE)
        await https_server.wait_for_requests(1)
        resolver.purge(ALICE)  # an identity event arrives while the old document is in flight
        gate.set()
    https_server.routes[f"/{ALICE}"] = json_reply(did_doc(ALICE, "new.coves.test"))
    assert (await resolver.resolve(ALICE)).handle == "new.coves.test"


async def test_unsupported_or_malformed_dids_fail_without_fetching(
        https_server: TestServer, fetcher: Fetcher) -> None:
    resolver = plc_resolver(fetcher, https_server)
    for did in ("did:key:z6Mk", "did:plc:short", "did:web:exa_mple.com", "not a did"):
        with pytest.raises(DidResolutionError):
            await resolver.resolve(did)
    assert https_server.connections == 0


def test_document_parts_are_picked_leniently_but_types_are_checked() -> None:
    doc = did_doc(ALICE, "alice.coves.test")
    doc["service"] = ["junk", {"id": f"{ALICE}#atproto_pds", "serviceEndpoint": "https://p.example/"}]
    doc["alsoKnownAs"] = ["https://elsewhere", "at://not a handle", "at://second.example"]
    parsed = DidDocument.parse(ALICE, doc)
    assert parsed.pds_endpoint == "https://p.example" and parsed.handle is None
    for bad in ([], {"id": ALICE, "alsoKnownAs": "at://x.example"}, {"id": ALICE, "service": {}},
                {"id": ALICE, "alsoKnownAs": [1]}, {"alsoKnownAs": []}):
        with pytest.raises(DidDocumentInvalid):
            DidDocument.parse(ALICE, bad)


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=20)
_FIELDS = st.sampled_from(["alsoKnownAs", "service", "verificationMethod", "id"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_FIELDS, _JSON, max_size=4) | _JSON)
def test_any_json_parses_or_raises_did_document_invalid(data: Any) -> None:
    if isinstance(data, dict):
        data.setdefault("id", ALICE)
    try:
        DidDocument.parse(ALICE, data)
    except DidDocumentInvalid:
        pass
