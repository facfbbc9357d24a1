"""The agent flags a call as containing health/CPR data, on the real Asterisk (R22, issue 4).

Callers dial ``queue-<route>``: the hook, then the lab queue whose member agent1 (a sipp agent
phone, consenting to training) runs the ``callconsent-agent`` gosub, which enables the
``callconsent_sensitive`` feature (features.conf ``*7``) on the agent's channel. The agent phone's
own audio timeline sends ``*`` then ``7`` a few seconds after it answered, i.e. while bridged.
``[callconsent-sensitive]`` runs on the agent's channel (a beep to the agent only) and tells the
app, which takes training out of the recording.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest

from callconsent.config import Config
from callconsent.evidence import sidecar
from callconsent.evidence.fsio import parse_stamp
from tests.e2e.lab_app import LabApp, route_timing, set_agent_consent, wait_ledger
from tests.e2e.lab_app import wait_sidecar as _sidecar
from tests.harness.agent import agent_phones
from tests.harness.asterisk import AsteriskLab, LabLine
from tests.harness.sipp import Call, CallResult, Digit, Pause, run_call

FLAG_AFTER = 5.0  # seconds after the agent answered (whisper ~1.5 s, then bridged)
TALK = 16.0  # seconds the caller stays after saying yes (covers the flag and some talk after)
AGENT_KEYS = [Pause(FLAG_AFTER), Digit("*"), Pause(0.4), Digit("7")]


@pytest.fixture(scope="module", autouse=True)
def agent1_consents(lab_app: LabApp) -> None:
    set_agent_consent("agent1", actor="e2e:test")


def _call(
    asterisk: AsteriskLab, config: Config, route: str, number: str
) -> tuple[CallResult, LabLine]:
    timing = route_timing(config, route)
    mark = asterisk.log_offset()
    with agent_phones("agent1", timelines={"agent1": AGENT_KEYS}) as phones:
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
    return result, asterisk.wait_labend(result.call_id, since=mark)


def _check_dialplan(asterisk: AsteriskLab, end: LabLine, since: int) -> None:
    """The flag ran on the agent's channel, beeped there only, and the call went on."""
    log = asterisk.read_log(since)
    assert re.search(
        rf"callconsent agent=agent1 caller={re.escape(end.uniqueid)} flag=1 "
        r"result=given",
        log,
    ), "agent1 did not consent at the bridge"
    m = re.search(
        rf"callconsent sensitive caller={re.escape(end.uniqueid)} agent=agent1 at=(\S+)", log
    )
    assert m, "the flag context never ran"
    gosub = re.findall(
        r"(PJSIP/\S+)\s*\] Internal Gosub\(callconsent-sensitive,s,1\) start|"
        r"Executing \[s@callconsent-sensitive:1\] NoOp\(\"(PJSIP/[^\"]+)\"",
        log,
    )
    chans = {a or b for a, b in gosub}
    assert chans and all(c.startswith("PJSIP/agent1") for c in chans), chans
    beeps = re.findall(r"Executing \[s@callconsent-sensitive:\d+\] Playback\(\"([^\"]+)\"", log)
    assert beeps and all(c.startswith("PJSIP/agent1") for c in beeps), beeps
    assert not re.search(r"DTMF end '7' received on PJSIP/lab-caller", log)


def test_flag_on_documentation_and_training_keeps_documentation_only_restricted(
    asterisk: AsteriskLab, lab_app: LabApp, config: Config
) -> None:
    mark = asterisk.log_offset()
    _result, end = _call(asterisk, config, "mixed-queue", "+4520007001")
    assert end.status == "given" and end.recording
    _check_dialplan(asterisk, end, mark)
    entry = wait_ledger(config, end.uniqueid, kind="flagged_sensitive")
    assert (entry["outcome"], entry["removed_purposes"], entry["kept_purposes"]) == (
        "restricted",
        ["training"],
        ["documentation"],
    )
    assert entry["agent"] == "agent1" and "+4520007001" not in json.dumps(entry)
    doc = _sidecar(config, entry["recording"], until="final")
    sidecar.validate(doc)
    assert doc["state"] == "final" and doc["recording"]["has_audio"]
    assert [(p["purpose"], p["lawful_basis"]) for p in doc["purposes"]] == [
        ("documentation", "6(1)(f)")
    ]
    assert (doc.get("sensitive"), doc.get("restricted")) == (True, True)
    assert "flag:sensitive" in doc["tags"] and "purpose:training" not in doc["tags"]
    assert not [p for p in doc.get("agent_purposes", []) if p["purpose"] == "training"]
    days = (parse_stamp(doc["delete_after"]) - parse_stamp(doc["recording"]["started_at"])).days
    assert days == 90  # documentation's own retention
    # documentation went on recording after the flag: most of the bridged talk is in the file
    assert doc["recording"]["duration_seconds"] > TALK - 6.0


def test_flag_on_training_only_deletes_the_recording(
    asterisk: AsteriskLab, lab_app: LabApp, config: Config
) -> None:
    mark = asterisk.log_offset()
    _result, end = _call(asterisk, config, "support", "+4520007002")
    assert end.status == "given" and end.recording
    _check_dialplan(asterisk, end, mark)
    entry = wait_ledger(config, end.uniqueid, kind="flagged_sensitive")
    assert (entry["outcome"], entry["removed_purposes"], entry["kept_purposes"]) == (
        "deleted",
        ["training"],
        [],
    )
    tomb = _sidecar(config, entry["recording"], until="tombstone")
    assert (tomb["state"], tomb["reason"]) == ("tombstone", "sensitive")
    assert not Path(end.recording).exists()
    assert wait_ledger(config, end.uniqueid, kind="deleted")["reason"] == "sensitive"
    log = asterisk.read_log(mark)
    seven = re.search(r"^\[([\d: .-]+)\] DTMF.*DTMF end '7' received on PJSIP/agent1", log, re.M)
    closed = re.search(r"^\[([\d: .-]+)\] VERBOSE.*MixMonitor close filestream", log, re.M)
    labend = re.search(
        rf"^\[([\d: .-]+)\] NOTICE.*LABEND uniqueid={re.escape(end.uniqueid)} ", log, re.M
    )
    assert seven and closed and labend, "the training recording never stopped"
    t7, t_closed, t_end = (datetime.fromisoformat(m.group(1)) for m in (seven, closed, labend))
    latency = (t_closed - t7).total_seconds()
    print(f"sensitive flag stop latency: {latency * 1000:.0f} ms")  # shown with -s
    assert 0 <= latency < 1.0 and (t_end - t_closed).total_seconds() > 3.0
