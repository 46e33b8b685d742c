"""The reliability suite's fixtures, and the table of what was tried and what survived.

Every test here is marked `@pytest.mark.scenario("<id>")` (ids in scenarios.py). The `scenario`
fixture lets it note measured numbers; a report hook records whether it passed; at the end of the
run the table is printed (the same rows as docs/RELIABILITY.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import fresh_database

from .scenarios import REFERENCED, SCENARIOS, Outcome

OUTCOMES: dict[str, Outcome] = {}


class Scenario:
    """Handle a test uses to note the numbers its scenario row shows."""

    def __init__(self, name: str) -> None:
        self.name = name

    def note(self, text: str) -> None:
        """Add a measured number (`"resumed in 1.2 s"`) to the row; also printed at once."""
        OUTCOMES.setdefault(self.name, Outcome()).numbers.append(text)
        print(f"[{self.name}] {text}")


def _scenario_of(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("scenario")
    return None if marker is None else str(marker.args[0])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        name = _scenario_of(item)
        if name is not None and name not in SCENARIOS:
            raise pytest.UsageError(f"{item.nodeid}: unknown scenario {name!r} (add it to "
                                    "tests/reliability/scenarios.py and docs/RELIABILITY.md)")


@pytest.fixture
def scenario(request: pytest.FixtureRequest) -> Scenario:
    name = _scenario_of(request.node)
    assert name is not None, "mark the test @pytest.mark.scenario(<id>)"
    return Scenario(name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    name = _scenario_of(item)
    if name is None:
        return
    row = OUTCOMES.setdefault(name, Outcome())
    if report.when == "call":
        if report.passed:
            row.passed += 1
        elif report.failed:
            row.failed += 1
        else:
            row.skipped += 1
    elif report.failed:  # set-up or teardown broke
        row.failed += 1
    elif report.skipped and report.when == "setup":
        row.skipped += 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not OUTCOMES:
        return
    write = terminalreporter.write_line
    terminalreporter.section("reliability: what was tried and what survived")
    for name, tried in SCENARIOS.items():
        row = OUTCOMES.get(name)
        if row is None:
            continue
        write(f"{name:<26} {row.result}")
        write(f"    tried:    {tried}")
        for number in row.numbers:
            write(f"    measured: {number}")
    idle = [name for name in SCENARIOS if name not in OUTCOMES]
    if idle:
        write(f"not run this time: {', '.join(idle)}")
    write("also proved elsewhere (not rerun here):")
    for name, where in REFERENCED.items():
        write(f"{name:<26} {where}")


@pytest.fixture
def oracle_url(pg_admin_url: str, template_url: str) -> Iterator[str]:
    """A second fresh, migrated database: where the clean run (the oracle) is written."""
    with fresh_database(pg_admin_url, "coves_oracle") as url:
        yield url
