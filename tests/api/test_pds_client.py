"""api/pds_client.py: errors translated, coves_pds_calls_total counted, and the "pds" breaker
opening after repeated failures, failing fast, and letting one trial through after the
cool-down (on a fake clock, over httpx's MockTransport)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from prometheus_client import REGISTRY

from api.pds_client import (BREAKER_COOLDOWN_S, PdsClient, PdsFailed, PdsRefused, PdsUnreachable)
from engine.breaker import BreakerState

from .conftest import FakeClock

PDS = "http://pds.test"


def counted(method: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("coves_pds_calls_total",
                                     {"method": method, "outcome": outcome}) or 0.0


def breaker_gauge() -> float | None:
    return REGISTRY.get_sample_value("coves_breaker_state", {"breaker": "pds"})


def client(handler: Callable[[httpx.Request], httpx.Response], clock: FakeClock) -> PdsClient:
    return PdsClient(httpx.AsyncClient(transport=httpx.MockTransport(handler)), clock=clock)


async def test_answers_are_translated_and_counted(clock: FakeClock) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("getRecord"):
            return httpx.Response(400, json={"error": "RecordNotFound", "message": "gone"})
        if request.url.path.endswith("describeServer"):
            return httpx.Response(200, json={"availableUserDomains": [".test"]})
        return httpx.Response(502, text="bad gateway")

    pds = client(answer, clock)
    before = {o: counted("com.atproto.repo.getRecord", o) for o in ("client_error",)}
    assert (await pds.describe_server(PDS))["availableUserDomains"] == [".test"]
    with pytest.raises(PdsRefused) as refused:
        await pds.get_record(PDS, "did:plc:x", "c", "r")
    assert (refused.value.status, refused.value.error) == (400, "RecordNotFound")
    assert counted("com.atproto.repo.getRecord", "client_error") == before["client_error"] + 1
    with pytest.raises(PdsFailed):
        await pds.create_session(PDS, "a", "b")
    assert pds.breaker.failures == 1  # 5xx counts against the breaker; 4xx does not


async def test_breaker_opens_fails_fast_and_recovers_after_the_cool_down(clock: FakeClock) -> None:
    up = False
    calls = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if not up:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json={"availableUserDomains": []})

    pds = client(answer, clock)
    method = "com.atproto.server.describeServer"
    fast_before = counted(method, "breaker_open")
    for _ in range(pds.breaker.failure_threshold):
        with pytest.raises(PdsUnreachable) as down:
            await pds.describe_server(PDS)
        assert not down.value.maybe_done  # never connected: surely not carried out
    assert pds.breaker.state is BreakerState.OPEN and breaker_gauge() == 2
    with pytest.raises(PdsUnreachable, match="breaker is open"):
        await pds.describe_server(PDS)
    assert calls == pds.breaker.failure_threshold  # the open breaker did not call
    assert counted(method, "breaker_open") == fast_before + 1
    clock.advance(BREAKER_COOLDOWN_S)  # the trial call fails: open again, for another cool-down
    with pytest.raises(PdsUnreachable):
        await pds.describe_server(PDS)
    assert pds.breaker.is_open and calls == pds.breaker.failure_threshold + 1
    up = True
    with pytest.raises(PdsUnreachable, match="breaker is open"):
        await pds.describe_server(PDS)
    clock.advance(BREAKER_COOLDOWN_S)
    await pds.describe_server(PDS)
    assert pds.breaker.state is BreakerState.CLOSED and breaker_gauge() == 0


async def test_a_timeout_may_have_been_carried_out(clock: FakeClock) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    with pytest.raises(PdsUnreachable) as lost:
        await client(slow, clock).create_record(PDS, "t", "did:plc:x", "c", {})
    assert lost.value.maybe_done
