"""The embedded Postgres runs with settings sized for the machine, set once in its data
directory; an operator's own ALTER SYSTEM survives restarts."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.embedded_pg import MIB, start_server, tuned_settings

GIB = 1024 * MIB


def test_shared_buffers_are_a_quarter_of_memory_within_bounds() -> None:
    assert tuned_settings(24 * GIB)["shared_buffers"] == "2048MB"  # capped
    assert tuned_settings(2 * GIB)["shared_buffers"] == "512MB"
    assert tuned_settings(256 * MIB)["shared_buffers"] == "128MB"  # never below the default
    assert tuned_settings(GIB)["max_wal_size"] == "4GB"


def _setting(server: object, name: str) -> str:
    out = server.psql(f"SELECT 'value=' || current_setting('{name}');")  # type: ignore[attr-defined]
    return next(line.strip()[6:] for line in out.splitlines() if line.strip().startswith("value="))


@pytest.fixture
def pgdata() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="coves-embedded-"))
    yield root / "pgdata"
    shutil.rmtree(root, ignore_errors=True)


def test_a_new_server_starts_tuned_and_keeps_an_operators_choice(pgdata: Path) -> None:
    server = start_server(pgdata)
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        megabytes = int(tuned_settings(memory)["shared_buffers"].removesuffix("MB"))
        shown = _setting(server, "shared_buffers")
        assert shown == (f"{megabytes // 1024}GB" if megabytes % 1024 == 0 else f"{megabytes}MB")
        assert shown != "128MB"  # Postgres's default (this machine has more than 512 MiB)
        assert _setting(server, "max_wal_size") == "4GB"
        assert _setting(server, "checkpoint_timeout") == "15min"
        server.psql("ALTER SYSTEM SET max_wal_size = '2GB';")  # the operator's choice
    finally:
        server.cleanup()
    server = start_server(pgdata)
    try:
        assert _setting(server, "max_wal_size") == "2GB"
        assert _setting(server, "shared_buffers") == shown
    finally:
        server.cleanup()
