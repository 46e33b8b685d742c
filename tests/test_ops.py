"""Operator artefacts stay true: alert rules valid and unit-tested with promtool, the dashboard
current and built only from metrics the code registers."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OPS = ROOT / "ops"
# Metrics that arrive with later parts of the product; each must be registered by then.
PENDING = {"coves_pds_calls_total"}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool missing: install Debian's `prometheus` package (make test does)")
    return found


def test_alert_rules_are_valid() -> None:
    result = subprocess.run([promtool(), "check", "rules", str(OPS / "prometheus" / "alerts.yml")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 7 rules found" in result.stdout


def test_alert_unit_tests_pass() -> None:
    result = subprocess.run([promtool(), "test", "rules", "alerts_test.yml"], capture_output=True,
                            text=True, cwd=OPS / "prometheus")
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_is_current() -> None:
    sys.path.insert(0, str(OPS / "grafana"))
    try:
        import dashboard
    finally:
        sys.path.pop(0)
    assert (OPS / "grafana" / "dashboards" / "coves.json").read_text() == dashboard.render(), \
        "run python ops/grafana/dashboard.py"


def registered_metrics() -> set[str]:
    from prometheus_client import REGISTRY

    import engine.metrics  # noqa: F401 - registers the engine's metrics
    try:
        import api.metrics  # noqa: F401 - registers the API's metrics when the API exists
    except ImportError:
        pass
    names: set[str] = set()
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            names.add(sample.name)
        names.add(metric.name)
        names.update(f"{metric.name}{suffix}" for suffix in ("_total", "_bucket", "_sum", "_count"))
    return names


def test_dashboard_and_alerts_use_only_registered_metrics() -> None:
    text = (OPS / "grafana" / "dashboards" / "coves.json").read_text()
    text += (OPS / "prometheus" / "alerts.yml").read_text()
    used = set(re.findall(r"\bcoves_[a-z0-9_]+", text))
    missing = used - registered_metrics() - PENDING
    assert not missing, f"metrics used but not registered: {sorted(missing)}"
    json.loads((OPS / "grafana" / "dashboards" / "coves.json").read_text())


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.fail("hadolint missing: it comes with the test extras (pip install -e '.[test]')")
    result = subprocess.run([hadolint, "Dockerfile"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_matches_the_readme_and_health_route() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'CMD ["run"]' in dockerfile and 'ENTRYPOINT ["coves"]' in dockerfile
    assert "/xrpc/_health" in dockerfile and "USER 10001" in dockerfile
    assert dockerfile.count("FROM python:3.11.11-slim-bookworm") == 2  # pinned, multi-stage


def test_prometheus_config_is_valid() -> None:
    result = subprocess.run([promtool(), "check", "config", str(OPS / "prometheus" / "prometheus.yml")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _anchor(heading: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", heading.lower()).strip().replace(" ", "-")


def test_runbook_commands_exist_and_alert_links_resolve() -> None:
    from engine.cli import _parser

    runbook = (OPS / "RUNBOOK.md").read_text()
    commands = _parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    used = set(re.findall(r"\bcoves ([a-z][a-z-]+)", runbook))
    assert used and used <= set(commands), f"unknown commands: {sorted(used - set(commands))}"
    anchors = {_anchor(h) for h in re.findall(r"^#+ (.+)$", runbook, re.M)}
    links = set(re.findall(r"RUNBOOK\.md#([a-z0-9-]+)", (OPS / "prometheus" / "alerts.yml").read_text()))
    assert links and links <= anchors, f"alerts link to missing sections: {sorted(links - anchors)}"
