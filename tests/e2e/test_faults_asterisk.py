"""Asterisk itself crashes (``kill -9``) under load and comes back (R36, issue 11).

While Asterisk is away the app must not spin (its CPU is measured) nor flood its log; once
Asterisk answers again the app is back on ARI and AMI within 2 s and handles new calls. The
calls Asterisk dropped leave no recording without a final sidecar after ``reconcile``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from callconsent.config import Config
from tests.e2e.faults import (
    Caller,
    CaseResult,
    Expect,
    app_events,
    check_call,
    check_case,
    reconcile,
    report,
    settle,
    tombstoned,
    wait_until,
)
from tests.e2e.lab_app import LabApp, route_timing
from tests.harness.asterisk import AsteriskLab, sandbox
from tests.harness.rtp_pcap import Step
from tests.harness.sipp import Call, Digit, Pause

DOWN_SECONDS = 6.0
BURST_SECONDS = 2.0
LOAD_CALLS = 10
NEW_CALLS = 4
TRAINING = Expect(frozenset({"training"}))


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _log_lines(path: Path, since: int, until: int) -> list[tuple[str, bool]]:
    """The log's lines between two offsets at the level serve runs with by default (info and
    above; the lab's app also logs debug lines): (event name, or the start of a line that is
    not JSON; whether it is about one call)."""
    with path.open("rb") as f:
        f.seek(since)
        data = f.read(until - since).decode("utf-8", "replace")
    out = []
    for line in data.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            out.append((line[:60], False))
            continue
        if event.get("level") == "debug":
            continue
        out.append((str(event.get("event")), "channel_id" in event or "call_id" in event))
    return out


def _timeline(total: float, digit_at: float | None) -> list[Step]:
    if digit_at is None:
        return [Pause(total)]
    return [Pause(digit_at), Digit("1"), Pause(total - digit_at)]


def _watch_ari(asterisk: AsteriskLab, stop: threading.Event, seen: list[float]) -> None:
    """The first moment (wall clock) ARI answers again."""
    while not stop.is_set():
        try:
            asterisk.ari("GET", "asterisk/info", timeout=0.5)
        except (OSError, RuntimeError, ValueError):  # refused, HTTP error, half-started: not yet
            time.sleep(0.02)
            continue
        seen.append(time.time())
        return


def _left_recording(config: Config) -> list[str]:
    """Sidecars anywhere in the lab still ``recording`` (reconcile ran with nothing in progress)."""
    out = []
    for path in config.storage.recordings_dir.rglob("*.json"):
        if json.loads(path.read_text()).get("state") == "recording":
            out.append(f"{path.name}: still recording after reconcile")
    return out


def _first_after(events: list[dict[str, Any]], name: str) -> float | None:
    for event in events:
        if event.get("event") == name:
            return datetime.fromisoformat(str(event["timestamp"])).timestamp()
    return None


@pytest.fixture(scope="module")
def restarted(asterisk: AsteriskLab, lab_app: LabApp, config: Config) -> dict[str, Any]:
    t = route_timing(config, "support")
    since = asterisk.log_offset()
    caller = Caller()
    now = time.monotonic()
    for i in range(LOAD_CALLS):  # callers in every state; the first half says yes early
        digit_at = t.question_end + 0.5 if i % 2 == 0 else None
        call = Call(
            to="support",
            caller_number=f"+4598200{i:04d}",
            timeline=_timeline(t.question_end + 30.0, digit_at),
        )
        caller.place(
            "Asterisk killed under load", call, TRAINING if digit_at else Expect(), at=now + 0.4 * i
        )
    time.sleep(t.question_end + 3.0 + 0.4 * LOAD_CALLS / 2)  # some record, some in the flow
    pid = lab_app.pid
    assert pid is not None
    mark = lab_app.log_path.stat().st_size
    star = int((asterisk.root / "run/asterisk/asterisk.pid").read_text().strip())
    os.kill(star, 9)
    down_at = time.monotonic()
    cpu0 = _cpu_seconds(pid)
    time.sleep(BURST_SECONDS)  # the calls in the flow fail once; then only the reconnects
    steady_mark, steady_at = lab_app.log_path.stat().st_size, time.monotonic()
    time.sleep(DOWN_SECONDS - BURST_SECONDS)
    cpu1 = _cpu_seconds(pid)
    end = lab_app.log_path.stat().st_size
    down, steady = time.monotonic() - down_at, time.monotonic() - steady_at
    lines_down = _log_lines(lab_app.log_path, mark, end)
    lines_steady = _log_lines(lab_app.log_path, steady_mark, end)
    stop, seen = threading.Event(), []
    watcher = threading.Thread(target=_watch_ari, args=(asterisk, stop, seen), daemon=True)
    watcher.start()
    sandbox("up")
    watcher.join(timeout=10)
    stop.set()
    assert seen, "ARI never answered after the restart"

    def reconnected() -> bool:
        names = {e.get("event") for e in app_events(lab_app.log_path, mark)}
        return {"ari_connected", "ami_connected"} <= names

    wait_until(reconnected, timeout=15, what="the app to reconnect to ARI and AMI")
    events = app_events(lab_app.log_path, mark)
    ari_at, ami_at = _first_after(events, "ari_connected"), _first_after(events, "ami_connected")
    assert ari_at is not None and ami_at is not None
    old = caller.wait(timeout=120)
    new_since = asterisk.log_offset()
    fresh = Caller()
    for i in range(NEW_CALLS):
        digit_at = t.question_end + 0.5 if i % 2 == 0 else None
        call = Call(
            to="support",
            caller_number=f"+4598201{i:04d}",
            timeline=_timeline(t.question_end + t.timeout + 3.0, digit_at),
        )
        fresh.place("new calls after the restart", call, TRAINING if digit_at else Expect())
    new = fresh.wait(timeout=120)
    caller.close()
    fresh.close()
    settle(asterisk, new, new_since)
    dests = {
        line.callid: line for line in asterisk.lab_lines(since=since) if line.kind == "LABDEST"
    }
    for p in old:  # Asterisk dropped them (no LABEND): what matters is the evidence they left
        assert p.result is not None
        p.dest = p.end = dests.get(p.result.call_id)
    proc = reconcile(config)
    figures = {
        "cpu_percent_down": round(100 * (cpu1 - cpu0) / down, 2),
        "call_log_lines_down": sum(per_call for _e, per_call in lines_down),
        "other_log_lines_per_s": round(
            sum(not per_call for _e, per_call in lines_steady) / steady, 2
        ),
        "ari_back_s": round(ari_at - seen[0], 3),
        "ami_back_s": round(ami_at - seen[0], 3),
    }
    old_result = CaseResult("Asterisk killed under load", placed=len(old))
    for p in old:
        if p.end is None:
            continue  # in the consent flow when Asterisk died: nothing was prepared to record
        old_result.reached += 1
        recorded, problems = check_call(config, p)
        old_result.recorded += recorded
        old_result.violations.extend(problems)
    old_result.violations.extend(_left_recording(config))
    tombs = sum(1 for p in old if p.end is not None and tombstoned(config, p))
    old_result.note = (
        f"{len(old) - old_result.reached} were in the consent flow when it died; "
        f"{tombs} header-only recording(s) tombstoned"
    )
    report(old_result)
    new_result = check_case(config, "new calls after the restart", new)
    note = ", ".join(f"{k} {v}" for k, v in figures.items())
    new_result.note = f"{new_result.note}; {note}"
    report(new_result)
    return {
        "figures": figures,
        "lines_down": Counter(lines_down),
        "old": old_result,
        "new": new_result,
        "reconcile": proc,
    }


def test_the_app_does_not_spin_while_asterisk_is_away(restarted: dict[str, Any]) -> None:
    assert restarted["figures"]["cpu_percent_down"] < 5.0, restarted["figures"]


def test_the_app_logs_a_bounded_number_of_lines_while_asterisk_is_away(
    restarted: dict[str, Any],
) -> None:
    """Each call in the flow when Asterisk died logs its end once (a few lines); apart from
    those only the reconnect attempts log, at a fixed rate however long Asterisk is away."""
    figures, lines = restarted["figures"], restarted["lines_down"]
    assert figures["other_log_lines_per_s"] <= 1.5, (figures, lines)
    assert figures["call_log_lines_down"] <= 5 * LOAD_CALLS, (figures, lines)


def test_the_app_is_back_on_ari_and_ami_within_2_s_of_asterisk(restarted: dict[str, Any]) -> None:
    figures = restarted["figures"]
    assert figures["ari_back_s"] < 2.0, figures
    assert figures["ami_back_s"] < 2.0, figures


def test_calls_asterisk_dropped_leave_no_recording_without_a_final_sidecar(
    restarted: dict[str, Any],
) -> None:
    """Asterisk killed with -9 may leave only WAV headers (MixMonitor's buffers die with it):
    those become tombstones; what has audio gets a final sidecar. Either way none stays
    ``recording``."""
    result: CaseResult = restarted["old"]
    assert result.reached > 0, result.row()  # some were past the flow, recording or bridged
    assert not result.violations, result.violations


def test_new_calls_after_the_restart_are_handled_right(restarted: dict[str, Any]) -> None:
    result: CaseResult = restarted["new"]
    assert result.placed == NEW_CALLS and result.reached == NEW_CALLS
    assert result.recorded == NEW_CALLS // 2
    assert not result.violations, result.violations
