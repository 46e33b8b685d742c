"""Rate limits: per client per minute, a tighter one for getComments, trusted proxies only."""

from __future__ import annotations

from werkzeug.datastructures import Headers

from api.ratelimit import RateLimiter, client_address
from engine.config import _cidrs

from .conftest import Client, FakeClock, MakeClient

DISCOVER = "/xrpc/social.coves.feed.getDiscover"
COMMENTS = "/xrpc/social.coves.community.comment.getComments?post=at://did:plc:x/social.coves.community.post/3mmwu7vak2322"


async def hit(client: Client, path: str = DISCOVER, *, peer: str = "203.0.113.7",
              **headers: str) -> tuple[int, Headers]:
    response = await client.get(path, headers=headers, scope_base={"client": (peer, 40000)})
    return response.status_code, response.headers


async def test_the_101st_request_in_a_minute_is_429_with_headers(make_client: MakeClient,
                                                                  clock: FakeClock) -> None:
    async with make_client(RATE_LIMIT_PER_MINUTE="100") as client:
        for n in range(100):
            status, headers = await hit(client)
            assert status == 200
        assert headers["RateLimit-Limit"] == "100" and headers["RateLimit-Remaining"] == "0"
        status, headers = await hit(client)
        assert status == 429
        assert headers["Retry-After"] == headers["RateLimit-Reset"] == "60"
        clock.advance(30)
        status, headers = await hit(client)
        assert (status, headers["Retry-After"]) == (429, "30")
        clock.advance(30)
        assert (await hit(client))[0] == 200
        assert (await hit(client, peer="198.51.100.1"))[0] == 200  # another client, own budget


async def test_get_comments_has_its_own_tighter_limit(make_client: MakeClient) -> None:
    async with make_client(RATE_LIMIT_COMMENTS_PER_MINUTE="3") as client:
        statuses = [(await hit(client, COMMENTS))[0] for _ in range(4)]
        assert statuses == [404, 404, 404, 429]
        status, headers = await hit(client)  # other methods still answer
        assert status == 200 and headers["RateLimit-Remaining"] == "95"


async def test_forwarded_for_from_an_untrusted_peer_does_not_change_the_key(
        make_client: MakeClient) -> None:
    async with make_client(RATE_LIMIT_PER_MINUTE="2") as client:
        for n in range(2):
            assert (await hit(client, **{"X-Forwarded-For": f"10.0.0.{n}"}))[0] == 200
        assert (await hit(client, **{"X-Forwarded-For": "10.0.0.99", "X-Real-IP": "10.9.9.9"}))[0] == 429


async def test_trusted_proxy_forwards_the_client_address(make_client: MakeClient) -> None:
    async with make_client(RATE_LIMIT_PER_MINUTE="2", TRUSTED_PROXIES="192.0.2.0/24") as client:
        proxy = "192.0.2.10"
        for _ in range(2):
            assert (await hit(client, peer=proxy, **{"X-Forwarded-For": "198.51.100.5"}))[0] == 200
        assert (await hit(client, peer=proxy, **{"X-Forwarded-For": "198.51.100.5"}))[0] == 429
        assert (await hit(client, peer=proxy, **{"X-Forwarded-For": "198.51.100.6"}))[0] == 200
        assert (await hit(client, peer=proxy, **{"X-Real-IP": "198.51.100.7"}))[0] == 200


def test_client_address_takes_the_rightmost_untrusted_hop() -> None:
    trusted = _cidrs("10.0.0.0/8, 192.0.2.1")
    assert client_address("10.1.1.1", [("X-Forwarded-For", "1.2.3.4, 5.6.7.8, 10.2.2.2")],
                          trusted) == "5.6.7.8"
    assert client_address("10.1.1.1", [("X-Forwarded-For", "1.2.3.4"),
                                       ("X-Forwarded-For", "10.3.3.3")], trusted) == "1.2.3.4"
    assert client_address("10.1.1.1", [("X-Forwarded-For", "spoofed, 10.2.2.2")], trusted) == "10.1.1.1"
    assert client_address("10.1.1.1", [], trusted) == "10.1.1.1"
    assert client_address("8.8.8.8", [("X-Forwarded-For", "1.2.3.4")], trusted) == "8.8.8.8"
    assert client_address("10.1.1.1", [("X-Real-IP", "2001:db8::1")], trusted) == "2001:db8::1"


def test_windows_restart_after_a_minute() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    assert [limiter.hit("b", "c", 2).allowed for _ in range(3)] == [True, True, False]
    clock.advance(60)
    assert limiter.hit("b", "c", 2).remaining == 1
