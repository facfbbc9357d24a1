"""The processes bench/live.py measures: their CPU and memory from ``/proc``, Asterisk's pid in
the sandbox, and the app (``callconsent serve``) started fresh for each run."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.e2e.lab_app import DEMO_CONFIG, LAB_ENV

REPO = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")


# --- processes ---------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads), in seconds."""
    return sum(cpu_split(pid))


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS


def loop_sched(pid: int) -> tuple[float, float]:
    """(running, waiting to run) seconds of a process's first thread (the app's event loop),
    from the kernel's scheduler statistics: a loop that waits on the run queue is starved of CPU,
    one that runs is busy."""
    running, waiting, _ = Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()
    return int(running) / 1e9, int(waiting) / 1e9


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def asterisk_pid() -> int:
    out = subprocess.run(
        [str(REPO / "scripts" / "asterisk-sandbox"), "status"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    m = re.search(r"state: up \(pid (\d+)\)", out)
    if not m:
        raise SystemExit(f"bench: the sandbox's Asterisk is not running:\n{out}")
    return int(m.group(1))


def callconsent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "callconsent.cli.main", *args],
        env={**os.environ, **LAB_ENV},
        capture_output=True,
        text=True,
        check=False,
    )


class App:
    """``callconsent serve`` on config/demo.yaml, its log in ``log_path``."""

    def __init__(
        self,
        log_path: Path,
        profile_dir: Path | None = None,
        app_src: Path | None = None,
        nice: int = 0,
        trace_dir: Path | None = None,
        strace_dir: Path | None = None,
    ) -> None:
        self.log_path = log_path
        self.strace_dir = strace_dir  # strace -f -c of the app, one file per run
        self.trace_dir = trace_dir  # run under tracemalloc (bench/traced_app.py), snapshots here
        self.nice = nice  # the app's scheduling niceness (systemd Nice=), Asterisk runs at 0
        self.app_src = app_src  # another version's src/ folder to run (before/after figures)
        self.proc: subprocess.Popen[bytes] | None = None
        self.offset = 0
        self.profile_dir = profile_dir  # py-spy's collapsed stacks, one file per run
        self.profiler: subprocess.Popen[bytes] | None = None
        self.tracer: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self.placed: Callable[[int], None] | None = None  # e.g. into its CPU group, once up

    def start(self) -> int:
        self.offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(self._command(), env=self._env(), stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"bench: {self.what} exited:\n{self.new_log()[-3000:]}")
            if self._ready(self.new_log()):
                if self.nice:  # every thread of the process (the ledger writer, workers)
                    for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
                        os.setpriority(os.PRIO_PROCESS, int(task.name), self.nice)
                if self.placed is not None:
                    self.placed(self.proc.pid)
                self._profile(self.proc.pid)
                return self.proc.pid
            time.sleep(0.1)
        raise SystemExit(f"bench: {self.what} did not connect within 20 s")

    what = "callconsent serve"

    def _command(self) -> list[str]:
        return [*self._python(), "serve", "--config", str(DEMO_CONFIG)]

    @staticmethod
    def _ready(log: str) -> bool:
        return '"ari_connected"' in log and '"agent_sync"' in log

    def _python(self) -> list[str]:
        if self.trace_dir is None:
            return [sys.executable, "-m", "callconsent.cli.main"]
        return [sys.executable, str(REPO / "bench" / "traced_app.py"), str(self.trace_dir)]

    def _env(self) -> dict[str, str]:
        env = {**os.environ, **LAB_ENV}
        if self.app_src is not None:
            env["PYTHONPATH"] = str(self.app_src)
        return env

    def new_log(self) -> str:
        with self.log_path.open("rb") as f:
            f.seek(self.offset)
            return f.read().decode("utf-8", "replace")

    def _profile(self, pid: int) -> None:
        self.runs += 1
        if self.strace_dir is not None:  # the app's system calls by kind, from here to stop()
            out = self.strace_dir / f"app-{self.runs}.txt"
            cmd = ["strace", "-f", "-c", "-o", str(out), "-p", str(pid)]
            self.tracer = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
        if self.profile_dir is None:
            return
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        out = self.profile_dir / f"app-{self.runs}.txt"
        self.profiler = subprocess.Popen(
            [
                py_spy,
                "record",
                "-p",
                str(pid),
                "-r",
                "200",
                "--gil",
                "--format",
                "raw",
                "-o",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.tracer is not None:
            self.tracer.send_signal(signal.SIGINT)
            self.tracer.wait(timeout=30)
            self.tracer = None
        if self.profiler is not None:
            self.profiler.send_signal(signal.SIGINT)
            self.profiler.wait(timeout=30)
            self.profiler = None
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


class FloorApp(App):
    """``bench/floor_app.py`` (flow ``floor``): the consent flow's ARI part alone, playing
    ``media`` (the notice and the question) as one playlist."""

    what = "bench/floor_app.py"

    def __init__(self, log_path: Path, media: list[str]) -> None:
        super().__init__(log_path)
        self.media = media

    def _command(self) -> list[str]:
        return [sys.executable, str(REPO / "bench" / "floor_app.py"), *self.media]

    @staticmethod
    def _ready(log: str) -> bool:
        return "floor: connected" in log
