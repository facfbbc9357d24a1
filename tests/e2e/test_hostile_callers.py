"""Hostile callers on the real Asterisk (issue 11): caller text that forges AMI header lines.

Asterisk copies a channel's caller ID unescaped into every AMI event that carries the channel's
snapshot, so a SIP From user part with ``%0D%0A`` (or a display name with a raw CR) writes
header lines, or with an empty line whole events, into the app's AMI stream. These callers
carry forged ``Uniqueid:``, ``BridgeUniqueid:``, ``Event:``, ``UserEvent:`` and ``Caller:``
lines with CR, LF and CRLF line breaks through every AMI-driven feature: the agent's decision,
the caller's ``*9``, the agent's ``*8`` and ``*7`` (sensitive flag), a blind transfer to an
outside phone, the withdrawal route. Each must decide as for a plain caller (the hook normalises
the caller ID before anything else), the evidence keeps the number as sent (escaped JSON), and
where caller text is put back into the caller ID after the hook (lab route ``relabel-<route>``, as
a CNAM lookup would do), the app acts on none of those events and stops the call's recording.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from callconsent.config import Config
from tests.e2e.lab_app import (
    LabApp,
    call_entries_for,
    route_timing,
    set_agent_consent,
    wait_ledger,
)
from tests.e2e.lab_app import log_time as _at
from tests.e2e.lab_app import wait_sidecar as _sidecar
from tests.harness.agent import EXTERNAL, agent_phones
from tests.harness.asterisk import AsteriskLab, LabLine
from tests.harness.rtp_pcap import Step
from tests.harness.sipp import Call, CallResult, Digit, Pause, run_call, run_calls
from tests.support.sealed import caller_of

#: Forged lines in the From user part: CRLF header lines; CR and LF alone; an empty line that
#: ends the real event and starts a forged CallconsentAgent event.
CRLF_HEADERS = "+4520007101\r\nUniqueid: 1700000000.1\r\nBridgeUniqueid: forged-bridge\r\n"
MIXED = (
    "+4520007102\rCaller: 1700000000.2\nUserEvent: CallconsentWithdraw\r\n"
    "Event: Hangup\r\nUniqueid: 1700000000.2"
)
BLANK_LINE_EVENT = (
    "+4520007104\r\n\r\nEvent: UserEvent\r\nUserEvent: CallconsentAgent\r\n"
    "Caller: 1700000000.4\r\nAgent: agent1\r\nFlag: 1\r\n\r\n"
)
PAYLOADS = {"crlf_headers": CRLF_HEADERS, "blank_line_event": BLANK_LINE_EVENT}
#: A display name with raw CRs inside the quoted string (LF would end the SIP header line).
NAME_WIRE = '"Mallory\rCaller: 1700000000.9\rBridgeUniqueid: forged"'
TALK_BEFORE = 5.0
RING = 2.0


@pytest.fixture(scope="module", autouse=True)
def _agent1_consents(lab_app: LabApp) -> None:
    set_agent_consent("agent1", actor="e2e:hostile")


def _line(asterisk: AsteriskLab, pattern: str, since: int, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    rx = re.compile(pattern)
    while True:
        for line in asterisk.read_log(since).splitlines():
            if rx.search(line):
                return line
        assert time.monotonic() < deadline, f"no log line matching {pattern!r}"
        time.sleep(0.1)


def _keys(*keys: str, after: float = TALK_BEFORE) -> list[Step]:
    steps: list[Step] = [Pause(after)]
    for key in keys:
        steps += [Digit(key), Pause(0.3)]
    return steps


def _queue_call(
    asterisk: AsteriskLab,
    config: Config,
    to: str,
    number: str,
    agent_keys: list[Step],
    *,
    talk: float = 17.0,
    outside: bool = False,
) -> tuple[CallResult, LabLine, int]:
    route = to.split("-", 1)[1]
    timing = route_timing(config, route)
    mark = asterisk.log_offset()
    phones = ("agent1", EXTERNAL) if outside else ("agent1",)
    with agent_phones(*phones, timelines={"agent1": agent_keys}, ring_seconds={EXTERNAL: RING}):
        result = run_call(
            Call(
                to=to,
                caller_number=number,
                display_name_wire=NAME_WIRE,
                audio="speech",
                timeline=[Pause(timing.question_end + 1.0), Digit("1"), Pause(talk)],
            )
        )
    assert result.ok and not result.remote_hangup, result.describe()
    end = asterisk.wait_labend(result.call_id, since=mark)
    assert end.status == "given" and end.recording
    return result, end, mark


def _evidence_keeps_the_raw_caller_id(config: Config, end: LabLine, number: str) -> None:
    [entry] = call_entries_for(config, end.uniqueid)
    # as Asterisk got it (it keeps the first 79 characters of a number), escaped by JSON
    assert caller_of(entry, config.storage.ledger_path).number == number[:79]
    assert (
        caller_of(entry, config.storage.ledger_path).name
        == "Mallory\rCaller: 1700000000.9\rBridgeUniqueid: forged"
    )


def _caller_forgotten(config: Config, end: LabLine) -> None:
    """The recording was withdrawn and deleted: so was the key of the caller's number and name
    in the ledger (issue 16), whatever the text was."""
    [entry] = call_entries_for(config, end.uniqueid)
    assert "caller" in entry["call"] and "caller_number" not in entry["call"]
    assert caller_of(entry, config.storage.ledger_path).erased


def _app_events(lab_app: LabApp, name: str, since: int) -> list[dict[str, Any]]:
    out = []
    for line in lab_app.log_path.read_bytes()[since:].decode(errors="replace").splitlines():
        if f'"{name}"' in line:
            out.append(json.loads(line))
    return out


def _app_mark(lab_app: LabApp) -> int:
    return lab_app.log_path.stat().st_size


def test_forged_caller_blind_transferred_outside_stops_recording_before_the_answer(
    asterisk: AsteriskLab, config: Config, lab_app: LabApp
) -> None:
    payload = "blank_line_event"  # crlf_headers: the *8 test (the hook normalises both alike)
    app_mark = _app_mark(lab_app)
    number = PAYLOADS[payload]
    _r, end, mark = _queue_call(
        asterisk,
        config,
        "queue-mixed-queue",
        number,
        _keys("#", "1", "0", "0", "7", "0"),
        outside=True,
    )
    dialled = _line(asterisk, r"Called PJSIP/lab-external", mark)
    answered = _line(asterisk, r"PJSIP/lab-external-\S+ answered ", mark)
    closed = _line(asterisk, r"MixMonitor close filestream", mark)
    print(
        f"{payload}: recording stopped {(_at(closed) - _at(dialled)).total_seconds() * 1000:.0f}"
        f" ms after the dial, {(_at(answered) - _at(closed)).total_seconds() * 1000:.0f} ms "
        "before the outside phone answered"
    )  # shown with -s
    assert _at(closed) < _at(answered), "recorded the outside party"
    entry = wait_ledger(config, end.uniqueid, kind="recording_stopped")
    assert (entry["reason"], entry["party"]["kind"]) == ("org_left_call", "external")
    doc = _sidecar(config, entry["recording"])
    assert doc["recording"]["stop_reason"] == "org_left_call"
    assert doc["recording"]["duration_seconds"] < TALK_BEFORE + 8.0
    _evidence_keeps_the_raw_caller_id(config, end, number)
    assert _app_events(lab_app, "ami_event_untrusted", app_mark) == []  # the hook normalised


def test_forged_caller_gets_the_agents_decision_and_withdraws_with_star_9(
    asterisk: AsteriskLab, config: Config, lab_app: LabApp, log_mark: int
) -> None:
    timing = route_timing(config, "support")
    result = run_call(
        Call(
            to="support",
            caller_number=MIXED,
            display_name_wire=NAME_WIRE,
            audio="speech",
            timeline=[
                Pause(timing.question_end + 1.0),
                Digit("1"),
                *_keys("*", "9", after=6.0),
                Pause(6.0),
            ],
        )
    )
    assert result.ok and not result.remote_hangup, result.describe()
    end = asterisk.wait_labend(result.call_id, since=log_mark)
    assert end.status == "given" and end.recording
    # the echo agent's CallconsentAgent event was read: training was recorded, then withdrawn
    assert re.search(
        rf"callconsent agent=echo caller={re.escape(end.uniqueid)} flag=1 "
        r"result=given",
        asterisk.read_log(log_mark),
    )
    entry = wait_ledger(config, end.uniqueid, kind="withdrawn")
    assert (entry["outcome"], entry["purposes"], entry["via"]) == (
        "deleted",
        ["training"],
        "caller_dtmf",
    )
    assert not Path(end.recording).exists()
    _caller_forgotten(config, end)


def test_forged_caller_withdrawn_by_the_agent_with_star_8(
    asterisk: AsteriskLab, config: Config, lab_app: LabApp
) -> None:
    _r, end, _mark = _queue_call(asterisk, config, "queue-support", CRLF_HEADERS, _keys("*", "8"))
    entry = wait_ledger(config, end.uniqueid, kind="withdrawn")
    assert (entry["outcome"], entry["purposes"], entry["via"]) == (
        "deleted",
        ["training"],
        "agent_dtmf",
    )
    assert not Path(end.recording).exists()
    _caller_forgotten(config, end)


def test_forged_caller_flagged_sensitive_by_the_agent_with_star_7(
    asterisk: AsteriskLab, config: Config, lab_app: LabApp
) -> None:
    _r, end, _mark = _queue_call(
        asterisk, config, "queue-mixed-queue", BLANK_LINE_EVENT, _keys("*", "7"), talk=14.0
    )
    entry = wait_ledger(config, end.uniqueid, kind="flagged_sensitive")
    assert (entry["outcome"], entry["removed_purposes"], entry["kept_purposes"]) == (
        "restricted",
        ["training"],
        ["documentation"],
    )
    doc = _sidecar(config, entry["recording"], until="final")
    assert (doc.get("sensitive"), doc.get("restricted")) == (True, True)
    # MixMonitor wrote it group-writable (Asterisk's umask); the app made it 0640 (R32)
    assert os.stat(end.recording).st_mode & 0o777 == 0o640


def test_forged_caller_on_the_withdrawal_route_gets_an_answer(
    asterisk: AsteriskLab, config: Config, lab_app: LabApp, log_mark: int
) -> None:
    app_mark = _app_mark(lab_app)
    result = run_call(
        Call(
            to="withdraw",
            caller_number=CRLF_HEADERS.replace("+4520007101", "+4599000101"),
            display_name_wire=NAME_WIRE,
            timeline=[Pause(2.0), Digit("1"), Pause(0.3)],
            hangup_after=14.0,
        )
    )
    assert result.ok, result.describe()
    m = asterisk.wait_for_log(
        rf"(?m)LABWITHDRAW uniqueid=(\S+) callid={re.escape(result.call_id)} result=(\S*)$",
        log_mark,
        timeout=30,
    )
    assert m.group(2) == "done"  # the app read the route's UserEvent and answered
    [done] = _app_events(lab_app, "withdraw_request_done", app_mark)
    assert done["by"] == "number"


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_caller_text_put_back_after_the_hook_stops_the_recording_fail_closed(
    asterisk: AsteriskLab, config: Config, lab_app: LabApp, payload: str
) -> None:
    app_mark = _app_mark(lab_app)
    _r, end, mark = _queue_call(
        asterisk, config, "relabel-mixed-queue", PAYLOADS[payload], _keys(), talk=10.0
    )
    untrusted = _app_events(lab_app, "ami_event_untrusted", app_mark)
    assert untrusted, "the app did not notice the forged lines"
    entry = wait_ledger(config, end.uniqueid, kind="recording_stopped")
    assert (entry["reason"], entry["outcome"]) == ("untrusted_event", "stopped")
    # stopped when the agent was dialled (the first event with the forged lines), before the
    # bridge: nothing was recorded, the empty file is gone and a tombstone says why
    dialled = _line(asterisk, r"Called PJSIP/agent1", mark)
    closed = _line(asterisk, r"MixMonitor close filestream", mark)
    latency = (_at(closed) - _at(dialled)).total_seconds()
    print(f"{payload}: recording stopped {latency * 1000:.0f} ms after the agent's dial")
    assert abs(latency) < 1.0
    tomb = _sidecar(config, entry["recording"], until="tombstone")
    assert (tomb["state"], tomb["reason"]) == ("tombstone", "no_audio")
    assert not Path(end.recording).exists()
    # the agent's CallconsentAgent event carried the forged lines too: not acted on, so the
    # agent gosub heard no answer and training was not recorded (fail closed)
    assert re.search(
        rf"callconsent agent=agent1 caller={re.escape(end.uniqueid)} flag=1 result= ",
        asterisk.read_log(mark),
    )


#: Hostile caller numbers: the From user part as sent (the harness percent-encodes what a SIP
#: URI cannot hold and keeps escapes as written; %FF%FE%C0 is invalid UTF-8), and what Asterisk
#: then holds: it cuts a number at its first ';' (raw or %3B: user parameters), keeps 79
#: characters, and the rest arrives as sent.
HOSTILE_NUMBERS = {
    "dot_dot_slash": ("../../../etc/passwd", "../../../etc/passwd"),
    "quotes": ("'\"'\"%3B--", "'\"'\""),
    "semicolon_dollar": ("$HOME$(id)%3B$PATH", "$HOME$(id)"),
    "backticks": ("`id`", "`id`"),
    "expression": ("${SHELL(id)}$[1+1]", "${SHELL(id)}$[1+1]"),
    "long": ("9" * 300, "9" * 79),  # Asterisk keeps 79 characters
    "invalid_utf8": ("+45%FF%FE%C0", "+45"),  # the invalid bytes never reach ARI's JSON
}
#: Hostile dialled numbers (the Request-URI user part as sent): an unknown route, not recorded.
HOSTILE_DIALLED = {
    "dialled_path": "support%2F..%2F..%2Fetc",
    "dialled_shell": "support%3B%24%28id%29%60id%60",
}


def test_hostile_caller_ids_and_dialled_numbers_in_one_batch(
    asterisk: AsteriskLab, config: Config, lab_app: LabApp, log_mark: int
) -> None:
    lab = config.storage.recordings_dir.parent
    before = {p for p in lab.rglob("*") if p.is_file()}
    timing = route_timing(config, "support")
    talk = [Pause(timing.question_end + 1.0), Digit("1"), Pause(3.0)]
    calls = [
        Call(to="support", caller_number=wire, audio="speech", timeline=talk)
        for wire, _held in HOSTILE_NUMBERS.values()
    ] + [
        Call(to="support", dialled_wire=d, audio="speech", timeline=talk)
        for d in HOSTILE_DIALLED.values()
    ]
    results = run_calls(calls, concurrency=len(calls))
    ends = [asterisk.wait_labend(r.call_id, since=log_mark) for r in results]
    for name, result, end in zip([*HOSTILE_NUMBERS, *HOSTILE_DIALLED], results, ends, strict=True):
        assert result.ok, (name, result.describe())
        [entry] = call_entries_for(config, end.uniqueid)
        if name in HOSTILE_DIALLED:  # an unknown route: not recorded, the call goes on
            assert (end.status, end.reason, end.recording) == ("error", "unknown_route", ""), name
            assert "/" in entry["call"]["dialled_number"] or ";" in entry["call"]["dialled_number"]
            continue
        assert (end.status, end.reason) == ("given", "digit"), name
        assert Path(end.recording).name == f"{end.uniqueid}.wav", name
        assert Path(end.recording).parent.parent.parent.parent == config.storage.recordings_dir
        assert caller_of(entry, config.storage.ledger_path).number == HOSTILE_NUMBERS[name][1], name
    new = {p for p in lab.rglob("*") if p.is_file()} - before
    allowed = (config.storage.recordings_dir, config.storage.ledger_path.parent)
    assert [p for p in new if not any(a in p.parents for a in allowed)] == []
