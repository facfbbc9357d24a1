"""A LATER agent's gosub gives up waiting for the app, on the real Asterisk (R1, R15).

The caller says yes to training on route ``support``; agent1 (standing consent) answers from the
lab queue and the app records. agent1 then blind-transfers the caller back into a queue
(``#1`` + ``203``: ``agent2-queue``, agent2 alone, tests/harness/asterisk/extensions-lab.conf),
and agent2 (standing consent too) answers: its gosub raises a second ``CallconsentAgent``. The
app reaches AMI through a TCP proxy (tests/harness/tcp_proxy.py) that lets the first such event
through on time and holds the second back 2.6 s, as a loaded machine's app reads it late. The
gosub gives up, whispers "not for training" to agent2 and raises ``CallconsentAgentLate``.

The app must not refuse training for the whole recording (which would delete what agent1's
consent recorded): it ends training from that moment (ledger ``recording_stopped``, reason
``agent_not_told``, party agent2) and the file keeps what was recorded before.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from callconsent.config import Config
from callconsent.evidence.wav import inspect
from tests.e2e.faults import app_events, app_reading_late, wait_until
from tests.e2e.lab_app import LabApp, ledger_entries, route_timing, set_agent_consent, wait_sidecar
from tests.harness.agent import agent_phones
from tests.harness.asterisk import AsteriskLab, LabLine
from tests.harness.rtp_pcap import Step
from tests.harness.sipp import Call, Digit, Pause, run_call

TALK_BEFORE = 6.0  # seconds from agent1's answer (gosub and whisper included) to its transfer
CALLER_TALKS = 24.0  # seconds the caller stays on after saying yes (the transfer is at ~8 s)
LATE = 2.6  # how late the app reads agent2's CallconsentAgent (the gosub waits 2 s)


def _transfer_back_into_the_queue() -> list[Step]:
    """agent1's keys: talk, ``#1`` (blind transfer), wait for the prompt, then ``203``."""
    keys: list[Step] = [Pause(TALK_BEFORE), Digit("#"), Pause(0.3), Digit("1"), Pause(2.0)]
    for digit in "203":
        keys += [Digit(digit), Pause(0.3)]
    return keys


@dataclass
class LaterLate:
    end: LabLine
    entries: list[dict[str, Any]]  # the call's ledger entries, in order
    gosubs: dict[str, tuple[str, str]]  # agent id -> (result, whisper) of its gosub's log line


def _gosub_lines(asterisk: AsteriskLab, caller: str, since: int) -> dict[str, tuple[str, str]]:
    return {
        m.group(1): (m.group(2), m.group(3))
        for m in asterisk.find_log(
            rf"(?m)\] NOTICE\[.*: callconsent agent=(\S*) caller={caller} flag=\S* "
            r"result=(\S*) whisper=(\S+)$",
            since,
        )
    }


def _call_entries(config: Config, uniqueid: str) -> list[dict[str, Any]]:
    return [e for e in ledger_entries(config) if e.get("call", {}).get("uniqueid") == uniqueid]


@pytest.fixture(scope="module")
def later_late(
    asterisk: AsteriskLab,
    lab_app: LabApp,
    config: Config,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LaterLate]:
    for agent in ("agent1", "agent2"):
        set_agent_consent(agent, "given", actor="e2e:later-late")
    support = route_timing(config, "support")
    folder = tmp_path_factory.mktemp("agent-later-late")
    with (
        app_reading_late(lab_app, folder, "CallconsentAgent", LATE, skip=1) as app,
        agent_phones("agent1", "agent2", timelines={"agent1": _transfer_back_into_the_queue()}),
    ):
        mark = asterisk.log_offset()
        result = run_call(
            Call(
                to="queue-support",
                caller_number="+4520007011",
                audio="speech",
                timeline=[Pause(support.question_end + 1.0), Digit("1"), Pause(CALLER_TALKS)],
            )
        )
        assert result.ok and not result.remote_hangup, result.describe()
        end = asterisk.wait_labend(result.call_id, since=mark)
        assert asterisk.find_log(rf"LABXFER uniqueid={end.uniqueid} to=queue", mark)

        def settled() -> bool:  # the recording's last word: final, or deleted on the way
            kinds = {e["type"] for e in _call_entries(config, end.uniqueid)}
            return bool(kinds & {"recording_final", "deleted"})

        try:
            wait_until(settled, timeout=20, what="the call's recording_final (or deleted)")
        except AssertionError as exc:
            mine = [e for e in app_events(app.log_path, 0) if end.uniqueid in json.dumps(e)]
            raise AssertionError(
                f"{exc}; ledger {_call_entries(config, end.uniqueid)}; "
                f"gosubs {_gosub_lines(asterisk, end.uniqueid, mark)}; app: {mine}"
            ) from None
        yield LaterLate(
            end, _call_entries(config, end.uniqueid), _gosub_lines(asterisk, end.uniqueid, mark)
        )


def test_the_first_agent_was_told_training_and_the_later_agent_not_for_training(
    later_late: LaterLate,
) -> None:
    assert later_late.gosubs["agent1"] == ("given", "training")
    assert later_late.gosubs["agent2"] == ("", "none")  # the wait ended before the app's answer


def test_training_was_decided_once_with_the_first_agents_consent(later_late: LaterLate) -> None:
    decisions = [e for e in later_late.entries if e["type"] == "agent_decision"]
    assert [(d["status"], d["reason"], d["agent"]["id"]) for d in decisions] == [
        ("given", "agent_consent", "agent1")
    ]
    assert decisions[0]["recording"]  # the app started the recording for it


def test_the_later_agents_late_answer_ends_training_from_then_on(later_late: LaterLate) -> None:
    stops = [e for e in later_late.entries if e["type"] == "recording_stopped"]
    assert [(s["reason"], s["outcome"], s["party"]) for s in stops] == [
        ("agent_not_told", "stopped", {"kind": "internal", "agent_id": "agent2"})
    ]
    assert (stops[0]["purposes"], stops[0]["kept_purposes"]) == (["training"], [])
    assert "deleted" not in [e["type"] for e in later_late.entries]


def test_the_recording_keeps_what_the_first_agents_consent_recorded(
    later_late: LaterLate, config: Config
) -> None:
    decision = next(e for e in later_late.entries if e["type"] == "agent_decision")
    audio = config.storage.recordings_dir / decision["recording"]
    doc = wait_sidecar(config, decision["recording"])
    assert doc["state"] == "final"
    assert [p["purpose"] for p in doc["purposes"]] == ["training"]
    assert doc["purposes"][0]["agent_consent"]["agent_id"] == "agent1"
    assert doc["recording"]["stop_reason"] == "agent_not_told"
    assert doc["recording"]["has_audio"] is True
    assert audio.exists() and not inspect(audio).header_only
    # agent1's ~9 s in the bridge, not the caller's 12 s with agent2 after the transfer
    assert doc["recording"]["duration_seconds"] < TALK_BEFORE + 6.0
