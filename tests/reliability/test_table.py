"""docs/RELIABILITY.md stays true: its table has one row per scenario the suite runs and per
scenario proved elsewhere, and the suite runs every scenario the table lists."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .scenarios import REFERENCED, SCENARIOS

HERE = Path(__file__).resolve().parent
DOC = HERE.parents[1] / "docs" / "RELIABILITY.md"
ROW = re.compile(r"^\| `([a-z0-9-]+)` \|", re.MULTILINE)


def _marks(value: Any) -> Iterator[Any]:
    """The marks on a test function, including those of its parametrize cases."""
    for mark in getattr(value, "pytestmark", []):
        yield mark
        if mark.name == "parametrize":
            for case in mark.args[1]:
                yield from getattr(case, "marks", ())


def scenarios_run() -> set[str]:
    """Every scenario id a test of this folder is marked with (read from the imported modules,
    so parametrized cases count too)."""
    names = set()
    for path in sorted(HERE.glob("test_*.py")):
        module = importlib.import_module(f"{__package__}.{path.stem}")
        for value in vars(module).values():
            names.update(str(mark.args[0]) for mark in _marks(value) if mark.name == "scenario")
    return names


def test_the_suite_runs_exactly_the_scenarios_it_declares() -> None:
    assert scenarios_run() == set(SCENARIOS)


def test_docs_reliability_lists_every_scenario_once() -> None:
    rows = ROW.findall(DOC.read_text())
    assert sorted(rows) == sorted({*SCENARIOS, *REFERENCED}), (
        "docs/RELIABILITY.md's table must have one row per id of tests/reliability/scenarios.py")
