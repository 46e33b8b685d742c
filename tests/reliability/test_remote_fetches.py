"""Remote fetches through the real identity wiring (engine/identity/tools.open_identity, as
`coves run` builds it): did:web issuers of service-auth tokens, handles and community hostedBy
that name loopback, private, link-local, metadata, CGN and IPv6-embedded addresses are refused
without a connection; redirects to such targets are refused at the hop; the size, time and
redirect caps hold even under the explicit test-only allowance (IDENTITY_ALLOW_PRIVATE_ADDRESSES).

tests/identity/test_fetch.py proves the fetcher alone (ref-fetcher); here it is the resolver,
handle verifier, host verifier and API on top of it, against a real TLS server on 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import jwt
import pytest
import trio
from cryptography.hazmat.primitives.asymmetric import ec

from api.app import create_app
from engine.db import Database
from engine.identity.errors import DidResolutionError
from engine.identity.fetch import IPAddress, is_public_address, open_fetcher
from engine.identity.handles import HandleStatus
from engine.identity.resolver import DidResolver
from engine.identity.tools import IdentityTools, open_identity
from engine.metrics import IDENTITY_FETCHES
from tests.api.conftest import api_config
from tests.api.keys import AUDIENCE
from tests.identity.conftest import ca, client_ssl, https_server, server_ssl  # noqa: F401
from tests.identity.server import HANG, Reply, TestServer, json_reply, redirect

from .conftest import Scenario

LOOPBACK = ipaddress.ip_address("127.0.0.1")
# Host name → the address our test name lookup gives it: every kind a stranger could aim us at.
PRIVATE = {
    "loopback.coves.test": "127.0.0.1",
    "ten.coves.test": "10.0.0.1",
    "lan.coves.test": "192.168.1.1",
    "corp.coves.test": "172.16.0.1",
    "metadata.coves.test": "169.254.169.254",
    "cgn.coves.test": "100.64.0.1",
    "zero.coves.test": "0.0.0.0",
    "v6-loopback.coves.test": "::1",
    "v6-ula.coves.test": "fd00::1",
    "v6-link-local.coves.test": "fe80::1",
    "v4-mapped.coves.test": "::ffff:127.0.0.1",
    "nat64.coves.test": "64:ff9b::a9fe:a9fe",
    "mixed.coves.test": "127.0.0.1",  # plus a public address: one private one is enough to refuse
}
TIMELINE = "social.coves.feed.getTimeline"


async def lookup(host: str, port: int) -> list[IPAddress]:
    """Test name lookup: PRIVATE's names, `public.coves.test` is our server on 127.0.0.1."""
    if host == "mixed.coves.test":
        return [ipaddress.ip_address("93.184.215.14"), LOOPBACK]
    return [ipaddress.ip_address(PRIVATE.get(host, "127.0.0.1"))]


def refused() -> float:
    return IDENTITY_FETCHES.labels("refused")._value.get()


@asynccontextmanager
async def identity(client_ssl: ssl.SSLContext, **env: str) -> AsyncIterator[IdentityTools]:  # noqa: F811
    config = api_config(SKIP_DID_WEB_VERIFICATION="false", **env)
    async with open_identity(config, ssl_context=client_ssl, resolve=lookup,
                             dns_resolver=None) as tools:
        yield tools


@pytest.mark.scenario("ssrf-remote-fetches")
async def test_private_targets_are_refused_by_every_consumer_without_connecting(
        https_server: TestServer, client_ssl: ssl.SSLContext, db: Database,  # noqa: F811
        scenario: Scenario) -> None:
    port = https_server.port
    https_server.routes["/.well-known/did.json"] = json_reply({"id": "did:web:x"})
    https_server.routes["/.well-known/atproto-did"] = Reply(body=b"did:plc:x")
    before = refused()
    async with identity(client_ssl) as tools:
        app = create_app(api_config(SKIP_DID_WEB_VERIFICATION="false"), db, tools.resolver)
        async with app.test_app() as test_app:
            client = test_app.test_client()
            for host in PRIVATE:
                did = f"did:web:{host}%3A{port}"
                with pytest.raises(DidResolutionError, match="not a public address"):
                    await tools.resolver.resolve(did)
                # a token whose issuer is that did:web: 401, not a fetch
                token = jwt.encode({"iss": f"did:web:{host}", "aud": AUDIENCE, "lxm": TIMELINE,
                                    "exp": int(time.time()) + 60},
                                   ec.generate_private_key(ec.SECP256K1()), algorithm="ES256K")
                response = await client.get(f"/xrpc/{TIMELINE}",
                                            headers={"Authorization": f"Bearer {token}"})
                assert response.status_code == 401
                check = await tools.handles.verify(f"alice.{host}", "did:plc:alice")
                assert check.status is not HandleStatus.VERIFIED and "not a public address" in str(check), check
                hosted = await tools.hosting.verify(f"did:web:{host}", f"c-news.{host}")
                assert not hosted.ok and "not a public address" in hosted.detail, hosted
    # every consumer asked, none connected: 4 refusals per host, 0 connections
    assert refused() - before == 4 * len(PRIVATE)
    assert https_server.connections == 0 and https_server.seen == []
    scenario.note(f"{len(PRIVATE)} private address kinds × (did:web resolve, token issuer over "
                  "the API, handle, hostedBy) → refused, 0 connections to the local server")


@pytest.mark.scenario("ssrf-remote-fetches")
@pytest.mark.parametrize("target", ["https://10.0.0.1/did.json",
                                    "https://169.254.169.254/latest/meta-data/",
                                    "https://[::1]/did.json", "https://[fd00::1]/did.json",
                                    "https://lan.coves.test/did.json",  # a name that resolves privately
                                    "https://metadata.coves.test/did.json",
                                    "http://public.coves.test/did.json"])
async def test_a_redirect_to_a_private_target_is_refused_at_the_hop(
        target: str, https_server: TestServer, client_ssl: ssl.SSLContext) -> None:  # noqa: F811
    """The DID resolver over a production fetcher in which only our server plays a public host
    (the first hop must be public for a redirect to matter)."""
    https_server.routes["/.well-known/did.json"] = redirect(target)
    policy = lambda address: address == LOOPBACK or is_public_address(address)  # noqa: E731

    async def resolve(host: str, port: int) -> list[IPAddress]:
        return [LOOPBACK] if host == "public.coves.test" else await lookup(host, port)

    async with open_fetcher(ssl_context=client_ssl, resolve=resolve,
                            address_allowed=policy) as fetcher:
        resolver = DidResolver(fetcher, plc_url="https://plc.invalid")
        with pytest.raises(DidResolutionError, match="not a public address|only https"):
            await resolver.resolve(f"did:web:public.coves.test%3A{https_server.port}")
    assert https_server.paths() == ["/.well-known/did.json"]


@pytest.mark.scenario("ssrf-remote-fetches")
async def test_caps_hold_under_the_test_only_allowance(https_server: TestServer,  # noqa: F811
                                                      client_ssl: ssl.SSLContext,  # noqa: F811
                                                      scenario: Scenario) -> None:
    cap, limit_s = 2048, 1.0
    did = f"did:web:public.coves.test%3A{https_server.port}"
    routes = {"ok": json_reply({"id": f"{did}:ok"}),
              "big": json_reply({"id": f"{did}:big", "pad": "x" * cap}),
              "streamed": Reply(body=b"[" + b"0," * cap + b"0]", content_length=False),
              "slow": HANG, "loop": redirect("/loop/did.json")}
    for name, reply in routes.items():
        https_server.routes[f"/{name}/did.json"] = reply
    async with identity(client_ssl, IDENTITY_ALLOW_PRIVATE_ADDRESSES="true",
                        IDENTITY_FETCH_MAX_BYTES=str(cap),
                        IDENTITY_FETCH_TIMEOUT_S=str(limit_s)) as tools:
        assert (await tools.resolver.resolve(f"{did}:ok")).id == f"{did}:ok"  # allowance works
        for name, match in (("big", "bytes"), ("streamed", "bytes"), ("loop", "redirects")):
            with pytest.raises(DidResolutionError, match=match):
                await tools.resolver.resolve(f"{did}:{name}")
        started = trio.current_time()
        with pytest.raises(DidResolutionError, match="within"):
            await tools.resolver.resolve(f"{did}:slow")
        waited = trio.current_time() - started
    assert limit_s <= waited < limit_s + 1.0
    assert https_server.paths().count("/loop/did.json") == 4  # the first try + 3 redirects
    scenario.note(f"allowance on: {cap} B cap (announced and streamed), {limit_s:g} s limit "
                  f"(gave up after {waited:.2f} s), 3-redirect cap; the allowance is the only "
                  "way to reach 127.0.0.1")

