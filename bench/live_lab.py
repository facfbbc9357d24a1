"""The lab side of bench/live.py: sipp callers, outcomes and the app's timings (the processes:
bench/live_app.py)."""

from __future__ import annotations

import array
import csv
import json
import os
import resource
import statistics
import subprocess
import time
import wave
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

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
    # the app's event loop over the run: seconds running and seconds runnable but waiting for a CPU
    callers_cpu_ms_per_call: float | None = None  # sipp, on the same CPUs
    loop_run_s: float | None = None
    loop_wait_s: float | None = None
    recording_mean_s: float | None = None
    recording_min_s: float | None = None
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    app_problems: dict[str, int] = field(default_factory=dict)  # warning/error log events
    loadavg_start: str = ""
    loadavg_end: str = ""

    @property
    def clean(self) -> bool:
        return self.placed == self.calls and self.failed == 0 and not self.wrong


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
) -> tuple[dict[str, int], float, float]:
    """One sipp process placing ``calls`` calls; returns its final counters, wall time and CPU
    seconds (the callers share the machine's CPUs with Asterisk and the app)."""
    cmd, bound = sipp_command(caller, to, rate, concurrent, calls, work, tag)
    started = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, cwd=work, capture_output=True, check=False, timeout=bound + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return sipp_counters(work / f"{tag}.csv"), time.monotonic() - started, cpu


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
    started, Asterisk's clock; split at the app's play request into ``notice_app_ms`` and
    ``notice_play_ms``, and the app's part where the ARI client read the StasisStart into
    ``notice_event_ms`` and ``notice_queue_ms``), ``continue_ms`` (decision -> channel continued) and ``record_ms``:
    the 1 (``digit_at``) -> MixMonitor running, which is the AMI MixMonitor's answer
    (``agent_recording_started``) when the recording starts at the bridge, else the continue
    (the hook runs MixMonitor next). ``record_ms`` splits into ``decide_ms`` (the 1 -> the
    decision), ``continue_ms`` and ``bridge_ms`` (continued -> MixMonitor running at the agent
    bridge: the destination's dial, the agent gosub, the agent decision, of which the app's
    own part is ``agent_decide_ms``, the evidence made durable (``agent_ledger_ms`` the
    ``agent_decision`` line, then ``agent_sidecar_ms`` the sidecar), and
    ``agent_mixmonitor_ms``, the AMI MixMonitor's round trip)."""
    found: dict[str, list[float]] = {
        "notice_ms": [],
        "notice_app_ms": [],
        "notice_play_ms": [],
        "notice_event_ms": [],
        "notice_queue_ms": [],
        "record_ms": [],
        "continue_ms": [],
        "decide_ms": [],
        "bridge_ms": [],
        "agent_decide_ms": [],
        "agent_mixmonitor_ms": [],
        "agent_ledger_ms": [],
        "agent_sidecar_ms": [],
    }
    timings: dict[str, dict[str, Any]] = {}
    started: dict[str, float] = {}
    for line in log_text.splitlines():
        if (
            '"call_timing"' not in line
            and '"agent_recording_started"' not in line
            and '"agent_decision"' not in line
        ):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == "agent_decision":
            for key in ("ledger_ms", "sidecar_ms"):
                if isinstance(entry.get(key), int | float):
                    found[f"agent_{key}"].append(float(entry[key]))
            continue
        if entry.get("event") == "agent_recording_started":
            for key in ("decide_ms", "mixmonitor_ms"):
                if isinstance(entry.get(key), int | float):
                    found[f"agent_{key}"].append(float(entry[key]))
            stamp = datetime.fromisoformat(str(entry.get("timestamp")).replace("Z", "+00:00"))
            started[str(entry.get("call_id"))] = stamp.timestamp()
            continue
        timings[str(entry.get("channel_id"))] = entry
        for key in (
            "notice_ms",
            "notice_app_ms",
            "notice_play_ms",
            "notice_event_ms",
            "notice_queue_ms",
            "continue_ms",
            "decide_ms",
        ):
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
