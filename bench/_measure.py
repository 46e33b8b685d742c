"""What every benchmark records beside its figures: CPU seconds per process (this one, a child,
Postgres), peak RSS, and the machine, date and commit for bench/RESULTS.md.

The machine is shared and noisy, so wall-clock rates alone mislead: CPU seconds per event say
what each side costs, and ratios measured in the same run compare like with like.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Final

__all__ = ["CpuClock", "CpuSample", "ROOT", "commit", "machine", "peak_rss_mib", "postmaster_pid",
           "process_cpu_s", "rss_mib"]

ROOT: Final = Path(__file__).resolve().parents[1]
CLK_TCK: Final = os.sysconf("SC_CLK_TCK")
PAGE_MIB: Final = os.sysconf("SC_PAGE_SIZE") / 2**20


def _stat(pid: int) -> list[str]:
    # Fields after the command name (which may hold spaces): state is [0], ppid [1], utime [11].
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_cpu_s(pid: int, *, with_dead_children: bool = False) -> float:
    """utime + stime of `pid` (plus its exited, waited-for children's with `with_dead_children`)."""
    fields = _stat(pid)
    ticks = int(fields[11]) + int(fields[12])
    if with_dead_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLK_TCK


def postmaster_pid(backend_pid: int) -> int:
    """The postmaster of a backend (its parent process)."""
    return int(_stat(backend_pid)[1])


def _postgres_cpu_s(postmaster: int) -> float:
    """CPU of the postmaster, its live children (backends, WAL writer, checkpointer, autovacuum)
    and the children that already exited (the postmaster's cutime + cstime)."""
    total = process_cpu_s(postmaster, with_dead_children=True)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat(int(entry.name))
        except (OSError, IndexError):
            continue  # exited meanwhile
        if int(fields[1]) == postmaster:
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


@dataclasses.dataclass(frozen=True)
class CpuSample:
    wall_s: float
    self_s: float
    postgres_s: float
    child_s: float


class CpuClock:
    """CPU seconds spent between `start()` and `stop()` by this process, Postgres and a child.

    Args:
        postmaster: the Postgres server's postmaster pid (None: Postgres is not measured, e.g. a
            remote DATABASE_URL).
        child: a child process to measure too (the emulator), or None.
    """

    def __init__(self, postmaster: int | None, child: int | None = None) -> None:
        self.postmaster = postmaster
        self.child = child
        self._start = self._read()

    def _read(self) -> CpuSample:
        postgres = _postgres_cpu_s(self.postmaster) if self.postmaster else float("nan")
        child = process_cpu_s(self.child) if self.child else 0.0
        return CpuSample(time.perf_counter(), time.process_time(), postgres, child)

    def start(self) -> None:
        self._start = self._read()

    def stop(self) -> CpuSample:
        end = self._read()
        return CpuSample(end.wall_s - self._start.wall_s, end.self_s - self._start.self_s,
                         end.postgres_s - self._start.postgres_s, end.child_s - self._start.child_s)


def rss_mib(pid: int | None = None) -> float:
    """Resident set size of `pid` (default: this process) in MiB."""
    pages = int(Path(f"/proc/{pid or 'self'}/statm").read_text().split()[1])
    return pages * PAGE_MIB


def peak_rss_mib() -> float:
    """This process's peak RSS so far (VmHWM) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = os.getloadavg()[0]
    return (f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, Python {platform.python_version()}, "
            f"load average {load:.1f} at the start")


def commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=ROOT, check=True).stdout.strip()
        # The report the run is about to rewrite does not make the code a changed one.
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":(exclude)bench/RESULTS.md", ":(exclude)bench/plots"],
                               capture_output=True, text=True, cwd=ROOT, check=True).stdout.strip()
        return head + ("+changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
