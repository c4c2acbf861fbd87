"""Lambda's CPU share for a local run: a child cgroup whose CPU quota is memory / 1769 of one CPU.

cgroup v2 (`cpu.max`) where the unified hierarchy has the cpu controller, else cgroup v1 (`cpu`,
`cpu.cfs_quota_us`). Needs root. The quota starts unlimited (INIT runs on a full CPU burst) and is set
by `throttle()` when the runtime first asks for an event. `close()` kills what is left in the group and
removes it, whatever happened to the function.

On Lambda the share is the function's own; on a shared machine other processes would take part of
it. The group therefore gets ten times a normal process's CPU weight, so the quota, not the machine's
other work, is what holds the function back (the quota still caps it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from pathlib import Path

from leanlambda.limits import cpu_share

CGROUP_ROOT = Path("/sys/fs/cgroup")
V1_CPU_DIRS = ("cpu", "cpu,cpuacct", "cpuacct,cpu")
V2_MAX_FILE = "cpu.max"
V1_QUOTA_FILE = "cpu.cfs_quota_us"
V1_PERIOD_FILE = "cpu.cfs_period_us"
# The quota's accounting period. 20 ms rather than the kernel's default 100: a small share then comes as
# short slices spread evenly, as a fraction of a vCPU does, not as ~100 ms of full speed followed by a
# long stop (measured with benchmarks/cpu_share.py: a CPU-bound loop ran 13.3x slower at 128 than at
# 1769 MB with 20 ms, Lambda's 13.8x; 10.9x with 100 ms, where short work fits in the first period).
PERIOD_US = 20_000
V1_WEIGHT_FILE, V1_WEIGHT = "cpu.shares", 10 * 1024  # a normal process: 1024
V2_WEIGHT_FILE, V2_WEIGHT = "cpu.weight", 10 * 100  # a normal process: 100
MIN_QUOTA_US = 1000  # the kernel refuses a smaller CFS quota
UNLIMITED = "max"
REMOVE_ATTEMPTS = 50
REMOVE_WAIT_S = 0.02
NAME_PREFIX = "leanlambda-"


class CpuQuota:
    """One run's cgroup. Build it with `CpuQuota.create()`; None and a reason where none is possible."""

    def __init__(self, path: Path, version: int) -> None:
        self.path = path
        self.version = version

    @classmethod
    def create(cls, root: Path = CGROUP_ROOT) -> tuple[CpuQuota | None, str]:
        """A fresh child cgroup with an unlimited quota, or (None, why not)."""
        if os.geteuid() != 0:
            return None, "needs root to create a cgroup"
        found = _v2_parent(root) or _v1_parent(root)
        if found is None:
            return None, f"no cgroup cpu controller under {root}"
        parent, version = found
        _remove_orphans(parent)
        path = parent / f"{NAME_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            path.mkdir()
        except OSError as error:
            return None, f"cannot create a cgroup in {parent}: {error.strerror}"
        quota = cls(path, version)
        try:
            quota._write_quota(None)
            weight_file, weight = (V2_WEIGHT_FILE, V2_WEIGHT) if version == 2 else (V1_WEIGHT_FILE, V1_WEIGHT)
            (path / weight_file).write_text(str(weight), encoding="ascii")
        except OSError as error:
            quota.close()
            return None, f"cannot set a CPU quota in {parent}: {error.strerror}"
        return quota, f"cgroup v{version}"

    def add(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid), encoding="ascii")

    def members(self) -> list[int]:
        try:
            text = (self.path / "cgroup.procs").read_text(encoding="ascii")
        except OSError:
            return []
        return [int(line) for line in text.split()]

    def throttle(self, memory_mb: int) -> None:
        """Hold the group to Lambda's share of one CPU for this memory size.

        Up to one full CPU, the group's processes are also kept on one CPU, as Lambda gives one vCPU: the
        kernel hands out a quota in 5 ms slices per CPU, and a small quota split over two CPUs would leave
        part of it unusable (a 7.2 ms quota would become about 5 ms, at 128 MB).
        """
        if cpu_share(memory_mb) < 1.0 and hasattr(os, "sched_setaffinity"):
            for pid in self.members():
                _pin(pid)
        self._write_quota(max(MIN_QUOTA_US, round(self.period_us() * cpu_share(memory_mb))))

    def quota(self) -> tuple[int | None, int]:
        """(quota in µs or None when unlimited, period in µs), read back from the cgroup files."""
        if self.version == 2:
            quota, period = (self.path / V2_MAX_FILE).read_text(encoding="ascii").split()
            return (None if quota == UNLIMITED else int(quota)), int(period)
        quota_us = int((self.path / V1_QUOTA_FILE).read_text(encoding="ascii"))
        return (None if quota_us < 0 else quota_us), self.period_us()

    def period_us(self) -> int:
        if self.version == 1:
            return int((self.path / V1_PERIOD_FILE).read_text(encoding="ascii"))
        return int((self.path / V2_MAX_FILE).read_text(encoding="ascii").split()[1])

    def close(self) -> None:
        """Kill whatever still runs in the group, then remove it."""
        for _ in range(REMOVE_ATTEMPTS):
            for pid in self.members():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:  # members still exiting
                time.sleep(REMOVE_WAIT_S)

    def _write_quota(self, quota_us: int | None) -> None:
        if self.version == 2:
            value = UNLIMITED if quota_us is None else str(quota_us)
            (self.path / V2_MAX_FILE).write_text(f"{value} {PERIOD_US}", encoding="ascii")
            return
        if quota_us is None:
            (self.path / V1_PERIOD_FILE).write_text(str(PERIOD_US), encoding="ascii")
        (self.path / V1_QUOTA_FILE).write_text(str(-1 if quota_us is None else quota_us), encoding="ascii")


def _pin(pid: int) -> None:
    """Every thread of `pid` onto the one CPU its main thread last ran on."""
    try:
        cpu = int(Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()[36])
        threads = [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except (OSError, ValueError, IndexError):
        return
    for tid in threads:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(tid, {cpu})


def _remove_orphans(parent: Path) -> None:
    """Empty groups left by a toolkit process that was killed before it could remove its own."""
    for group in parent.glob(f"{NAME_PREFIX}*"):
        owner = group.name[len(NAME_PREFIX) :].split("-")[0]
        if not owner.isdigit() or Path(f"/proc/{owner}").exists():
            continue
        with contextlib.suppress(OSError):  # not empty, or removed by another run meanwhile
            group.rmdir()


def _own_cgroup(controller: str | None) -> str:
    """This process's cgroup path for a v1 controller, or the v2 one (controller None)."""
    try:
        lines = Path("/proc/self/cgroup").read_text(encoding="ascii").splitlines()
    except OSError:
        return "/"
    for line in lines:
        _, controllers, path = line.split(":", 2)
        names = controllers.split(",") if controllers else []
        if (controller is None and not names) or (controller is not None and controller in names):
            return path
    return "/"


def _v2_parent(root: Path) -> tuple[Path, int] | None:
    """The unified hierarchy's root when it offers the cpu controller (the root takes no quota itself)."""
    for mount in (root, root / "unified"):
        try:
            controllers = (mount / "cgroup.controllers").read_text(encoding="ascii").split()
        except OSError:
            continue
        if "cpu" not in controllers:
            continue
        subtree = mount / "cgroup.subtree_control"
        try:
            if "cpu" not in subtree.read_text(encoding="ascii").split():
                subtree.write_text("+cpu", encoding="ascii")
        except OSError:
            continue
        return mount, 2
    return None


def _v1_parent(root: Path) -> tuple[Path, int] | None:
    for name in V1_CPU_DIRS:
        mount = root / name
        if (mount / V1_QUOTA_FILE).is_file():
            parent = mount / _own_cgroup("cpu").lstrip("/")
            return (parent if parent.is_dir() else mount), 1
    return None
