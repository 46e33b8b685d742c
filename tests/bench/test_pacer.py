"""Tests for bench/_pacer.py, in virtual time."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from bench._pacer import PACE_QUANTUM_S, Pacer


async def let_go(pacer: Pacer, n: int) -> list[float]:
    """Wait for `n` frames; return the virtual time at which each was let go."""
    times = []
    for _ in range(n):
        await pacer.wait()
        times.append(trio.current_time())
    return times


@pytest.mark.parametrize("rate", [500, 5000, 20_000])
async def test_pacer_keeps_the_rate_sleeping_once_per_burst(
        autojump_clock: trio.testing.MockClock, rate: int) -> None:
    start = trio.current_time()
    times = await let_go(Pacer(rate), 2 * rate)
    assert times[-1] - start == pytest.approx(2.0, rel=0.01)
    sleeps = len(set(times)) - 1
    assert sleeps <= 2 / PACE_QUANTUM_S + 1  # one wake-up per quantum, not one per frame


async def test_pacer_earns_no_burst_from_idle_time_after_reset(
        autojump_clock: trio.testing.MockClock) -> None:
    pacer = Pacer(100)
    await let_go(pacer, 10)
    await trio.sleep(60)
    pacer.reset()
    start = trio.current_time()
    times = await let_go(pacer, 101)
    assert times[-1] - start == pytest.approx(1.0, rel=0.01)


async def test_pacer_catches_up_after_a_slow_send(autojump_clock: trio.testing.MockClock) -> None:
    pacer = Pacer(100)
    start = trio.current_time()
    await pacer.wait()
    await trio.sleep(0.5)  # a client that stalled the sender for 50 frames' worth
    times = await let_go(pacer, 100)
    assert times[49] == start + 0.5  # the 50 frames already due go at once
    assert times[-1] - start == pytest.approx(1.0, rel=0.01)


async def test_without_rate_the_pacer_never_sleeps(autojump_clock: trio.testing.MockClock) -> None:
    start = trio.current_time()
    assert set(await let_go(Pacer(None), 10_000)) == {start}


def test_pacer_refuses_a_rate_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Pacer(0)


async def test_grant_lets_a_burst_go_at_the_rate_of_single_frames(
        autojump_clock: trio.testing.MockClock) -> None:
    pacer = Pacer(1000)
    start = trio.current_time()
    sent = 0
    while sent < 2000:
        sent += await pacer.grant(min(256, 2000 - sent))
    assert sent == 2000
    assert trio.current_time() - start == pytest.approx(2.0, rel=0.01)


async def test_grant_without_rate_gives_everything_asked(
        autojump_clock: trio.testing.MockClock) -> None:
    assert await Pacer(None).grant(300) == 300
