"""Anonymous answers shared for ANONYMOUS_CACHE_TTL_S (api/shared_answers.py): kept, expired,
computed once while in flight, never kept on error, never shared with a viewer, dropped by a
write through the API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
import trio
import trio.testing
from prometheus_client import REGISTRY

from api.app import create_app
from api.ratelimit import RateLimiter
from api.shared_answers import SharedAnswers
from engine.db import Database
from tests import factories as f

from .conftest import Client, FakeClock, Seed, WriteWorld, api_config
from .keys import KeyResolver
from .world import new_post, vote_frames

DISCOVER = "/xrpc/social.coves.feed.getDiscover"
COMMUNITY_FEED = "/xrpc/social.coves.feed.getCommunity"
SEARCH = "/xrpc/social.coves.community.search"
TTL_S = 2.0


def shared_count(result: str) -> float:
    return REGISTRY.get_sample_value("coves_api_shared_answers_total", {"result": result}) or 0.0


class Computations:
    """A compute function that counts its calls and can be held until released."""

    def __init__(self, answer: bytes = b"answer") -> None:
        self.answer = answer
        self.calls = 0
        self.release = trio.Event()
        self.hold = False
        self.failing: set[int] = set()  # the calls that fail, by number

    async def __call__(self) -> bytes:
        self.calls += 1
        number = self.calls
        if self.hold:
            await self.release.wait()
        if number in self.failing:
            raise RuntimeError("statement failed")
        return self.answer + str(number).encode()


# ---- the store ----

async def test_an_answer_is_kept_for_its_ttl_then_computed_again() -> None:
    clock = FakeClock()
    shared, compute = SharedAnswers(TTL_S, clock=clock), Computations()
    hits = shared_count("hit")
    assert await shared.answer(b"k", compute) == b"answer1"
    clock.advance(TTL_S - 0.01)
    assert await shared.answer(b"k", compute) == b"answer1"
    assert (compute.calls, shared_count("hit") - hits) == (1, 1)
    assert await shared.answer(b"other", compute) == b"answer2"  # another key, its own answer
    clock.advance(0.02)
    assert await shared.answer(b"k", compute) == b"answer3"


async def test_kept_answers_stay_within_their_byte_budget() -> None:
    shared = SharedAnswers(TTL_S, max_bytes=20, clock=FakeClock())
    big, small = Computations(b"x" * 30), Computations(b"y" * 8)
    assert await shared.answer(b"big", big) == b"x" * 30 + b"1"
    assert await shared.answer(b"big", big) == b"x" * 30 + b"2"  # larger than the budget: not kept
    for key in (b"a", b"b", b"c"):  # 9 bytes each: the oldest goes to make room
        await shared.answer(key, small)
    assert await shared.answer(b"c", small) == b"y" * 8 + b"3"
    assert await shared.answer(b"a", small) == b"y" * 8 + b"4"


async def test_a_ttl_of_zero_keeps_nothing() -> None:
    shared, compute = SharedAnswers(0), Computations()
    assert [await shared.answer(b"k", compute) for _ in range(3)] == [b"answer1", b"answer2",
                                                                     b"answer3"]


async def test_concurrent_misses_wait_for_the_one_in_flight() -> None:
    shared, compute = SharedAnswers(TTL_S, clock=FakeClock()), Computations()
    compute.hold = True
    joined = shared_count("joined")
    answers: list[bytes] = []

    async def ask() -> None:
        answers.append(await shared.answer(b"k", compute))

    async with trio.open_nursery() as nursery:
        for _ in range(10):
            nursery.start_soon(ask)
        await trio.testing.wait_all_tasks_blocked()
        assert compute.calls == 1
        compute.release.set()
    assert answers == [b"answer1"] * 10
    assert shared_count("joined") - joined == 9


async def test_a_failure_is_not_kept_and_those_waiting_compute_their_own() -> None:
    shared, compute = SharedAnswers(TTL_S, clock=FakeClock()), Computations()
    compute.hold, compute.failing = True, {1}
    outcomes: list[Any] = []

    async def ask() -> None:
        try:
            outcomes.append(await shared.answer(b"k", compute))
        except RuntimeError as exc:
            outcomes.append(str(exc))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(ask)
        nursery.start_soon(ask)
        await trio.testing.wait_all_tasks_blocked()
        compute.release.set()  # the first fails; the two waiting then run their own
    assert sorted(outcomes, key=str) == [b"answer2", b"answer3", "statement failed"]
    assert await shared.answer(b"k", compute) in (b"answer2", b"answer3")  # one of them is kept
    assert compute.calls == 3


async def test_a_cancelled_computation_leaves_the_key_free() -> None:
    shared, compute = SharedAnswers(TTL_S, clock=FakeClock()), Computations()
    compute.hold = True
    with trio.move_on_after(0.05):
        await shared.answer(b"k", compute)
    compute.hold = False
    assert await shared.answer(b"k", compute) == b"answer2"


# ---- through the API ----

@pytest.fixture
async def sharing_client(db: Database, resolver: KeyResolver,
                         clock: FakeClock) -> AsyncIterator[Client]:
    app = create_app(api_config(ANONYMOUS_CACHE_TTL_S=str(TTL_S)), db, resolver,
                     limiter=RateLimiter(clock=clock), shared=SharedAnswers(TTL_S, clock=clock))
    async with app.test_app() as test_app:
        yield test_app.test_client()


async def feed_scores(client: Client, path: str, headers: dict[str, str] | None = None,
                      **params: str) -> list[int]:
    response = await client.get(path, query_string={"sort": "new", **params}, headers=headers)
    assert response.status_code == 200, await response.get_data()
    body = await response.get_json()
    return [item["post"]["stats"]["score"] for item in body["feed"]]


async def test_anonymous_readers_share_a_page_for_the_ttl_viewers_never(
        sharing_client: Client, seed: Seed, resolver: KeyResolver, clock: FakeClock) -> None:
    community = f.did("shared")
    uri, post = new_post(community)
    await seed([f.profile(community, name="shared"), post])
    assert await feed_scores(sharing_client, DISCOVER) == [0]

    await seed(vote_frames(uri, 3))
    # Anonymous: the kept page, until its TTL is over.
    assert await feed_scores(sharing_client, DISCOVER) == [0]
    # Other parameters are another page; a viewer's page is always read afresh.
    assert await feed_scores(sharing_client, DISCOVER, sort="hot") == [3]
    viewer = resolver.bearer(f.did("reader"), "social.coves.feed.getDiscover")
    assert await feed_scores(sharing_client, DISCOVER, headers=viewer) == [3]
    clock.advance(TTL_S)
    assert await feed_scores(sharing_client, DISCOVER) == [3]


async def test_an_error_is_not_kept(sharing_client: Client, seed: Seed) -> None:
    community = f.did("latecomer")
    response = await sharing_client.get(COMMUNITY_FEED, query_string={"community": community})
    assert response.status_code == 404
    uri, post = new_post(community)
    await seed([f.profile(community, name="latecomer"), post])
    assert await feed_scores(sharing_client, COMMUNITY_FEED, community=community) == [0]


async def test_a_ttl_of_zero_reads_every_request_afresh(make_client: Any, seed: Seed) -> None:
    community = f.did("fresh")
    uri, post = new_post(community)
    await seed([f.profile(community, name="fresh"), post])
    async with make_client(ANONYMOUS_CACHE_TTL_S="0") as client:
        assert await feed_scores(client, DISCOVER) == [0]
        await seed(vote_frames(uri, 2))
        assert await feed_scores(client, DISCOVER) == [2]


async def test_clear_drops_kept_answers_and_one_read_across_it_is_not_kept() -> None:
    shared, compute = SharedAnswers(TTL_S, clock=FakeClock()), Computations()
    assert await shared.answer(b"k", compute) == b"answer1"
    shared.clear()
    compute.hold = True
    async with trio.open_nursery() as nursery:
        nursery.start_soon(shared.answer, b"k", compute)
        await trio.testing.wait_all_tasks_blocked()
        shared.clear()  # a write lands while answer 2 is being read
        compute.release.set()
    assert await shared.answer(b"k", compute) == b"answer3"
    assert await shared.answer(b"k", compute) == b"answer3"


async def test_a_write_through_the_api_is_seen_at_once_by_logged_out_readers(
        make_write_world: Callable[..., AbstractAsyncContextManager[WriteWorld]]) -> None:
    async with make_write_world(ANONYMOUS_CACHE_TTL_S="60") as world:
        status, out = await world.call("social.coves.community.create",
                                       {"name": "sharing", "description": "d"},
                                       caller=f.did("creator"))
        assert status == 200, out
        assert await feed_titles(world.client, out["did"]) == []
        status, post = await world.call("social.coves.community.post.create",
                                        {"community": out["did"], "title": "fresh"},
                                        caller=f.did("author"))
        assert status == 200, post
        assert await feed_titles(world.client, out["did"]) == ["fresh"]


async def feed_titles(client: Client, community: str) -> list[str]:
    response = await client.get(COMMUNITY_FEED, query_string={"community": community})
    assert response.status_code == 200, await response.get_data()
    return [item["post"]["title"] for item in (await response.get_json())["feed"]]



async def test_http_caches_may_keep_shared_anonymous_answers_only(
        make_client: Any, seed: Seed, resolver: KeyResolver) -> None:
    community = f.did("cached")
    _, post = new_post(community)
    await seed([f.profile(community, name="cached"), post])
    viewer = resolver.bearer(f.did("reader"), "social.coves.feed.getDiscover")
    async with make_client(ANONYMOUS_CACHE_TTL_S="5") as client:
        anonymous = await client.get(DISCOVER)
        for_viewer = await client.get(DISCOVER, headers=viewer)
        unshared = await client.get(SEARCH, query_string={"q": "hello"})
    assert [r.status_code for r in (anonymous, for_viewer, unshared)] == [200, 200, 200]
    assert anonymous.headers["Cache-Control"] == "public, max-age=5"
    assert anonymous.headers["Vary"] == "Authorization"
    assert for_viewer.headers["Cache-Control"] == unshared.headers["Cache-Control"] == "no-store"
    async with make_client(ANONYMOUS_CACHE_TTL_S="0") as client:
        assert (await client.get(DISCOVER)).headers["Cache-Control"] == "no-store"
