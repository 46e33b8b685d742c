"""hostedBy verification against a local did:web host: the issue's rules, the safe fetcher's
limits, the cache (24 h valid / 5 min invalid) and the 10 fetches/s limit on trio's clock."""

from __future__ import annotations

import ssl
from typing import Any

import pytest
import trio
import trio.testing

from engine.identity.fetch import Fetcher, open_fetcher
from engine.identity.hosting import HostVerifier, registrable_domain
from engine.identity.ratelimit import TokenBucket

from .conftest import to_localhost
from .server import HANG, Reply, TestServer, json_reply

WELL_KNOWN = "/.well-known/did.json"


def host_doc(did: str, *aliases: str) -> dict[str, Any]:
    return {"@context": ["https://www.w3.org/ns/did/v1"], "id": did, "alsoKnownAs": list(aliases)}


def coves_host(server: TestServer, *, doc_id: str | None = None,
               aliases: tuple[str, ...] = ("at://coves.test",)) -> str:
    """Serve coves.test's did.json; return its did:web (with the server's port)."""
    did = f"did:web:coves.test%3A{server.port}"
    server.routes[WELL_KNOWN] = json_reply(host_doc(doc_id or did, *aliases))
    return did


def test_registrable_domains_come_from_the_bundled_public_suffix_list() -> None:
    assert registrable_domain("c-gaming.coves.social") == "coves.social"
    assert registrable_domain("Coves.Social.") == "coves.social"
    assert registrable_domain("a.b.example.co.uk") == "example.co.uk"
    assert registrable_domain("alice.github.io") == "alice.github.io"  # PSL private section
    assert registrable_domain("c-x.coves.test") == "coves.test"  # unknown TLD: default rule "*"
    for none in ("co.uk", "github.io", "localhost", "test", "127.0.0.1", "", "a..b"):
        assert registrable_domain(none) is None, none


async def test_a_matching_host_is_verified(https_server: TestServer, fetcher: Fetcher) -> None:
    did = coves_host(https_server)
    check = await HostVerifier(fetcher).verify(did, "c-gaming.coves.test")
    assert check.ok, check.detail
    assert https_server.paths() == [WELL_KNOWN]
    assert https_server.seen[0].host == f"coves.test:{https_server.port}"


@pytest.mark.parametrize(("hosted_by", "handle", "expected"), [
    ("did:web:coves.test", "c-gaming.other.test", "is not under coves.test"),
    ("did:web:coves.test", "coves.test.evil.test", "is not under"),
    ("did:web:coves.co.uk", "co.uk", "registrable domain None"),
    ("did:plc:" + "a" * 24, "c-gaming.coves.test", "must be a did:web"),
    ("did:web:coves.test:communities", "c-gaming.coves.test", "names a path"),
    ("did:web:coves.test", None, "handle is unknown"),
    (None, "c-gaming.coves.test", "no hostedBy"),
])
async def test_claims_that_break_the_rules_fail_without_fetching(
        hosted_by: str | None, handle: str | None, expected: str, https_server: TestServer,
        fetcher: Fetcher) -> None:
    check = await HostVerifier(fetcher).verify(hosted_by, handle)
    assert not check.ok and expected in check.detail
    assert https_server.connections == 0


async def test_a_document_for_another_did_fails(https_server: TestServer, fetcher: Fetcher) -> None:
    did = coves_host(https_server, doc_id="did:web:evil.test")
    check = await HostVerifier(fetcher).verify(did, "c-gaming.coves.test")
    assert not check.ok and "is not the DID" in check.detail


async def test_a_document_without_the_at_alias_fails(https_server: TestServer,
                                                     fetcher: Fetcher) -> None:
    did = coves_host(https_server, aliases=("at://other.test", "https://coves.test"))
    check = await HostVerifier(fetcher).verify(did, "c-gaming.coves.test")
    assert not check.ok and "does not list at://coves.test in alsoKnownAs" in check.detail
    did = coves_host(https_server, aliases=())
    assert not (await HostVerifier(fetcher).verify(did, "c-gaming.coves.test")).ok


async def test_an_oversized_document_fails(https_server: TestServer, fetcher: Fetcher) -> None:
    did = coves_host(https_server)
    https_server.routes[WELL_KNOWN] = Reply(body=b" " * (70 * 1024), content_length=False)
    check = await HostVerifier(fetcher).verify(did, "c-gaming.coves.test")
    assert not check.ok and "more than 65536 bytes" in check.detail


async def test_a_host_that_never_answers_fails_after_the_fetch_timeout(
        mock_clock: trio.testing.MockClock, https_server: TestServer,
        client_ssl: ssl.SSLContext) -> None:
    mock_clock.autojump_threshold = 0.05  # jump only once the silent wait has begun
    did = coves_host(https_server)
    https_server.routes[WELL_KNOWN] = HANG
    async with open_fetcher(allow_private=True, ssl_context=client_ssl, resolve=to_localhost) as fetcher:
        started = trio.current_time()
        check = await HostVerifier(fetcher).verify(did, "c-gaming.coves.test")
    assert not check.ok and "no complete answer within 5 s" in check.detail
    assert 5.0 <= trio.current_time() - started < 5.5


async def test_a_private_host_is_refused_without_the_test_allowance(
        https_server: TestServer, client_ssl: ssl.SSLContext) -> None:
    did = coves_host(https_server)
    async with open_fetcher(ssl_context=client_ssl, resolve=to_localhost) as fetcher:
        check = await HostVerifier(fetcher).verify(did, "c-gaming.coves.test")
    assert not check.ok and "127.0.0.1, not a public address" in check.detail
    assert https_server.connections == 0


async def test_skip_accepts_everything_unchecked(https_server: TestServer, fetcher: Fetcher) -> None:
    check = await HostVerifier(fetcher, skip=True).verify("did:plc:" + "a" * 24, None)
    assert check.ok and "SKIP_DID_WEB_VERIFICATION" in check.detail
    assert https_server.connections == 0


async def test_valid_results_are_cached_24_h_and_invalid_ones_5_min(
        mock_clock: trio.testing.MockClock, https_server: TestServer, fetcher: Fetcher) -> None:
    did = coves_host(https_server)
    verifier = HostVerifier(fetcher)
    assert (await verifier.verify(did, "c-one.coves.test")).ok
    assert (await verifier.verify(did, "c-two.coves.test")).ok  # same host: cached
    mock_clock.jump(24 * 3600 - 1)
    assert (await verifier.verify(did, "c-one.coves.test")).ok
    assert len(https_server.seen) == 1
    https_server.routes[WELL_KNOWN] = Reply(status=404)
    mock_clock.jump(2)
    assert not (await verifier.verify(did, "c-one.coves.test")).ok  # expired: fetched again
    coves_host(https_server)  # fixed on the host; the failure is still remembered
    assert not (await verifier.verify(did, "c-one.coves.test")).ok
    assert len(https_server.seen) == 2
    mock_clock.jump(5 * 60 + 1)
    assert (await verifier.verify(did, "c-one.coves.test")).ok
    assert len(https_server.seen) == 3


class _StubFetcher:
    """Answers every did.json instantly, noting trio's time of each fetch."""

    def __init__(self) -> None:
        self.times: list[float] = []

    async def get_json(self, url: str) -> Any:
        self.times.append(trio.current_time())
        host = url.split("/")[2]
        return host_doc(f"did:web:{host}", f"at://{host}")


async def test_at_most_10_document_fetches_per_second(autojump_clock: trio.testing.MockClock) -> None:
    stub = _StubFetcher()
    verifier = HostVerifier(stub)  # type: ignore[arg-type]
    results = []

    async def verify(n: int) -> None:
        results.append(await verifier.verify(f"did:web:h{n}.coves.test", f"c.h{n}.coves.test"))

    async with trio.open_nursery() as nursery:
        for n in range(35):
            nursery.start_soon(verify, n)
    assert len(results) == 35 and all(check.ok for check in results)
    times = sorted(stub.times)
    # No 1-second window holds more than 10 fetches: the 11th is ≥ 1 s after the 1st.
    assert all(later - earlier >= 1.0 - 1e-9 for earlier, later in zip(times, times[10:]))
    assert times[-1] - times[0] == pytest.approx(3.4)  # 35 fetches at 10/s, not slower


async def test_token_bucket_allows_a_burst_then_paces(autojump_clock: trio.testing.MockClock) -> None:
    bucket = TokenBucket(10, burst=3)
    times = []
    for _ in range(6):
        await bucket.acquire()
        times.append(trio.current_time())
    assert times[:3] == [0, 0, 0]
    assert times[3:] == pytest.approx([0.1, 0.2, 0.3])
    with pytest.raises(ValueError):
        TokenBucket(0)
