"""The agent withdraws consent for a caller who asks orally, on the real Asterisk (R16, issue 6).

Callers dial ``queue-<route>``: the hook, then the lab queue whose member agent1 (a sipp agent
phone, consenting to training) runs the ``callconsent-agent`` gosub, which enables the
``callconsent_withdraw_agent`` feature (features.conf ``*8``) on the agent's channel for calls
with a consent purpose. The agent phone's own audio timeline sends ``*`` then ``8`` a few
seconds after it answered, i.e. while bridged. ``[callconsent-withdraw-agent]`` runs on the
agent's channel: the AstDB marker for the caller, the UserEvent (``By: agent``), a confirmation
to the agent only. The app then deletes the partial training recording and stops the caller's
MixMonitor over AMI. Latency is measured from Asterisk's own log: the agent's ``DTMF end '8'``
line to MixMonitor's ``close filestream`` line. What reaches the caller is watched on the wire
(:class:`tests.harness.rtp_sniff.DtmfSniffer`): the agent presses ``5`` later as a control, which
must pass, while ``*`` and ``8`` must not.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from callconsent.config import Config
from callconsent.evidence import sidecar
from callconsent.evidence.fsio import parse_stamp
from tests.e2e.lab_app import (
    DEMO_CONFIG,
    LAB_ENV,
    LabApp,
    ledger_entries,
    route_timing,
    set_agent_consent,
    wait_ledger,
)
from tests.e2e.lab_app import (
    first_line as _first,
)
from tests.e2e.lab_app import (
    log_time as _at,
)
from tests.e2e.lab_app import (
    wait_sidecar as _sidecar,
)
from tests.harness.agent import agent_phones
from tests.harness.asterisk import AsteriskLab, LabLine
from tests.harness.rtp_sniff import DtmfSniffer
from tests.harness.sipp import Call, CallResult, Digit, Pause, background_call, run_call

WITHDRAW_AFTER = 6.0  # seconds after the agent answered (whisper ~1.5 s, then bridged)
CONTROL_AFTER = 7.0  # seconds after the code (its confirmation ~3 s): a plain key, passed on
TALK = 21.0  # seconds the caller stays after saying yes (covers both and talk after them)
AGENT_KEYS = [
    Pause(WITHDRAW_AFTER),
    Digit("*"),
    Pause(0.4),
    Digit("8"),
    Pause(CONTROL_AFTER),
    Digit("5"),
]
#: The code pressed twice (the 2nd after the 1st confirmation), then the control key.
AGENT_KEYS_TWICE = [
    Pause(WITHDRAW_AFTER),
    Digit("*"),
    Pause(0.4),
    Digit("8"),
    Pause(5.0),
    Digit("*"),
    Pause(0.4),
    Digit("8"),
    Pause(4.5),
    Digit("5"),
]


@pytest.fixture(scope="module", autouse=True)
def agent1_consents(lab_app: LabApp) -> None:
    set_agent_consent("agent1", actor="e2e:test")


def _call(
    asterisk: AsteriskLab, config: Config, route: str, number: str, keys: list[Any] = AGENT_KEYS
) -> tuple[CallResult, LabLine]:
    timing = route_timing(config, route)
    mark = asterisk.log_offset()
    with agent_phones("agent1", timelines={"agent1": keys}) as phones, DtmfSniffer() as sent:
        result = run_call(
            Call(
                to=f"queue-{route}",
                caller_number=number,
                audio="speech",
                timeline=[Pause(timing.question_end + 1.0), Digit("1"), Pause(TALK)],
            )
        )
        assert phones["agent1"].answered() == 1
    assert result.ok and not result.remote_hangup, result.describe()  # the caller hung up
    # the agent's plain 5 went through the bridge to the caller; the code's * and 8 never did
    assert sent.keys() == {"5"}, sent.events()
    return result, asterisk.wait_labend(result.call_id, since=mark)


def _marker(asterisk: AsteriskLab, uniqueid: str) -> bool:
    return f"/callconsent/withdrawn/{uniqueid}" in asterisk.cli(
        "database show callconsent withdrawn"
    )


def _check_dialplan(asterisk: AsteriskLab, end: LabLine, since: int) -> tuple[list[str], datetime]:
    """The code ran on the agent's channel, confirmed there only, and the caller heard no keys.
    Returns the log lines since ``since`` and the time of the agent's '8'."""
    log = asterisk.read_log(since)
    lines = log.splitlines()
    assert re.search(
        rf"callconsent agent=agent1 caller={re.escape(end.uniqueid)} flag=1 "
        r"result=given",
        log,
    ), "agent1 did not consent at the bridge"
    eight = _first(lines, r"DTMF end '8' received on PJSIP/agent1")
    assert eight, "the agent's 8 never reached Asterisk"
    t8 = _at(eight)
    assert re.search(
        rf"callconsent withdrawn by agent caller={re.escape(end.uniqueid)} "
        r"agent=agent1 at=\S+Z",
        log,
    ), "the agent's withdrawal context never ran"
    gosub = re.findall(
        r"(PJSIP/\S+)\s*\] Internal Gosub\(callconsent-withdraw-agent,s,1\) start|"
        r"Executing \[s@callconsent-withdraw-agent:1\] NoOp\(\"(PJSIP/[^\"]+)\"",
        log,
    )
    chans = {a or b for a, b in gosub}
    assert chans and all(c.startswith("PJSIP/agent1") for c in chans), chans
    plays = re.findall(
        r"Executing \[s@callconsent-withdraw-agent:\d+\] Playback\(\"([^\"]+)\", "
        r"\"([^\"]+)\"",
        log,
    )
    assert plays and all(c.startswith("PJSIP/agent1") for c, _f in plays), plays
    assert all(f.endswith("/callconsent-agent-withdrawn") for _c, f in plays), plays
    # no key of the code reached the caller: none received from it, none passed on to it
    assert not _first(lines, r"DTMF \w+ '[*8]' received on PJSIP/lab-caller")
    assert not _first(
        lines,
        r"DTMF.*'[*8]'.* (on|to) PJSIP/lab-caller.*passthrough|"
        r"DTMF \w+ passthrough '[*8]' on PJSIP/lab-caller",
    )
    assert _first(lines, r"Dangerous function") is None
    return lines, t8


def test_agent_withdrawal_of_training_only_stops_and_deletes_the_recording_within_1s(
    asterisk: AsteriskLab, lab_app: LabApp, config: Config
) -> None:
    mark = asterisk.log_offset()
    _result, end = _call(asterisk, config, "support", "+4520008001")
    assert end.status == "given" and end.recording
    lines, t8 = _check_dialplan(asterisk, end, mark)
    closed = _first(lines, r"MixMonitor close filestream", t8)
    labend = _first(lines, rf"LABEND uniqueid={re.escape(end.uniqueid)} ", t8)
    assert closed and labend, "the training recording never stopped"
    latency = (_at(closed) - t8).total_seconds()
    print(f"agent withdrawal stop latency: {latency * 1000:.0f} ms")  # shown with -s
    assert 0 <= latency < 1.0
    assert (_at(labend) - _at(closed)).total_seconds() > 5.0, "the call must go on"

    entry = wait_ledger(config, end.uniqueid, kind="withdrawn")
    assert (entry["outcome"], entry["purposes"], entry["kept_purposes"], entry["via"]) == (
        "deleted",
        ["training"],
        [],
        "agent_dtmf",
    )
    assert entry["source"] == "app" and "+4520008001" not in json.dumps(entry)
    tomb = _sidecar(config, entry["recording"], until="tombstone")
    assert (tomb["state"], tomb["reason"]) == ("tombstone", "withdrawn")
    assert not Path(end.recording).exists(), "the partial file must be deleted"
    assert wait_ledger(config, end.uniqueid, kind="deleted")["reason"] == "withdrawn"
    assert not _marker(asterisk, end.uniqueid), "the AstDB marker is deleted once finished"


def test_agent_withdrawal_on_documentation_and_training_keeps_documentation_recording(
    asterisk: AsteriskLab, lab_app: LabApp, config: Config
) -> None:
    mark = asterisk.log_offset()
    _result, end = _call(asterisk, config, "mixed-queue", "+4520008002", AGENT_KEYS_TWICE)
    assert end.status == "given" and end.recording
    lines, t8 = _check_dialplan(asterisk, end, mark)
    closed = _first(lines, r"MixMonitor close filestream", t8)
    labend = _first(lines, rf"LABEND uniqueid={re.escape(end.uniqueid)} ", t8)
    assert labend
    assert closed is None or _at(closed) >= _at(labend), "documentation must keep recording"
    # the second press only replays the confirmation: one withdrawal, one event, one entry
    eights = [x for x in lines if re.search(r"DTMF end '8' received on PJSIP/agent1", x)]
    plays = [x for x in lines if "callconsent-withdraw-agent:" in x and "Playback(" in x]
    withdrawn = [x for x in lines if re.search(r"\] NOTICE\[.*callconsent withdrawn by agent", x)]
    assert (len(eights), len(plays), len(withdrawn)) == (2, 2, 1), (eights, plays, withdrawn)
    time.sleep(1.0)  # the app has long answered the first press
    assert (
        len(
            [
                e
                for e in ledger_entries(config)
                if e["type"] == "withdrawn" and e["call"]["uniqueid"] == end.uniqueid
            ]
        )
        == 1
    )

    entry = wait_ledger(config, end.uniqueid, kind="withdrawn")
    assert (entry["outcome"], entry["purposes"], entry["kept_purposes"], entry["via"]) == (
        "documentation_kept",
        ["training"],
        ["documentation"],
        "agent_dtmf",
    )
    doc = _sidecar(config, entry["recording"], until="final")
    sidecar.validate(doc)
    assert doc["state"] == "final" and doc["recording"]["has_audio"]
    assert [(p["purpose"], p["lawful_basis"]) for p in doc["purposes"]] == [
        ("documentation", "6(1)(f)")
    ]  # its own basis (R18)
    assert "purpose:training" not in doc["tags"]
    assert not [p for p in doc.get("agent_purposes", []) if p["purpose"] == "training"]
    days = (parse_stamp(doc["delete_after"]) - parse_stamp(doc["recording"]["started_at"])).days
    assert days == 90  # documentation's own retention
    assert Path(end.recording).exists()
    # documentation went on recording after the code: most of the bridged talk is in the file
    assert doc["recording"]["duration_seconds"] > TALK - 6.0


def _marker_value(asterisk: AsteriskLab, uniqueid: str) -> str | None:
    out = asterisk.cli("database show callconsent withdrawn")
    m = re.search(rf"/callconsent/withdrawn/{re.escape(uniqueid)}\s*:\s*(.+?)\s*$", out, re.M)
    return m.group(1) if m else None


def test_agent_withdrawal_while_the_app_is_down_is_marked_and_finished_at_restart(
    asterisk: AsteriskLab, lab_app: LabApp, config: Config
) -> None:
    """The honest limit: without the app nothing can stop the caller's recording from the
    agent's channel; the marker waits and the app finishes the withdrawal when it is back."""
    timing = route_timing(config, "support")
    mark = asterisk.log_offset()
    call = Call(
        to="queue-support",
        caller_number="+4520008003",
        audio="speech",
        timeline=[Pause(timing.question_end + 1.0), Digit("1"), Pause(TALK)],
    )
    try:
        with (
            agent_phones("agent1", timelines={"agent1": AGENT_KEYS}),
            background_call(call) as pending,
        ):
            dest = asterisk.wait_labdest(call.call_id, since=mark, timeout=60)
            asterisk.wait_for_log(
                rf"agent=agent1 caller={re.escape(dest.uniqueid)} flag=1 "
                r"result=given",
                mark,
                timeout=20,
            )
            assert lab_app.stop() == 0  # before the agent's code (6 s after the answer)
            asterisk.wait_for_log(
                r"callconsent withdrawn by agent caller="
                rf"{re.escape(dest.uniqueid)} ",
                mark,
                timeout=20,
            )
            value = _marker_value(asterisk, dest.uniqueid)
            assert value is not None and value.endswith("Z agent"), value
            result = pending.result(timeout=120)
        assert result.ok and not result.remote_hangup, result.describe()
        end = asterisk.wait_labend(result.call_id, since=mark)
        lines, t8 = _check_dialplan(asterisk, end, mark)
        closed = _first(lines, r"MixMonitor close filestream", t8)
        labend = _first(lines, rf"LABEND uniqueid={re.escape(end.uniqueid)} ", t8)
        assert labend and (closed is None or _at(closed) >= _at(labend)), (
            "nothing should have stopped the recording while the app was down"
        )
        assert not [
            e
            for e in ledger_entries(config)
            if e["type"] == "withdrawn" and e["call"]["uniqueid"] == end.uniqueid
        ]
    finally:
        lab_app.start()
    entry = wait_ledger(config, end.uniqueid, kind="withdrawn")
    assert (entry["outcome"], entry["via"], entry["source"]) == (
        "deleted",
        "agent_dtmf",
        "app_recovered",
    )
    tomb = _sidecar(config, entry["recording"], until="tombstone")
    assert (tomb["state"], tomb["reason"]) == ("tombstone", "withdrawn")
    assert not Path(end.recording).exists()
    deadline = time.monotonic() + 10
    while _marker(asterisk, end.uniqueid):
        assert time.monotonic() < deadline, "the marker stays after the app finished it"
        time.sleep(0.2)


def test_cli_withdrawal_of_a_live_call_stops_the_recording_in_asterisk(
    asterisk: AsteriskLab, lab_app: LabApp, config: Config
) -> None:
    """``callconsent withdraw --call-id`` while the call is up (the API path for an agent)."""
    timing = route_timing(config, "support")
    mark = asterisk.log_offset()
    call = Call(
        to="queue-support",
        caller_number="+4520008004",
        audio="speech",
        timeline=[Pause(timing.question_end + 1.0), Digit("1"), Pause(TALK)],
    )
    with agent_phones("agent1"), background_call(call) as pending:
        dest = asterisk.wait_labdest(call.call_id, since=mark, timeout=60)
        asterisk.wait_for_log(
            rf"agent=agent1 caller={re.escape(dest.uniqueid)} flag=1 "
            r"result=given",
            mark,
            timeout=20,
        )
        time.sleep(3.0)  # bridged, training recording running
        before = datetime.now()  # the sandbox logs the host's local time
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "callconsent.cli.main",
                "withdraw",
                "--call-id",
                dest.uniqueid,
                "--reason",
                "caller asked the agent",
                "--actor",
                "agent1",
                "--json",
                "--config",
                str(DEMO_CONFIG),
            ],
            env={**os.environ, **LAB_ENV},
            capture_output=True,
            text=True,
            check=False,
        )
        after = datetime.now()
        assert proc.returncode == 0, proc.stdout + proc.stderr
        out = json.loads(proc.stdout)
        assert [i["call_id"] for i in out["deleted"]] == [dest.uniqueid]
        assert out["deleted"][0]["live"] is True
        assert out["recording_stops"] == [
            {"call_id": dest.uniqueid, "outcome": "stopped", "detail": ""}
        ]
        result = pending.result(timeout=120)
    assert result.ok and not result.remote_hangup, result.describe()
    end = asterisk.wait_labend(result.call_id, since=mark)
    lines = asterisk.read_log(mark).splitlines()
    closed = _first(lines, r"MixMonitor close filestream")
    labend = _first(lines, rf"LABEND uniqueid={re.escape(end.uniqueid)} ")
    assert closed and labend, "the training recording never stopped"
    print(
        f"cli withdrawal: command {(after - before).total_seconds() * 1000:.0f} ms, recording "
        f"stopped {(_at(closed) - before).total_seconds() * 1000:.0f} ms after it started"
    )
    assert before <= _at(closed) <= after, "the command returns once the recording is stopped"
    assert (_at(labend) - _at(closed)).total_seconds() > 3.0  # the call went on
    assert not Path(end.recording).exists()
    entry = wait_ledger(config, end.uniqueid, kind="withdrawn")
    assert (entry["outcome"], entry["via"], entry["source"]) == ("deleted", "call_id", "withdraw")
