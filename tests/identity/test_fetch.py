"""The safe fetcher: pinned addresses with the real name in Host/SNI, private targets refused,
redirects re-checked, time and size limits, errors of our own types."""

from __future__ import annotations

import ipaddress
import ssl

import pytest
import trio
import trio.testing

from engine.identity.errors import FetchFailed, FetchRefused, FetchTimeout, FetchTooLarge
from engine.identity.fetch import IPAddress, is_public_address, open_fetcher

from .conftest import to_localhost
from .server import HANG, Reply, TestServer, json_reply, redirect

LOOPBACK = ipaddress.ip_address("127.0.0.1")


def resolving_to(address: str):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address(address)]

    return resolve


def only_loopback_is_public(address: IPAddress) -> bool:
    """Address policy for redirect tests: our server's 127.0.0.1 plays a public host."""
    return address == LOOPBACK or is_public_address(address)


async def test_connects_to_the_checked_address_sending_the_real_name_in_host_and_sni(
        https_server: TestServer, client_ssl: ssl.SSLContext) -> None:
    https_server.routes["/doc"] = json_reply({"ok": True})
    lookups: list[str] = []

    async def resolve(host: str, port: int) -> list[IPAddress]:
        lookups.append(host)
        return [LOOPBACK]

    # coves.test exists in no DNS: the request only works if the fetcher connects to the
    # address it checked instead of letting the HTTP client look the name up again.
    async with open_fetcher(allow_private=True, ssl_context=client_ssl, resolve=resolve) as fetcher:
        got = await fetcher.get_json(f"https://coves.test:{https_server.port}/doc")
    assert got == {"ok": True}
    assert lookups == ["coves.test"]
    assert https_server.seen[0].host == f"coves.test:{https_server.port}"
    assert https_server.sni == ["coves.test"]


async def test_certificate_is_checked_against_the_real_name(
        https_server: TestServer, client_ssl: ssl.SSLContext) -> None:
    https_server.routes["/doc"] = json_reply({})
    async with open_fetcher(allow_private=True, ssl_context=client_ssl,
                            resolve=to_localhost) as fetcher:
        with pytest.raises(FetchFailed, match="CERTIFICATE_VERIFY_FAILED|certificate"):
            await fetcher.get_json(f"https://not-in-the-cert.example:{https_server.port}/doc")


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "224.0.0.1", "240.0.0.1", "::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "fe80::1",
    "fc00::1", "ff02::1", "2002:a00:1::1", "64:ff9b::a00:1", "::",
])
async def test_names_resolving_to_private_addresses_are_refused(
        address: str, https_server: TestServer, client_ssl: ssl.SSLContext) -> None:
    async with open_fetcher(ssl_context=client_ssl, resolve=resolving_to(address)) as fetcher:
        with pytest.raises(FetchRefused, match="not a public address"):
            await fetcher.get_json(f"https://coves.test:{https_server.port}/doc")
    assert https_server.connections == 0


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "[::ffff:127.0.0.1]", "10.0.0.1",
                                  "169.254.169.254"])
async def test_private_ip_literals_are_refused_without_connecting(
        host: str, https_server: TestServer, client_ssl: ssl.SSLContext) -> None:
    async with open_fetcher(ssl_context=client_ssl) as fetcher:
        with pytest.raises(FetchRefused):
            await fetcher.get_json(f"https://{host}:{https_server.port}/doc")
    assert https_server.connections == 0


async def test_a_name_with_one_private_address_among_public_ones_is_refused() -> None:
    async def resolve(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address("93.184.215.14"), ipaddress.ip_address("10.0.0.7")]

    async with open_fetcher(resolve=resolve) as fetcher:
        with pytest.raises(FetchRefused, match="10.0.0.7"):
            await fetcher.get_json("https://coves.test/doc")


def test_public_address_classification() -> None:
    for public in ("8.8.8.8", "93.184.215.14", "2606:4700:4700::1111", "2002:808:808::1"):
        assert is_public_address(ipaddress.ip_address(public)), public
    # IPv4-mapped addresses are refused even for a public IPv4 (no real host publishes one);
    # 6to4 and NAT64 addresses are refused when the IPv4 inside is private.
    for private in ("127.0.0.2", "::ffff:192.168.0.1", "::ffff:8.8.8.8", "2002:c0a8:0101::1",
                    "64:ff9b::7f00:1"):
        assert not is_public_address(ipaddress.ip_address(private)), private


async def test_plain_http_is_refused_without_the_test_allowance() -> None:
    async def resolve(host: str, port: int) -> list[IPAddress]:
        raise AssertionError("the scheme is refused before any lookup")

    async with open_fetcher(resolve=resolve) as fetcher:
        with pytest.raises(FetchRefused, match="only https"):
            await fetcher.get_text("http://coves.test/.well-known/atproto-did")


async def test_redirects_are_followed_and_each_hop_checked(
        https_server: TestServer, client_ssl: ssl.SSLContext) -> None:
    base = f"https://coves.test:{https_server.port}"
    https_server.routes["/a"] = redirect("/b", 301)
    https_server.routes["/b"] = redirect(f"https://other.test:{https_server.port}/c", 307)
    https_server.routes["/c"] = json_reply({"at": "c"})
    async with open_fetcher(ssl_context=client_ssl, resolve=to_localhost,
                            address_allowed=only_loopback_is_public) as fetcher:
        assert await fetcher.get_json(f"{base}/a") == {"at": "c"}
    assert https_server.paths() == ["/a", "/b", "/c"]
    assert https_server.sni == ["coves.test", "coves.test", "other.test"]


@pytest.mark.parametrize("target", [
    "https://10.1.2.3/x", "https://169.254.169.254/latest/meta-data/", "https://[::1]/x",
    "https://internal.corp.example/x",  # a name that resolves privately
    "http://coves.test/x",  # https → http
])
async def test_a_redirect_to_a_private_target_is_refused(
        target: str, https_server: TestServer, client_ssl: ssl.SSLContext) -> None:
    async def resolve(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address("10.9.9.9" if "internal" in host else "127.0.0.1")]

    https_server.routes["/a"] = redirect(target)
    async with open_fetcher(ssl_context=client_ssl, resolve=resolve,
                            address_allowed=only_loopback_is_public) as fetcher:
        with pytest.raises(FetchRefused):
            await fetcher.get_json(f"https://coves.test:{https_server.port}/a")
    assert https_server.paths() == ["/a"]


async def test_more_than_three_redirects_fail(https_server: TestServer, fetcher) -> None:  # type: ignore[no-untyped-def]
    https_server.routes["/loop"] = redirect("/loop")
    with pytest.raises(FetchFailed, match="more than 3 redirects"):
        await fetcher.get_json(f"https://coves.test:{https_server.port}/loop")
    assert len(https_server.seen) == 4


async def test_a_body_over_the_cap_is_refused_whether_announced_or_streamed(
        https_server: TestServer, client_ssl: ssl.SSLContext) -> None:
    cap = 64 * 1024
    https_server.routes["/announced"] = Reply(body=b"x" * (cap + 1))
    https_server.routes["/streamed"] = Reply(body=b"x" * (4 * cap), content_length=False)
    https_server.routes["/exact"] = Reply(body=b"x" * cap, content_length=False)
    async with open_fetcher(allow_private=True, ssl_context=client_ssl,
                            resolve=to_localhost) as fetcher:
        assert fetcher.max_bytes == cap
        base = f"https://coves.test:{https_server.port}"
        with pytest.raises(FetchTooLarge, match="65537 bytes"):
            await fetcher.get(f"{base}/announced")
        with pytest.raises(FetchTooLarge, match="more than 65536 bytes"):
            await fetcher.get(f"{base}/streamed")
        assert len((await fetcher.get(f"{base}/exact")).body) == cap


async def test_a_server_that_never_answers_times_out_after_5_s(
        mock_clock: trio.testing.MockClock, https_server: TestServer,
        client_ssl: ssl.SSLContext) -> None:
    # Virtual time jumps only once every task has waited 50 ms of real time: the connection
    # and request go through for real, then the silent wait for an answer costs no time.
    mock_clock.autojump_threshold = 0.05
    https_server.routes["/slow"] = HANG
    async with open_fetcher(allow_private=True, ssl_context=client_ssl,
                            resolve=to_localhost) as fetcher:
        started = trio.current_time()
        with pytest.raises(FetchTimeout):
            await fetcher.get_json(f"https://coves.test:{https_server.port}/slow")
        assert 5.0 <= trio.current_time() - started < 5.5
    assert https_server.paths() == ["/slow"]


async def test_http_errors_and_bad_bodies_are_fetch_failures(https_server: TestServer, fetcher) -> None:  # type: ignore[no-untyped-def]
    base = f"https://coves.test:{https_server.port}"
    https_server.routes["/500"] = Reply(status=500)
    https_server.routes["/html"] = Reply(body=b"<html>", headers=(("content-type", "text/html"),))
    https_server.routes["/gzip"] = Reply(body=b"\x1f\x8b", headers=(("content-encoding", "gzip"),))
    with pytest.raises(FetchFailed) as failed:
        await fetcher.get_json(f"{base}/missing")
    assert failed.value.status == 404
    with pytest.raises(FetchFailed) as failed:
        await fetcher.get_json(f"{base}/500")
    assert failed.value.status == 500
    with pytest.raises(FetchFailed, match="not JSON"):
        await fetcher.get_json(f"{base}/html")
    with pytest.raises(FetchFailed, match="compressed"):
        await fetcher.get_json(f"{base}/gzip")


async def test_a_closed_port_is_a_fetch_failure(fetcher) -> None:  # type: ignore[no-untyped-def]
    listener = trio.socket.socket()
    with listener:
        await listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]  # bound, not listening: connections are refused
        with pytest.raises(FetchFailed, match="cannot connect"):
            await fetcher.get_json(f"https://coves.test:{port}/doc")
