"""Structural rules: asyncio stays behind the bridge (engine/db.py and its pool, engine/pool.py)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BRIDGE = {ROOT / "engine" / "db.py", ROOT / "engine" / "pool.py"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_bridge_imports_asyncio() -> None:
    offenders = [str(path.relative_to(ROOT)) for folder in ("engine", "api")
                 for path in sorted((ROOT / folder).rglob("*.py"))
                 if path not in BRIDGE and imported_modules(path) & {"asyncio", "trio_asyncio"}]
    assert offenders == []


def test_engine_api_and_bench_pass_mypy_strict() -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
