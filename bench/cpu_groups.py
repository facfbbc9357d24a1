"""CPU control groups for the live benchmark (bench/live.py): Asterisk, the app and the callers
(sipp) each in a group of their own, the way systemd runs ``asterisk.service`` and
``callconsent.service`` once a unit sets ``CPUWeight=`` (deploy/systemd/callconsent.service).

Without groups the kernel shares the CPU thread by thread: at 300 concurrent calls Asterisk has
hundreds of runnable threads and the app's event loop gets one thread's share of a saturated
machine. With groups it shares between the services first (by weight), then within each.

Inside ``scripts/lab-isolated`` ``/sys`` is the namespace's own, so the cgroup v1 ``cpu``
hierarchy is mounted in the (private) mount namespace; on a cgroup v2 machine the unified tree is
used when its ``cpu`` controller is available.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from pathlib import Path

#: systemd's default CPUWeight; a cgroup v1 ``cpu.shares`` of 1024 is weight 100.
DEFAULT_WEIGHT = 100


def _mounted_v1() -> Path | None:
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[2] == "cgroup" and "cpu" in fields[3].split(","):
            return Path(fields[1])
    return None


def _unified_with_cpu() -> Path | None:
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[2] == "cgroup2":
            root = Path(fields[1])
            controllers = root / "cgroup.controllers"
            if controllers.exists() and "cpu" in controllers.read_text().split():
                return root
    return None


class CpuGroups:
    """One folder per role under ``<hierarchy>/callconsent-bench-<pid>``; :meth:`close` moves
    every process back to the hierarchy's root and removes the folders."""

    def __init__(self, root: Path, v2: bool, weights: dict[str, int]) -> None:
        self.root = root
        self.v2 = v2
        self.weights = dict(weights)
        self.base = root / f"callconsent-bench-{os.getpid()}"
        self._mounted: Path | None = None
        if v2:
            (root / "cgroup.subtree_control").write_text("+cpu")
        self.base.mkdir()
        if v2:
            (self.base / "cgroup.subtree_control").write_text("+cpu")
        for role, weight in self.weights.items():
            folder = self.base / role
            folder.mkdir()
            if v2:
                (folder / "cpu.weight").write_text(str(weight))
            else:
                (folder / "cpu.shares").write_text(str(weight * 1024 // DEFAULT_WEIGHT))

    @classmethod
    def open(cls, weights: dict[str, int]) -> CpuGroups:
        """Groups on this machine's cpu controller, mounting the v1 hierarchy if needed."""
        unified = _unified_with_cpu()
        if unified is not None:
            return cls(unified, True, weights)
        mounted = _mounted_v1()
        if mounted is not None:
            return cls(mounted, False, weights)
        where = Path(tempfile.mkdtemp(prefix="callconsent-bench-cpu-"))
        done = subprocess.run(
            ["mount", "-t", "cgroup", "-o", "cpu", "cgroup", str(where)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            where.rmdir()
            raise SystemExit(
                f"bench: no cpu cgroup controller ({done.stderr.strip()}); run with --no-cgroups"
            )
        groups = cls(where, False, weights)
        groups._mounted = where
        return groups

    def place(self, role: str, pid: int) -> None:
        """Move process ``pid`` (every thread of it) into ``role``'s group."""
        (self.base / role / "cgroup.procs").write_text(str(pid))

    def describe(self) -> dict[str, object]:
        return {"cgroup": "v2" if self.v2 else "v1", "weights": self.weights}

    def close(self) -> None:
        for role in self.weights:
            procs = self.base / role / "cgroup.procs"
            with contextlib.suppress(OSError):
                for pid in procs.read_text().split():
                    with contextlib.suppress(OSError):  # gone meanwhile
                        (self.root / "cgroup.procs").write_text(pid)
            with contextlib.suppress(OSError):
                (self.base / role).rmdir()
        with contextlib.suppress(OSError):
            self.base.rmdir()
        if self._mounted is not None:
            subprocess.run(["umount", str(self._mounted)], capture_output=True, check=False)
            with contextlib.suppress(OSError):
                self._mounted.rmdir()
