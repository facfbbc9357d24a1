"""Withdrawal during the call on the real Asterisk (R16, R18, issue 6).

The caller says yes to training on the lab destination (a real bridge with the lab's "echo"
agent, who consents), talks, then sends ``*`` and ``9`` while bridged. The features.conf entry
``callconsent_withdraw`` (enabled by the hook on the caller's channel only) runs
``[callconsent-withdraw]``: the recording stops in the dialplan, an AstDB marker is written, the
app is told and the caller hears the confirmation; the call goes on until the caller hangs up.
Latency is measured from Asterisk's own log: the ``DTMF end '9'`` line of the caller's channel to
MixMonitor's ``close filestream`` line.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from callconsent.config import Config
from callconsent.evidence.fsio import parse_stamp
from tests.e2e.lab_app import LabApp, ledger_entries, route_timing, wait_ledger
from tests.e2e.lab_app import first_line as _first
from tests.e2e.lab_app import log_time as _at
from tests.e2e.lab_app import wait_sidecar as _sidecar
from tests.harness.asterisk import AsteriskLab, LabLine
from tests.harness.sipp import Call, CallResult, Digit, Pause, background_call, run_call

TALK_BEFORE = 6.0  # seconds bridged before the withdrawal code
TALK_AFTER = 7.0  # seconds the caller stays on the line after it (confirmation ~3 s)


def _timeline(config: Config, route: str) -> list[Any]:
    timing = route_timing(config, route)
    return [
        Pause(timing.question_end + 1.0),
        Digit("1"),
        Pause(TALK_BEFORE),
        Digit("*"),
        Pause(0.4),
        Digit("9"),
        Pause(TALK_AFTER),
    ]


def _withdrawn(config: Config, uniqueid: str) -> list[dict[str, Any]]:
    return [
        e
        for e in ledger_entries(config)
        if e["type"] == "withdrawn" and e["call"]["uniqueid"] == uniqueid
    ]


def _marker(asterisk: AsteriskLab, uniqueid: str) -> bool:
    return f"/callconsent/withdrawn/{uniqueid}" in asterisk.cli(
        "database show callconsent withdrawn"
    )


def _check_call_flow(
    asterisk: AsteriskLab, result: CallResult, end: LabLine, since: int, *, stops: bool
) -> tuple[list[str], datetime]:
    """The in-call facts from Asterisk's log; returns the call's log lines and the '9' time."""
    assert result.ok and not result.remote_hangup, result.describe()  # the caller hung up
    lines = asterisk.call_log(end, since)
    nine = _first(lines, r"DTMF end '9' received on PJSIP/lab-caller")
    assert nine, "the caller's 9 never reached Asterisk"
    t9 = _at(nine)
    assert _first(lines, r"Internal Gosub\(callconsent-withdraw,s,1\) start", t9)
    closed = _first(lines, r"MixMonitor close filestream", t9)
    labend = _first(lines, r"LABEND ", t9)
    assert labend, "no LABEND after the withdrawal"
    if stops:
        assert closed, "the recording did not stop"
        latency = (_at(closed) - t9).total_seconds()
        print(f"withdrawal stop latency: {latency * 1000:.0f} ms")  # shown with -s
        assert latency < 1.0
        assert (_at(labend) - _at(closed)).total_seconds() > TALK_AFTER - 3.0  # long before
    else:
        assert closed is None or _at(closed) >= _at(labend), "documentation must keep recording"
    assert _first(lines, r"Playback\(.*callconsent-withdrawn\"?\)", t9), "no confirmation"
    assert (_at(labend) - t9).total_seconds() > TALK_AFTER - 2.0, "the call ended early"
    assert _first(lines, r"DTMF .* on Local/agent") is None, "the agent's channel got DTMF"
    assert _first(lines, r"Dangerous function") is None
    return lines, t9


def test_withdrawal_stops_and_deletes_a_training_recording(
    asterisk: AsteriskLab, lab_app: LabApp, config: Config, log_mark: int
) -> None:
    result = run_call(
        Call(
            to="support",
            caller_number="+4520006001",
            audio="speech",
            timeline=_timeline(config, "support"),
        )
    )
    end = asterisk.wait_labend(result.call_id, since=log_mark)
    assert end.status == "given" and end.recording
    _check_call_flow(asterisk, result, end, log_mark, stops=True)
    entry = wait_ledger(config, end.uniqueid, kind="withdrawn")
    assert (entry["outcome"], entry["purposes"], entry["kept_purposes"], entry["via"]) == (
        "deleted",
        ["training"],
        [],
        "caller_dtmf",
    )
    tomb = _sidecar(config, entry["recording"], until="tombstone")
    assert (tomb["state"], tomb["reason"]) == ("tombstone", "withdrawn")
    assert set(tomb) == {
        "schema_version",
        "state",
        "call",
        "recording",
        "deleted_at",
        "reason",
        "updated_at",
    }  # no personal data left
    assert not Path(end.recording).exists(), "the partial file must be deleted"
    deleted = wait_ledger(config, end.uniqueid, kind="deleted")
    assert deleted["reason"] == "withdrawn"
    assert not _marker(asterisk, end.uniqueid), "the AstDB marker is deleted once finished"


def test_withdrawal_on_documentation_and_training_keeps_documentation_only(
    asterisk: AsteriskLab, lab_app: LabApp, config: Config, log_mark: int
) -> None:
    result = run_call(
        Call(
            to="mixed-queue",
            caller_number="+4520006002",
            audio="speech",
            timeline=_timeline(config, "mixed-queue"),
        )
    )
    end = asterisk.wait_labend(result.call_id, since=log_mark)
    assert end.status == "given" and end.recording
    _lines, t9 = _check_call_flow(asterisk, result, end, log_mark, stops=False)
    entry = wait_ledger(config, end.uniqueid, kind="withdrawn")
    assert (entry["outcome"], entry["purposes"], entry["kept_purposes"]) == (
        "documentation_kept",
        ["training"],
        ["documentation"],
    )
    doc = _sidecar(config, entry["recording"], until="final")
    assert doc["state"] == "final" and doc["recording"]["has_audio"]
    assert [p["purpose"] for p in doc["purposes"]] == ["documentation"]
    assert doc["purposes"][0]["lawful_basis"] == "6(1)(f)"  # its own basis (R18)
    assert not [p for p in doc.get("agent_purposes", []) if p["purpose"] == "training"]
    assert "purpose:training" not in doc["tags"] and "purpose:documentation" in doc["tags"]
    started = parse_stamp(doc["recording"]["started_at"])
    assert (parse_stamp(doc["delete_after"]) - started).days == 90
    assert Path(end.recording).exists()
    # the recording went on after the withdrawal: it covers most of the talk after the code
    assert doc["recording"]["duration_seconds"] > TALK_BEFORE + TALK_AFTER - 3.0
    assert t9  # measured above


def test_withdrawal_while_the_app_is_down_stops_the_recording_and_is_finished_at_restart(
    asterisk: AsteriskLab, lab_app: LabApp, config: Config, log_mark: int
) -> None:
    call = Call(
        to="support",
        caller_number="+4520006003",
        audio="speech",
        timeline=_timeline(config, "support"),
    )
    try:
        with background_call(call) as pending:
            dest = asterisk.wait_labdest(call.call_id, since=log_mark, timeout=40)
            asterisk.wait_for_log(rf"agent=echo caller={re.escape(dest.uniqueid)} ", log_mark)
            time.sleep(1.0)  # bridged, training recording running
            assert lab_app.stop() == 0
            result = pending.result(timeout=90)
        end = asterisk.wait_labend(result.call_id, since=log_mark)
        _check_call_flow(asterisk, result, end, log_mark, stops=True)
        assert _marker(asterisk, end.uniqueid), "the dialplan marks the withdrawal in AstDB"
        assert not _withdrawn(config, end.uniqueid), "nothing can be written while the app is down"
    finally:
        lab_app.start()
    entry = wait_ledger(config, end.uniqueid, kind="withdrawn")
    assert (entry["outcome"], entry["source"]) == ("deleted", "app_recovered")
    tomb = _sidecar(config, entry["recording"], until="tombstone")
    assert (tomb["state"], tomb["reason"]) == ("tombstone", "withdrawn")
    assert not Path(end.recording).exists()
    deadline = time.monotonic() + 10
    while _marker(asterisk, end.uniqueid):
        assert time.monotonic() < deadline, "the marker stays after the app finished it"
        time.sleep(0.2)
