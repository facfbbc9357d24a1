"""The agent's consent to training, decided at the bridge, on the real Asterisk (R15, issue 4).

Callers dial ``queue-<route>``: the hook, then the lab queue ``support-queue`` whose members are
sipp agent phones (tests/harness/agent.py) running the ``callconsent-agent`` gosub. agent1 has
consented to training, agent2 has refused (set with ``callconsent agent set``, mirrored into
AstDB). The queue is ``linear``: a call gets agent1 unless agent1 is busy, so each wave places
the call meant for agent2 a few seconds after the one that keeps agent1 busy.
"""

from __future__ import annotations

import json
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from callconsent.config import Config
from callconsent.evidence import sidecar
from callconsent.evidence.fsio import parse_stamp
from callconsent.evidence.wav import inspect
from tests.e2e.lab_app import (
    LabApp,
    agent_cli,
    ledger_entries,
    route_timing,
    wait_ledger,
)
from tests.harness.agent import agent_phones
from tests.harness.asterisk import AsteriskLab, LabLine
from tests.harness.sipp import Call, CallResult, Digit, Pause, run_calls

STAGGER = 4.0  # seconds between the call that takes agent1 and the one left for agent2


@dataclass
class Placed:
    result: CallResult
    end: LabLine
    agent: str  # the agent who answered (from the gosub's log line), "" if none
    whisper: str


def _gosub_line(asterisk: AsteriskLab, caller: str, since: int) -> tuple[str, str]:
    for m in asterisk.find_log(
        rf"(?m)\] NOTICE\[.*: callconsent agent=(\S*) caller={caller} flag=\S* "
        r"result=\S* whisper=(\S+)$",
        since,
    ):
        return m.group(1), m.group(2)
    return "", ""


def _place(asterisk: AsteriskLab, calls: dict[str, tuple[float, Call]]) -> dict[str, Placed]:
    """Run the calls concurrently, each after its delay; wait for each to end."""
    mark = asterisk.log_offset()

    def delayed(item: tuple[float, Call]) -> CallResult:
        time.sleep(item[0])
        return run_calls([item[1]])[0]

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        results = list(pool.map(delayed, calls.values()))
    out: dict[str, Placed] = {}
    for name, result in zip(calls, results, strict=True):
        assert result.answered, result.describe()
        end = asterisk.wait_labend(result.call_id, since=mark)
        agent, whisper = _gosub_line(asterisk, end.uniqueid, mark)
        out[name] = Placed(result, end, agent, whisper)
    return out


@pytest.fixture(scope="module")
def placed(asterisk: AsteriskLab, lab_app: LabApp, config: Config) -> dict[str, Placed]:
    for agent, consent in (("agent1", "given"), ("agent2", "refused")):
        proc = agent_cli("set", agent, "--consent", consent, "--actor", "e2e:test")
        assert proc.returncode == 0, proc.stderr
    support, mixed = route_timing(config, "support"), route_timing(config, "mixed-queue")
    talk = 10.0
    yes = Pause(support.question_end + 1.0), Digit("1"), Pause(talk)
    mixed_yes = Pause(mixed.question_end + 1.0), Digit("1"), Pause(talk)
    hold_agent1 = mixed.question_end + 1.0 + STAGGER + talk  # still on agent1 when mixed bridges
    with agent_phones("agent1", "agent2"):
        out = _place(
            asterisk,
            {
                "yes_agent_given": (
                    0.0,
                    Call(to="queue-support", caller_number="+4520000001", timeline=yes),
                ),
                "yes_agent_refused": (
                    STAGGER,
                    Call(to="queue-support", caller_number="+4520000002", timeline=yes),
                ),
            },
        )
        out |= _place(
            asterisk,
            {
                "no": (
                    0.0,
                    Call(
                        to="queue-support",
                        caller_number="+4520000003",
                        timeline=[
                            Pause(support.question_end + 1.0),
                            Digit("2"),
                            Pause(hold_agent1 - support.question_end),
                        ],
                    ),
                ),
                "mixed_agent_refused": (
                    STAGGER,
                    Call(to="queue-mixed-queue", caller_number="+4520000004", timeline=mixed_yes),
                ),
            },
        )
    return out


def _agent_decision(config: Config, uniqueid: str) -> dict[str, Any]:
    return wait_ledger(config, uniqueid, kind="agent_decision")


def _sidecar(config: Config, relative: str, timeout: float = 20.0) -> dict[str, Any]:
    path = (config.storage.recordings_dir / relative).with_suffix(".json")
    deadline = time.monotonic() + timeout
    while True:
        doc: dict[str, Any] = json.loads(path.read_text())
        if doc["state"] != "recording" or time.monotonic() > deadline:
            return doc
        time.sleep(0.2)


def _rms(path: Path) -> float:
    data = path.read_bytes()[44:]
    samples = struct.unpack(f"<{len(data) // 2}h", data[: len(data) // 2 * 2])
    return float((sum(s * s for s in samples) / max(1, len(samples))) ** 0.5)


def test_agent_set_mirrors_the_flag_into_astdb(
    asterisk: AsteriskLab, placed: dict[str, Placed]
) -> None:
    assert "/callconsent/agent/agent1" in asterisk.cli("database show callconsent agent")
    for agent, flag in (("agent1", "1"), ("agent2", "0")):
        out = asterisk.cli(f"database get callconsent agent/{agent}")
        assert f"Value: {flag}" in out, out


def test_agent_list_shows_the_registry(placed: dict[str, Placed]) -> None:
    proc = agent_cli("list", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["agent_id"]: r for r in json.loads(proc.stdout)}
    assert rows["agent1"]["consent"] == "given" and rows["agent2"]["consent"] == "refused"
    assert rows["agent1"]["changed_by"] == "e2e:test"


def test_yes_and_agent_consent_records_training_with_real_audio(
    config: Config, placed: dict[str, Placed]
) -> None:
    p = placed["yes_agent_given"]
    assert (p.agent, p.whisper) == ("agent1", "training")
    decision = _agent_decision(config, p.end.uniqueid)
    assert (decision["status"], decision["reason"]) == ("given", "agent_consent")
    assert decision["agent"]["id"] == "agent1" and decision["agent"]["consent"] == "given"
    doc = _sidecar(config, decision["recording"])
    sidecar.validate(doc)
    assert doc["state"] == "final" and doc["recording"]["has_audio"] is True
    (training,) = doc["purposes"]
    assert training["purpose"] == "training"
    assert training["consent"]["status"] == "given"
    agent = training["agent_consent"]
    assert (agent["status"], agent["agent_id"]) == ("given", "agent1")
    assert agent["agent_consent_changed_at"] and agent["decided_at"]
    assert sorted(doc["tags"]) == ["agent:agent1", "consent:given", "purpose:training"]
    audio = config.storage.recordings_dir / decision["recording"]
    info = inspect(audio)
    assert info.finalised and info.duration_seconds > 5.0, info
    assert _rms(audio) > 300, "the bridged conversation is in the file"


def test_yes_and_agent_without_consent_records_nothing(
    config: Config, placed: dict[str, Placed]
) -> None:
    p = placed["yes_agent_refused"]
    assert (p.agent, p.whisper) == ("agent2", "none")
    decision = _agent_decision(config, p.end.uniqueid)
    assert (decision["status"], decision["reason"]) == ("refused", "agent_refused")
    assert decision["agent"] == {
        "id": "agent2",
        "consent": "refused",
        "changed_at": decision["agent"]["changed_at"],
    }
    assert decision["kept_purposes"] == [] and decision["recording"] is None
    relative = wait_ledger(config, p.end.uniqueid)["recording"]
    doc = _sidecar(config, relative)
    assert doc["state"] == "tombstone" and doc["reason"] == "agent_refused"
    assert not (config.storage.recordings_dir / relative).exists()


def test_caller_no_means_no_recording_and_no_agent_question(
    config: Config, placed: dict[str, Placed]
) -> None:
    p = placed["no"]
    assert p.agent == "agent1" and p.whisper == "none"
    entry = wait_ledger(config, p.end.uniqueid)
    assert entry["status"] == "refused" and entry["recording"] is None
    assert not [
        e
        for e in ledger_entries(config)
        if e["type"] == "agent_decision" and e["call"]["uniqueid"] == p.end.uniqueid
    ]


def test_documentation_and_training_with_agent_refusing_keeps_documentation_only(
    config: Config, placed: dict[str, Placed]
) -> None:
    p = placed["mixed_agent_refused"]
    assert (p.agent, p.whisper) == ("agent2", "documentation")
    decision = _agent_decision(config, p.end.uniqueid)
    assert (decision["status"], decision["reason"]) == ("refused", "agent_refused")
    assert decision["kept_purposes"] == ["documentation"]
    doc = _sidecar(config, decision["recording"])
    sidecar.validate(doc)
    assert doc["state"] == "final" and doc["recording"]["has_audio"] is True
    assert [x["purpose"] for x in doc["purposes"]] == ["documentation"]
    assert doc["tags"] == ["purpose:documentation", "agent:agent2"]
    (waiting,) = doc["agent_purposes"]
    assert waiting["purpose"] == "training"
    assert waiting["agent_consent"]["status"] == "refused"
    started = doc["recording"]["started_at"]
    days = (parse_stamp(doc["delete_after"]) - parse_stamp(started)).days
    assert days == 90, "documentation retention, not training's 30 days"
