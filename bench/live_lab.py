"""The lab side of bench/live.py: processes, sipp callers, outcomes and the app's timings."""

from __future__ import annotations

import array
import csv
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.e2e.lab_app import DEMO_CONFIG, LAB_ENV
from tests.harness.asterisk import AsteriskLab
from tests.harness.rtp_pcap import Digit, Pause, write_pcap
from tests.harness.sipp import scenario_xml

REPO = Path(__file__).resolve().parents[1]
ROUTE = "support"
CALLER_NUMBER = "+4533000000"
TICKS = os.sysconf("SC_CLK_TCK")
#: An audible recording: mean absolute sample value above this (16-bit PCM; silence is ~0).
AUDIBLE_MEAN_ABS = 200
SETTLE_TIMEOUT = 60.0  # after sipp ends: every call's LABEND and final evidence


@dataclass
class Run:
    flow: str  # peer | app
    rate: int
    concurrent: int
    calls: int
    placed: int = 0
    completed: int = 0
    failed: int = 0
    reached: int = 0  # LABDEST lines
    right: int = 0
    wrong: list[str] = field(default_factory=list)
    seconds: float = 0.0  # sipp's wall time
    asterisk_cpu_ms_per_call: float = 0.0
    app_cpu_ms_per_call: float | None = None
    app_sys_ms_per_call: float | None = None  # the kernel's part of it (fsync, sockets)
    app_peak_rss_mib: float | None = None
    recording_mean_s: float | None = None
    recording_min_s: float | None = None
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    app_problems: dict[str, int] = field(default_factory=dict)  # warning/error log events
    loadavg_start: str = ""
    loadavg_end: str = ""

    @property
    def clean(self) -> bool:
        return self.placed == self.calls and self.failed == 0 and not self.wrong


# --- processes ---------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads), in seconds."""
    return sum(cpu_split(pid))


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS


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
            self.proc = subprocess.Popen(
                [*self._python(), "serve", "--config", str(DEMO_CONFIG)],
                env=self._env(),
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"bench: callconsent serve exited:\n{self.new_log()[-3000:]}")
            text = self.new_log()
            if '"ari_connected"' in text and '"agent_sync"' in text:
                if self.nice:  # every thread of the process (the ledger writer, workers)
                    for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
                        os.setpriority(os.PRIO_PROCESS, int(task.name), self.nice)
                if self.placed is not None:
                    self.placed(self.proc.pid)
                self._profile(self.proc.pid)
                return self.proc.pid
            time.sleep(0.1)
        raise SystemExit("bench: callconsent serve did not connect to ARI and AMI within 20 s")

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


# --- callers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    scenario: Path
    talk: float  # seconds of speech after the 1
    hangup_after: float


def make_caller(work: Path, question_end: float, talk: float) -> Caller:
    timeline = [Pause(question_end + 1.0), Digit("1"), Pause(talk)]
    info = write_pcap(work / "caller.pcap", timeline, audio="speech")
    scenario = work / "caller.xml"
    scenario.write_text(scenario_xml(work / "caller.pcap", 30.0, info.duration), encoding="utf-8")
    return Caller(scenario, talk, info.duration)


def sipp_command(
    caller: Caller, to: str, rate: int, concurrent: int, calls: int, work: Path, tag: str
) -> tuple[list[str], float]:
    """The sipp command placing ``calls`` calls (Call-IDs ``<tag>-<n>-...``), and a time bound."""
    bound = calls / rate + caller.hangup_after + 60
    cmd = [
        "sipp",
        "127.0.0.1:5060",
        "-sf",
        str(caller.scenario),
        "-s",
        to,
        "-m",
        str(calls),
        "-l",
        str(concurrent),
        "-r",
        str(rate),
        "-rp",
        "1000",
        "-i",
        "127.0.0.1",
        "-p",
        "15060",
        "-mi",
        "127.0.0.1",
        "-mp",
        "16000",
        "-key",
        "cc_from_display",
        '"Bench Caller"',
        "-key",
        "cc_from_user",
        CALLER_NUMBER,
        "-cid_str",
        f"{tag}-%u-%p@%s",
        "-nostdin",
        "-timeout",
        f"{round(bound)}s",
        "-trace_stat",
        "-stf",
        str(work / f"{tag}.csv"),
        "-trace_err",
        "-error_file",
        str(work / f"{tag}.errors"),
    ]
    return cmd, bound


def run_sipp(
    caller: Caller, to: str, rate: int, concurrent: int, calls: int, work: Path, tag: str
) -> tuple[dict[str, int], float]:
    """One sipp process placing ``calls`` calls; returns its final counters and wall time."""
    cmd, bound = sipp_command(caller, to, rate, concurrent, calls, work, tag)
    started = time.monotonic()
    subprocess.run(cmd, cwd=work, capture_output=True, check=False, timeout=bound + 60)
    return sipp_counters(work / f"{tag}.csv"), time.monotonic() - started


def sipp_counters(stat: Path) -> dict[str, int]:
    """Calls created, successful and failed: the last line of sipp's statistics file."""
    counters = {"created": 0, "ok": 0, "failed": 0}
    if stat.exists():
        rows = list(csv.reader(stat.open(), delimiter=";"))
        if len(rows) >= 2:
            last = dict(zip(rows[0], rows[-1], strict=False))
            counters = {
                "created": int(last.get("TotalCallCreated", 0) or 0),
                "ok": int(last.get("SuccessfulCall(C)", 0) or 0),
                "failed": int(last.get("FailedCall(C)", 0) or 0),
            }
    return counters


# --- outcomes ----------------------------------------------------------------------------------


def wav_audio(path: Path) -> tuple[float, int] | None:
    """(seconds, mean absolute sample) of a closed 16-bit WAV, or None if unreadable."""
    try:
        with wave.open(str(path), "rb") as w:
            frames = w.readframes(w.getnframes())
            seconds = w.getnframes() / w.getframerate()
    except (OSError, EOFError, wave.Error):
        return None
    samples = array.array("h", frames)
    mean_abs = int(sum(abs(s) for s in samples[::8]) / max(1, len(samples[::8])))
    return seconds, mean_abs


def judge(run: Run, lab: AsteriskLab, mark: int, tag: str, caller: Caller, app: bool) -> list[Path]:
    """Fill ``run``'s outcome fields from the LABDEST lines and the recordings; return the
    recording files (for deletion once judged)."""
    lines = [ln for ln in lab.lab_lines(mark) if ln.callid.startswith(tag + "-")]
    dests = {ln.callid: ln for ln in lines if ln.kind == "LABDEST"}
    run.reached = len(dests)
    files: list[Path] = []
    lengths: list[float] = []
    for callid, dest in sorted(dests.items()):
        if dest.status != "given" or not dest.recording:
            run.wrong.append(f"{callid}: status={dest.status} reason={dest.reason}, no recording")
            continue
        audio = Path(dest.recording)
        sidecar = audio.with_suffix(".json")
        files += [audio, sidecar]
        if app:
            try:
                state = json.loads(sidecar.read_text())["state"]
            except (OSError, ValueError, KeyError):
                state = "missing"
            if state != "final":
                run.wrong.append(f"{callid}: sidecar {state}")
                continue
        found = wav_audio(audio)
        if found is None:
            run.wrong.append(f"{callid}: recording missing or unreadable")
            continue
        seconds, level = found
        lengths.append(seconds)
        if seconds < caller.talk / 2 or level < AUDIBLE_MEAN_ABS:
            run.wrong.append(f"{callid}: recording {seconds:.1f} s, level {level}")
            continue
        run.right += 1
    missing = run.placed - run.reached
    if missing > 0:
        run.wrong.append(f"{missing} calls never reached the destination")
    if lengths:
        run.recording_mean_s = round(statistics.fmean(lengths), 2)
        run.recording_min_s = round(min(lengths), 2)
    return files


def wait_settled(lab: AsteriskLab, mark: int, tag: str, placed: int, app: bool) -> None:
    """Until every call's LABEND is logged and (app) no sidecar is still ``recording``."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while time.monotonic() < deadline:
        lines = [ln for ln in lab.lab_lines(mark) if ln.callid.startswith(tag + "-")]
        ended = {ln.callid for ln in lines if ln.kind == "LABEND"}
        if len(ended) >= placed:
            break
        time.sleep(0.5)
    if not app:
        time.sleep(1.0)  # MixMonitor closes its files after the hangup
        return
    while time.monotonic() < deadline:
        busy = False
        for ln in lab.lab_lines(mark):
            if ln.kind == "LABDEST" and ln.callid.startswith(tag + "-") and ln.recording:
                sidecar = Path(ln.recording).with_suffix(".json")
                try:
                    busy = json.loads(sidecar.read_text())["state"] == "recording"
                except (OSError, ValueError, KeyError):
                    busy = False
                if busy:
                    break
        if not busy:
            return
        time.sleep(0.5)


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"n": len(ordered), "p50": pick(0.50), "p99": pick(0.99), "max": ordered[-1]}


def app_latencies(log_text: str) -> dict[str, dict[str, float]]:
    """p50/p99/max of the app's ``call_timing`` lines: ``notice_ms`` (StasisStart -> the notice
    started, Asterisk's clock), ``continue_ms`` (decision -> channel continued) and ``record_ms``:
    the 1 (``digit_at``) -> MixMonitor running, which is the AMI MixMonitor's answer
    (``agent_recording_started``) when the recording starts at the bridge, else the continue
    (the hook runs MixMonitor next). ``record_ms`` splits into ``decide_ms`` (the 1 -> the
    decision), ``continue_ms`` and ``bridge_ms`` (continued -> MixMonitor running at the agent
    bridge: the destination's dial, the agent gosub, the agent decision)."""
    found: dict[str, list[float]] = {
        "notice_ms": [],
        "record_ms": [],
        "continue_ms": [],
        "decide_ms": [],
        "bridge_ms": [],
    }
    timings: dict[str, dict[str, Any]] = {}
    started: dict[str, float] = {}
    for line in log_text.splitlines():
        if '"call_timing"' not in line and '"agent_recording_started"' not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == "agent_recording_started":
            stamp = datetime.fromisoformat(str(entry.get("timestamp")).replace("Z", "+00:00"))
            started[str(entry.get("call_id"))] = stamp.timestamp()
            continue
        timings[str(entry.get("channel_id"))] = entry
        for key in ("notice_ms", "continue_ms", "decide_ms"):
            if isinstance(entry.get(key), int | float):
                found[key].append(float(entry[key]))
    for call_id, entry in timings.items():
        digit = entry.get("digit_at")
        running = started.get(call_id, entry.get("continued_at"))
        if isinstance(digit, int | float) and isinstance(running, int | float):
            found["record_ms"].append(round((running - digit) * 1000, 1))
        continued = entry.get("continued_at")
        if call_id in started and isinstance(continued, int | float):
            found["bridge_ms"].append(round((started[call_id] - continued) * 1000, 1))
    return {key: percentiles(values) for key, values in found.items()}


def app_problems(log_text: str) -> dict[str, int]:
    """How often the app logged each warning or error event."""
    found: dict[str, int] = {}
    for line in log_text.splitlines():
        if '"level": "warning"' not in line and '"level": "error"' not in line:
            continue
        try:
            event = str(json.loads(line).get("event"))
        except ValueError:
            continue
        found[event] = found.get(event, 0) + 1
    return found
