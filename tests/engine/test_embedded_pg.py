"""The embedded Postgres runs with settings sized for the machine, set once in its data
directory; an operator's own ALTER SYSTEM survives restarts."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import embedded_pg
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


# A start that outlasts pgserver's 10 s: an archive recovery whose restore_command waits for a
# file the test creates — as a server replaying gigabytes of WAL after a crash, it stays
# "starting" until its recovery ends.

def _pg_ctl(pgdata: Path, *args: str) -> None:
    from pgserver import _commands  # type: ignore[import-untyped]

    user = "pgserver" if os.geteuid() == 0 else None
    _commands.pg_ctl(list(args), pgdata=pgdata, user=user, timeout=60)


def _set_to_recover(pgdata: Path, *settings: str) -> Path:
    """Initialise `pgdata`, stop it, and leave it set to start with an archive recovery that
    lasts until the returned file exists."""
    release = pgdata / "release-recovery"
    server = start_server(pgdata)
    try:
        server.psql(f"ALTER SYSTEM SET restore_command = "
                    f"'while [ ! -e {release} ]; do sleep 0.05; done; false';\n"
                    + "".join(f"ALTER SYSTEM SET {setting};\n" for setting in settings))
    finally:
        server.cleanup()
    (pgdata / "recovery.signal").touch()
    return release


class _Flag(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.set()


def _start_in_thread(pgdata: Path) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def start() -> None:
        try:
            outcome.append(start_server(pgdata))
        except Exception as exc:
            outcome.append(exc)

    worker = threading.Thread(target=start)
    worker.start()
    return worker, outcome


def _started_and_given_up_on(pgdata: Path, flag: _Flag) -> None:
    assert flag.seen.wait(60), "pgserver's pg_ctl should have given up after 10 s"
    assert embedded_pg._postmaster_status(pgdata.resolve()) == "starting"


def test_a_start_longer_than_pgservers_wait_is_waited_for(pgdata: Path) -> None:
    release = _set_to_recover(pgdata)
    flag = _Flag()
    embedded_pg.LOGGER.addHandler(flag)
    try:
        worker, outcome = _start_in_thread(pgdata)
        _started_and_given_up_on(pgdata, flag)
        assert worker.is_alive()  # still waiting for it, not failed
        release.touch()  # recovery ends
        worker.join(60)
        assert outcome and not isinstance(outcome[0], Exception), outcome
        assert _setting(outcome[0], "max_wal_size") == "4GB"  # it answers queries
        outcome[0].cleanup()  # type: ignore[attr-defined]
    finally:
        embedded_pg.LOGGER.removeHandler(flag)
        release.touch()


def test_a_server_that_exits_while_starting_fails_at_once_naming_its_log(pgdata: Path) -> None:
    # A recovery target beyond the end of the WAL: Postgres stops with a FATAL when it gets there.
    release = _set_to_recover(pgdata, "recovery_target_lsn = 'FFFF/0'")
    flag = _Flag()
    embedded_pg.LOGGER.addHandler(flag)
    try:
        worker, outcome = _start_in_thread(pgdata)
        _started_and_given_up_on(pgdata, flag)
        release.touch()
        worker.join(60)
        assert outcome and isinstance(outcome[0], RuntimeError), outcome
        assert str(outcome[0]) == f"embedded postgres exited while starting; see {pgdata / 'log'}"
        assert "recovery ended before configured recovery target" in (pgdata / "log").read_text()
    finally:
        embedded_pg.LOGGER.removeHandler(flag)
        release.touch()


def test_a_server_not_ready_in_time_fails_naming_its_log(
        pgdata: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = _set_to_recover(pgdata)
    _pg_ctl(pgdata, "-W", "-l", str(pgdata / "log"), "start")  # -W: returns while it recovers
    try:
        deadline = time.monotonic() + 60
        while embedded_pg._postmaster_status(pgdata) is None:  # until its postmaster.pid is there
            assert time.monotonic() < deadline, "the postmaster never wrote postmaster.pid"
            time.sleep(0.01)
        monkeypatch.setattr(embedded_pg, "START_TIMEOUT_S", 1.0)
        not_ready = r"not ready after 1 s \(status 'starting'\); see .*log"
        with pytest.raises(RuntimeError, match=not_ready):
            start_server(pgdata)
    finally:
        release.touch()
        _pg_ctl(pgdata, "-w", "stop")
