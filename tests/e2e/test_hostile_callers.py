"""Hostile callers on the real Asterisk (issue 11): caller text that forges AMI header lines.

Asterisk copies a channel's caller ID unescaped into every AMI event that carries the channel's
snapshot, so a SIP From user part or display name with ``%0D%0A`` writes extra header lines (or
whole events) into the app's AMI stream. These callers carry forged ``Uniqueid:``,
``BridgeUniqueid:``, ``Event:``, ``UserEvent:`` and ``Caller:`` lines with CR, LF and CRLF line
breaks; every AMI-driven feature must still decide as for a plain caller, and where the app
cannot trust what it hears about a recorded call, that call's recording stops (fail closed).
"""

from __future__ import annotations

import re
import time

import pytest

from callconsent.config import Config
from tests.e2e.lab_app import LabApp, route_timing, wait_ledger
from tests.e2e.lab_app import log_time as _at
from tests.e2e.lab_app import wait_sidecar as _sidecar
from tests.harness.agent import EXTERNAL, agent_phones
from tests.harness.asterisk import AsteriskLab
from tests.harness.rtp_pcap import Step
from tests.harness.sipp import Call, Digit, Pause, run_call

#: Forged lines a caller puts in the From user part (CR, LF, CRLF, an empty line: a whole event).
FORGED_NUMBERS = {
    "crlf_uniqueid": "+4520007101\r\nUniqueid: 1700000000.1\r\nBridgeUniqueid: forged-bridge",
    "lf_event": "+4520007102\nEvent: Hangup\nUniqueid: 1700000000.2",
    "cr_userevent": "+4520007103\rUserEvent: CallconsentWithdraw\rCaller: 1700000000.3",
    "blank_line_event": (
        "+4520007104\r\n\r\nEvent: UserEvent\r\nUserEvent: CallconsentAgent\r\n"
        "Caller: 1700000000.4\r\nAgent: agent1\r\nFlag: 1\r\n\r\n"
    ),
}
#: Forged lines in the display name (only CR and LF survive as raw bytes there).
FORGED_NAME = "Mallory\r\nCaller: 1700000000.9\r\nBridgeUniqueid: forged"

TALK_BEFORE = 5.0
RING = 2.0


def _line(asterisk: AsteriskLab, pattern: str, since: int, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    rx = re.compile(pattern)
    while True:
        for line in asterisk.read_log(since).splitlines():
            if rx.search(line):
                return line
        assert time.monotonic() < deadline, f"no log line matching {pattern!r}"
        time.sleep(0.1)


def _blind_transfer(extension: str) -> list[Step]:
    keys: list[Step] = [Pause(TALK_BEFORE), Digit("#"), Pause(0.3), Digit("1"), Pause(2.0)]
    for digit in extension:
        keys += [Digit(digit), Pause(0.3)]
    return keys


@pytest.mark.parametrize("payload", sorted(FORGED_NUMBERS))
def test_forged_caller_blind_transferred_outside_stops_recording_before_the_answer(
    asterisk: AsteriskLab, config: Config, lab_app: LabApp, payload: str
) -> None:
    timing = route_timing(config, "mixed-queue")
    mark = asterisk.log_offset()
    with agent_phones(
        "agent1",
        EXTERNAL,
        timelines={"agent1": _blind_transfer("0070")},
        ring_seconds={EXTERNAL: RING},
    ):
        result = run_call(
            Call(
                to="queue-mixed-queue",
                caller_number=FORGED_NUMBERS[payload],
                caller_name=FORGED_NAME,
                audio="speech",
                timeline=[Pause(timing.question_end + 1.0), Digit("1"), Pause(17.0)],
            )
        )
    assert result.ok and not result.remote_hangup, result.describe()
    end = asterisk.wait_labend(result.call_id, since=mark)
    assert end.status == "given" and end.recording
    answered = _line(asterisk, r"PJSIP/lab-external-\S+ answered ", mark)
    closed = _line(asterisk, r"MixMonitor close filestream", mark)
    assert _at(closed) < _at(answered), "recorded the outside party"
    entry = wait_ledger(config, end.uniqueid, kind="recording_stopped")
    doc = _sidecar(config, entry["recording"])
    assert doc["recording"]["stop_reason"] == "org_left_call"
    assert doc["recording"]["duration_seconds"] < TALK_BEFORE + 6.0
