"""Handle verification: DNS TXT and https well-known (local servers), and the test-only PDS
fallback against the real reference PDS and its PLC."""

from __future__ import annotations

import trio

from engine.identity.fetch import Fetcher, open_fetcher
from engine.identity.handles import HandleStatus, HandleVerifier
from engine.identity.resolver import DidResolver
from tests.pds.client import PdsClient, unique_handle
from tests.pds.harness import PdsNetwork

from .dns_server import DnsServer
from .server import Reply, Seen, TestServer

ALICE = "did:plc:" + "alice".rjust(24, "a")
MALLORY = "did:plc:" + "mallory".rjust(24, "a")


def well_known_by_host(server: TestServer, owners: dict[str, str]) -> None:
    """Serve /.well-known/atproto-did answering each Host's DID from `owners`."""

    def answer(seen: Seen) -> Reply:
        did = owners.get(seen.host.split(":")[0])
        if did is None:
            return Reply(status=404)
        return Reply(body=f"{did}\n".encode(), headers=(("content-type", "text/plain"),))

    server.routes["/.well-known/atproto-did"] = answer


async def test_https_well_known_verifies_a_handle_that_names_the_did(
        https_server: TestServer, fetcher: Fetcher) -> None:
    well_known_by_host(https_server, {"alice.coves.test": ALICE, "evil.coves.test": MALLORY})
    verifier = HandleVerifier(fetcher, dns_resolver=None, https_port=https_server.port)
    check = await verifier.verify("Alice.Coves.Test", ALICE)
    assert check.ok and check.method == "https" and check.handle == "alice.coves.test"
    mismatch = await verifier.verify("evil.coves.test", ALICE)
    assert mismatch.status is HandleStatus.MISMATCH and MALLORY in mismatch.detail
    missing = await verifier.verify("nobody.coves.test", ALICE)
    assert missing.status is HandleStatus.NOT_FOUND


async def test_dns_txt_decides_before_https(nursery: trio.Nursery, https_server: TestServer,
                                            fetcher: Fetcher) -> None:
    dns = DnsServer()
    await nursery.start(dns.serve)
    dns.records["_atproto.alice.coves.test"] = [f"did={ALICE}"]
    dns.records["_atproto.taken.coves.test"] = [f"did={MALLORY}"]
    dns.records["_atproto.twice.coves.test"] = [f"did={ALICE}", f"did={MALLORY}"]
    dns.records["_atproto.other.coves.test"] = ["v=spf1 -all"]
    well_known_by_host(https_server, {"taken.coves.test": ALICE, "other.coves.test": ALICE})
    verifier = HandleVerifier(fetcher, dns_resolver=dns.resolver(), https_port=https_server.port)

    check = await verifier.verify("alice.coves.test", ALICE)
    assert check.ok and check.method == "dns"
    taken = await verifier.verify("taken.coves.test", ALICE)  # https would agree; DNS decides
    assert taken.status is HandleStatus.MISMATCH and taken.method == "dns"
    twice = await verifier.verify("twice.coves.test", ALICE)  # two did= records: not resolvable
    assert not twice.ok and "2 did= TXT records" in twice.detail
    other = await verifier.verify("other.coves.test", ALICE)  # no did= record: https decides
    assert other.ok and other.method == "https"
    assert "_atproto.alice.coves.test" in dns.queries


async def test_a_dns_server_that_does_not_answer_is_a_transient_error(
        https_server: TestServer, fetcher: Fetcher) -> None:
    silent = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    with silent:
        await silent.bind(("127.0.0.1", 0))  # receives queries, never answers
        dns = DnsServer()
        dns.port = silent.getsockname()[1]
        verifier = HandleVerifier(fetcher, dns_resolver=dns.resolver(lifetime_s=0.2),
                                  https_port=https_server.port)
        https_server.routes["/.well-known/atproto-did"] = Reply(status=503)
        check = await verifier.verify("alice.coves.test", ALICE)
    assert check.status is HandleStatus.ERROR and "dns" in check.detail and "503" in check.detail


async def test_reserved_top_level_domains_and_malformed_handles_are_never_fetched(
        https_server: TestServer, fetcher: Fetcher) -> None:
    verifier = HandleVerifier(fetcher, dns_resolver=None, https_port=https_server.port)
    for handle in ("printer.local", "box.internal", "x.localhost", "a.onion", "no_underscores.test",
                   "single"):
        check = await verifier.verify(handle, ALICE)
        assert check.status is HandleStatus.NOT_FOUND, handle
    assert https_server.connections == 0


async def test_pds_fallback_verifies_a_reference_pds_account_through_its_plc(
        pds_network: PdsNetwork, pds_client: PdsClient) -> None:
    account = await pds_client.create_account(unique_handle("ident"))
    # The harness's PLC and PDS listen on http://localhost: only the test allowance reaches them.
    async with open_fetcher(allow_private=True) as fetcher:
        resolver = DidResolver(fetcher, plc_url=pds_network.plc_url)
        document = await resolver.resolve(account.did)
        assert document.handle == account.handle
        assert document.pds_endpoint == pds_network.pds_urls[0].rstrip("/")
        assert document.signing_key is not None and document.signing_key.startswith("z")

        via_pds = HandleVerifier(fetcher, dns_resolver=None, via_pds=True)
        check = await via_pds.verify(account.handle, account.did, pds_endpoint=document.pds_endpoint)
        assert check.ok and check.method == "pds"
        other = await via_pds.verify(account.handle, ALICE, pds_endpoint=document.pds_endpoint)
        assert other.status is HandleStatus.MISMATCH

        # Without the fallback, a `.test` handle has no DNS and no https: not verified.
        plain = HandleVerifier(fetcher, dns_resolver=None)
        unverified = await plain.verify(account.handle, account.did,
                                        pds_endpoint=document.pds_endpoint)
        assert unverified.status is HandleStatus.NOT_FOUND and "cannot resolve" in unverified.detail
