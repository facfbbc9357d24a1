"""Transfers and new parties on the real Asterisk (R1, R15 at transfers, issue 6).

The caller says yes to training on the lab queue; agent1 (standing consent) answers, and the
recording runs on the caller's channel. agent1 then blind-transfers the caller with the
features code ``#1`` + extension (Queue option ``t``; the extensions are in the agent phones'
context, tests/harness/asterisk/extensions-lab.conf): ``202`` is agent2 (no standing consent),
``0070`` the lab's "outside" phone, which rings 2 s before it answers. The app hears Asterisk's
AMI events (DialBegin, BridgeEnter, ...) and stops what may not go on. Times come from
Asterisk's own log.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from callconsent.config import Config
from tests.e2e.lab_app import LabApp, route_timing, set_agent_consent, wait_ledger
from tests.e2e.lab_app import log_time as _at
from tests.e2e.lab_app import wait_sidecar as _sidecar
from tests.harness.agent import EXTERNAL, agent_phones
from tests.harness.asterisk import AsteriskLab, LabLine
from tests.harness.rtp_pcap import Step
from tests.harness.sipp import Call, Digit, Pause, run_call

TALK_BEFORE = 5.0  # seconds agent1 talks before the transfer
CALLER_TALKS = 17.0  # seconds the caller stays on after saying yes (the transfer is at ~11 s)
RING = 2.0  # the outside phone rings this long before it answers
CONSULT = 2.0  # attended transfer: seconds agent1 talks with the outside party first


def _transfer_to(extension: str, *, attended: bool = False) -> list[Step]:
    """agent1's keys: talk, #1 (blind transfer) or #2 (attended), wait for the prompt, then the
    extension; attended: talk with the answering party, then complete with *2."""
    kind = "2" if attended else "1"
    keys: list[Step] = [Pause(TALK_BEFORE), Digit("#"), Pause(0.3), Digit(kind), Pause(2.0)]
    for digit in extension:
        keys += [Digit(digit), Pause(0.3)]
    if attended:
        keys += [Pause(RING + CONSULT), Digit("*"), Pause(0.3), Digit("2")]
    return keys


def _line(asterisk: AsteriskLab, pattern: str, since: int, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    rx = re.compile(pattern)
    while True:
        for line in asterisk.read_log(since).splitlines():
            if rx.search(line):
                return line
        assert time.monotonic() < deadline, f"no log line matching {pattern!r}"
        time.sleep(0.1)


@pytest.fixture(scope="module", autouse=True)
def _agents(lab_app: LabApp) -> None:
    for agent, consent in (("agent1", "given"), ("agent2", "refused")):
        set_agent_consent(agent, consent, actor="e2e:transfers")


def _transferred_call(
    asterisk: AsteriskLab,
    config: Config,
    route: str,
    number: str,
    extension: str,
    *,
    attended: bool = False,
) -> tuple[LabLine, int]:
    timing = route_timing(config, route)
    mark = asterisk.log_offset()
    talks = CALLER_TALKS + (RING + CONSULT + 1.0 if attended else 0.0)
    with agent_phones(
        "agent1",
        "agent2",
        EXTERNAL,
        timelines={"agent1": _transfer_to(extension, attended=attended)},
        ring_seconds={EXTERNAL: RING},
    ):
        result = run_call(
            Call(
                to=f"queue-{route}",
                caller_number=number,
                audio="speech",
                timeline=[Pause(timing.question_end + 1.0), Digit("1"), Pause(talks)],
            )
        )
    assert result.ok and not result.remote_hangup, result.describe()  # the caller hung up
    end = asterisk.wait_labend(result.call_id, since=mark)
    assert end.status == "given" and end.recording
    # blind: the caller's own channel runs the transfer extension; attended: a Local channel
    where = r"\S+" if attended else re.escape(end.uniqueid)
    assert _line(asterisk, rf"LABXFER uniqueid={where} to=", mark)
    return end, mark


def test_blind_transfer_to_an_agent_without_consent_stops_the_training_recording(
    asterisk: AsteriskLab, config: Config
) -> None:
    end, mark = _transferred_call(asterisk, config, "support", "+4520007001", "202")
    joined = _line(asterisk, r"Channel PJSIP/agent2-\S+ joined ", mark)
    closed = _line(asterisk, r"MixMonitor close filestream", mark)
    latency = (_at(closed) - _at(joined)).total_seconds()
    print(
        f"transfer to agent without consent: recording stopped {latency * 1000:.0f} ms "
        "after agent2 joined the bridge"
    )
    assert 0 <= latency < 1.0
    entry = wait_ledger(config, end.uniqueid, kind="recording_stopped")
    assert (entry["reason"], entry["outcome"], entry["party"]) == (
        "agent_not_consenting",
        "stopped",
        {"kind": "internal", "agent_id": "agent2"},
    )
    doc = _sidecar(config, entry["recording"])
    assert doc["state"] == "final" and doc["recording"]["stop_reason"] == "agent_not_consenting"
    assert [p["purpose"] for p in doc["purposes"]] == ["training"]  # consented until then
    assert Path(end.recording).exists()
    # it holds the talk with agent1 only, not the caller's time with agent2
    assert doc["recording"]["duration_seconds"] < TALK_BEFORE + 6.0


def test_blind_transfer_outside_stops_every_recording_before_the_other_side_answers(
    asterisk: AsteriskLab, config: Config
) -> None:
    end, mark = _transferred_call(asterisk, config, "mixed-queue", "+4520007002", "0070")
    dialled = _line(asterisk, r"Called PJSIP/lab-external", mark)
    answered = _line(asterisk, r"PJSIP/lab-external-\S+ answered ", mark)
    closed = _line(asterisk, r"MixMonitor close filestream", mark)
    after_dial = (_at(closed) - _at(dialled)).total_seconds() * 1000
    before_answer = (_at(answered) - _at(closed)).total_seconds() * 1000
    print(
        f"transfer outside: recording stopped {after_dial:.0f} ms after the dial, "
        f"{before_answer:.0f} ms before the answer"
    )
    assert _at(closed) < _at(answered)
    entry = wait_ledger(config, end.uniqueid, kind="recording_stopped")
    assert (entry["reason"], entry["outcome"], entry["party"]["kind"]) == (
        "org_left_call",
        "stopped",
        "external",
    )
    assert entry["purposes"] == ["documentation", "training"]
    doc = _sidecar(config, entry["recording"])
    assert doc["recording"]["stop_reason"] == "org_left_call"
    assert doc["recording"]["duration_seconds"] < TALK_BEFORE + 6.0


def test_attended_transfer_outside_stops_every_recording_when_the_caller_is_handed_over(
    asterisk: AsteriskLab, config: Config
) -> None:
    end, mark = _transferred_call(asterisk, config, "support", "+4520007003", "0070", attended=True)
    answered = _line(asterisk, r"PJSIP/lab-external-\S+ answered ", mark)
    closed = _line(asterisk, r"MixMonitor close filestream", mark)
    caller_bridge = re.search(
        r"<([^>]+)>", _line(asterisk, r"Channel PJSIP/lab-caller-\S+ joined", mark)
    )
    assert caller_bridge
    # the hand-over: the transfer's Local channel (to the outside phone) joins the caller's bridge
    handed = _line(asterisk, rf"Channel Local/0070@\S+;1 joined .*<{caller_bridge.group(1)}>", mark)
    latency = (_at(closed) - _at(handed)).total_seconds()
    print(
        f"attended transfer outside: recording stopped {latency * 1000:.0f} ms after the "
        "caller was handed over"
    )
    assert _at(closed) > _at(answered)  # the consultation is not the caller's: still recording
    assert 0 <= latency < 1.0
    entry = wait_ledger(config, end.uniqueid, kind="recording_stopped")
    assert (entry["reason"], entry["outcome"], entry["party"]["kind"]) == (
        "org_left_call",
        "stopped",
        "external",
    )
    doc = _sidecar(config, entry["recording"])
    assert doc["recording"]["stop_reason"] == "org_left_call"
