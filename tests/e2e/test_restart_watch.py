"""After an app restart, a recorded call in progress is watched again (R1, issue 13).

A caller on the lab's documentation queue route talks with agent1; the app is killed (kill -9)
while the call is recorded and started again; agent1 then blind-transfers the caller to the
lab's outside phone (``#1`` + ``0070``, which rings 2 s). The restarted app found the call
(AMI CoreShowChannels and its sidecar) and stops the recording at the dial, before the outside
phone answers. Times come from Asterisk's log.
"""

from __future__ import annotations

import json
import time

from callconsent.config import Config
from tests.e2e.lab_app import LabApp, log_time, route_timing, wait_ledger
from tests.harness.agent import EXTERNAL, agent_phones
from tests.harness.asterisk import AsteriskLab
from tests.harness.rtp_pcap import Digit, Step
from tests.harness.sipp import Call, Pause, background_call

TRANSFER_AT = 14.0  # seconds after agent1 answers: the app is back by then
RING = 2.0


def _keys() -> list[Step]:
    keys: list[Step] = [Pause(TRANSFER_AT), Digit("#"), Pause(0.3), Digit("1"), Pause(2.0)]
    for digit in "0070":
        keys += [Digit(digit), Pause(0.3)]
    return keys


def _line(asterisk: AsteriskLab, pattern: str, since: int) -> str:
    found = asterisk.find_log(pattern, since=since)
    assert found, f"no log line matching {pattern!r}"
    return asterisk.read_log(since)[: found[0].end()].splitlines()[-1]


def _recovered(lab_app: LabApp, offset: int, timeout: float = 15.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for raw in lab_app.log_path.read_bytes()[offset:].splitlines():
            if b'"recovered_calls"' in raw:
                return int(json.loads(raw)["calls"])
        time.sleep(0.2)
    raise AssertionError("the restarted app never listed the calls in progress")


def test_a_restarted_app_stops_a_recording_transferred_outside_before_the_answer(
    asterisk: AsteriskLab, config: Config, lab_app: LabApp
) -> None:
    timing = route_timing(config, "docs")
    mark = asterisk.log_offset()
    talks = timing.notices_end + TRANSFER_AT + 2.0 + RING + 6.0
    call = Call(to="queue-docs", audio="speech", timeline=[Pause(talks)])
    with (
        agent_phones(
            "agent1", EXTERNAL, timelines={"agent1": _keys()}, ring_seconds={EXTERNAL: RING}
        ),
        background_call(call) as pending,
    ):
        asterisk.wait_for_log(r"Channel PJSIP/agent1-\S+ joined", since=mark, timeout=40)
        time.sleep(1.0)  # bridged and recorded
        offset = lab_app.log_path.stat().st_size
        lab_app.kill()
        try:
            time.sleep(0.5)
        finally:
            lab_app.start()
        assert _recovered(lab_app, offset) >= 1
        result = pending.result(timeout=90)
    assert result.ok, result.describe()
    end = asterisk.wait_labend(result.call_id, since=mark)
    assert end.status == "not_required" and end.recording
    dialled = _line(asterisk, r"Called PJSIP/lab-external", mark)
    answered = _line(asterisk, r"PJSIP/lab-external-\S+ answered ", mark)
    closed = _line(asterisk, r"MixMonitor close filestream", mark)
    after_dial = (log_time(closed) - log_time(dialled)).total_seconds() * 1000
    before_answer = (log_time(answered) - log_time(closed)).total_seconds() * 1000
    print(
        f"after the restart: recording stopped {after_dial:.0f} ms after the dial, "
        f"{before_answer:.0f} ms before the answer"
    )
    assert log_time(closed) < log_time(answered)
    entry = wait_ledger(config, end.uniqueid, kind="recording_stopped")
    assert (entry["reason"], entry["outcome"]) == ("org_left_call", "stopped")
