"""The saturation sweep of bench/api_load.py finds a server's capacity to within one refinement,
whether it lies above or below the first rate, without wasting steps far below it, and one
step's hiccup does not decide it. The steps run
against a stand-in for `load` (a server that answers up to `capacity` requests a second): this is
the search's arithmetic, which the quick suite cannot check at its tiny sizes."""

from __future__ import annotations

from typing import Any

import pytest

from bench import api_load
from bench.api_load import FIRST_RATE, RATE_FACTOR, Step, saturate


def sweep(monkeypatch: pytest.MonkeyPatch, capacity: float, hiccups: int = 0,
          stall_from: float = 700.0) -> list[Step]:
    """Run the sweep against a server answering up to `capacity` a second, whose first
    `hiccups` steps at or above `stall_from` a second miss as if the machine stalled."""
    stalls = [hiccups]

    def load(server: object, requests: object, postmaster: object, **job: Any) -> Step:
        rate, seconds = job["rate"], job["seconds"]
        answered = int(min(rate, capacity) * seconds)
        latency = 0.002 if rate <= capacity else 0.5  # past capacity the queue grows
        if rate >= stall_from and stalls[0]:
            stalls[0] -= 1
            latency = 0.3
        return Step(rate, seconds, {"latencies": {"feeds": [latency] * answered}, "errors": {}},
                    0.0, 0.0, 0.0)

    monkeypatch.setattr(api_load, "load", load)
    return saturate(None, [], None, 10.0, lambda line: None, "feeds")  # type: ignore[arg-type]


@pytest.mark.parametrize("capacity", [3.0, 40.0, 785.0, 1544.0, 5000.0])
def test_the_sweep_finds_the_capacity_from_above_or_below_the_first_rate(
        monkeypatch: pytest.MonkeyPatch, capacity: float) -> None:
    steps = sweep(monkeypatch, capacity)
    found = max(step.rate for step in steps if step.ok)
    assert capacity / RATE_FACTOR ** 0.5 <= found <= capacity  # two refinements: within ~11 %
    # No step below the first rate, except those that came down to the capacity:
    assert all(step.rate >= min(FIRST_RATE, found / RATE_FACTOR) for step in steps)


def test_one_step_that_misses_by_a_hiccup_does_not_decide_the_saturation(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # As in a suite run: 759/s, just under the capacity (785/s), missed once; the sweep had
    # settled for 686/s. Now the miss is repeated, passes, and the step just under stands.
    just_under = FIRST_RATE * RATE_FACTOR ** 3
    steps = sweep(monkeypatch, just_under * 1.035, hiccups=1, stall_from=just_under)
    assert [step.ok for step in steps if step.rate == just_under] == [False, True]
    assert max(step.rate for step in steps if step.ok) >= just_under
