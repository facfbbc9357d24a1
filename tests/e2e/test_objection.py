"""Objection to documentation during the call on the real Asterisk (Art 21, R30, issue 13).

The lab route ``docs`` records for documentation (6(1)(f)) with objection digit 3 and
``do_not_record``; ``queue-docs`` runs the hook, then the lab queue, whose agent phones run the
agent gosub (it enables the agent's objection code ``*6``, config/asterisk/features.conf).
"""

from __future__ import annotations

from callconsent.config import Config
from tests.e2e.lab_app import LabApp, log_time, route_timing, wait_ledger, wait_sidecar
from tests.e2e.objection_calls import object_after_the_notice
from tests.harness.agent import agent_phones
from tests.harness.asterisk import AsteriskLab
from tests.harness.rtp_pcap import Digit
from tests.harness.sipp import Call, Pause, run_call

INTO = 10.0  # seconds into the recording (from the agent's answer) the agent presses *6


def _line(asterisk: AsteriskLab, pattern: str, since: int) -> str:
    found = asterisk.find_log(pattern, since=since)
    assert found, f"no log line matching {pattern!r}"
    text = asterisk.read_log(since)
    return text[: found[0].end()].splitlines()[-1]


def test_agent_objection_code_stops_and_deletes_a_documentation_recording_within_1s(
    asterisk: AsteriskLab, config: Config, lab_app: LabApp
) -> None:
    timing = route_timing(config, "docs")
    mark = asterisk.log_offset()
    keys = [Pause(INTO), Digit("*"), Pause(0.4), Digit("6")]
    with agent_phones("agent1", timelines={"agent1": keys}):
        result = run_call(
            Call(to="queue-docs", audio="speech", timeline=[Pause(timing.notices_end + INTO + 6)])
        )
    assert result.ok, result.describe()
    end = asterisk.wait_labend(result.call_id, since=mark)
    assert end.status == "not_required" and end.recording
    pressed = _line(asterisk, r"Executing \[s@callconsent-object-agent:1\]", mark)
    closed = _line(asterisk, r"MixMonitor close filestream", mark)
    latency = (log_time(closed) - log_time(pressed)).total_seconds()
    print(f"agent *6: recording stopped {latency * 1000:.0f} ms after the code ran")
    assert 0 <= latency < 1.0
    entry = wait_ledger(config, end.uniqueid, kind="objection")
    assert (entry["via"], entry["by"], entry["agent_id"]) == ("agent_dtmf", "agent", "agent1")
    assert (entry["action"], entry["outcome"]) == ("do_not_record", "deleted")
    doc = wait_sidecar(config, end.recording, until="tombstone")
    assert doc["state"] == "tombstone" and doc["reason"] == "objected"
    assert not (config.storage.recordings_dir / entry["recording"]).exists()


def test_objection_digit_one_second_after_the_notice_means_not_recorded(
    asterisk: AsteriskLab, config: Config, lab_app: LabApp
) -> None:
    object_after_the_notice(asterisk, config)


def test_caller_objection_code_while_bridged_stops_and_deletes_within_1s(
    asterisk: AsteriskLab, config: Config, lab_app: LabApp
) -> None:
    timing = route_timing(config, "docs")
    mark = asterisk.log_offset()
    keys = [Pause(timing.notices_end + 8.0), Digit("*"), Pause(0.4), Digit("3"), Pause(5.0)]
    with agent_phones("agent1"):
        result = run_call(Call(to="queue-docs", audio="speech", timeline=keys))
    assert result.ok, result.describe()
    end = asterisk.wait_labend(result.call_id, since=mark)
    pressed = _line(asterisk, r"Executing \[s@callconsent-object:1\]", mark)
    closed = _line(asterisk, r"MixMonitor close filestream", mark)
    latency = (log_time(closed) - log_time(pressed)).total_seconds()
    print(f"caller *3: recording stopped {latency * 1000:.0f} ms after the code ran")
    assert 0 <= latency < 1.0
    entry = wait_ledger(config, end.uniqueid, kind="objection")
    assert (entry["via"], entry["by"], entry["outcome"]) == ("caller_feature", "caller", "deleted")
    assert not (config.storage.recordings_dir / entry["recording"]).exists()
