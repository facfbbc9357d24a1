"""The agent's own consent from their own phone, on the real Asterisk (R15, issue 16).

agent1 consents (CLI), a caller on ``queue-support`` says yes and agent1 answers: a
training-only recording tagged ``agent:agent1``. Then agent1 calls ``*4`` from their own phone
(a sipp caller from 127.0.0.2, which pjsip.conf identifies as agent1): the app revokes the
consent, the earlier training-only recording becomes a tombstone, and agent1 hears the
confirmation. ``*5`` gives it again. An answer in time raises no ``CallconsentAgentSelfLate``.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from callconsent.config import Config
from tests.e2e.agent_self import LATE_EVENT, feature_code
from tests.e2e.lab_app import (
    LabApp,
    agent_cli,
    ledger_entries,
    route_timing,
    wait_ledger,
)
from tests.harness.agent import agent_phones
from tests.harness.asterisk import AsteriskLab
from tests.harness.sipp import Call, Digit, Pause, run_calls


def _sidecar(config: Config, relative: str, *, until: str, timeout: float = 20.0) -> dict[str, Any]:
    path = (config.storage.recordings_dir / relative).with_suffix(".json")
    deadline = time.monotonic() + timeout
    while True:
        doc: dict[str, Any] = json.loads(path.read_text())
        if doc["state"] == until or time.monotonic() > deadline:
            return doc
        time.sleep(0.2)


@pytest.fixture(scope="module")
def recorded(asterisk: AsteriskLab, lab_app: LabApp, config: Config) -> str:
    """The relative path of agent1's training-only recording, made before the revocation."""
    proc = agent_cli("set", "agent1", "--consent", "given", "--actor", "e2e:test")
    assert proc.returncode == 0, proc.stderr
    support = route_timing(config, "support")
    mark = asterisk.log_offset()
    with agent_phones("agent1"):
        [result] = run_calls(
            [
                Call(
                    to="queue-support",
                    caller_number="+4520000101",
                    timeline=[Pause(support.question_end + 1.0), Digit("1"), Pause(8.0)],
                )
            ]
        )
    assert result.answered, result.describe()
    end = asterisk.wait_labend(result.call_id, since=mark)
    decision = wait_ledger(config, end.uniqueid, kind="agent_decision")
    assert decision["status"] == "given", decision
    doc = _sidecar(config, decision["recording"], until="final")
    assert doc["state"] == "final" and "agent:agent1" in doc["tags"]
    return str(decision["recording"])


def test_agent_revoke_code_turns_earlier_training_recordings_into_tombstones(
    asterisk: AsteriskLab, config: Config, recorded: str
) -> None:
    result, log = feature_code(asterisk, "*4")
    assert result == "refused"
    assert not re.search(LATE_EVENT, log)  # answered in time: no late event
    doc = _sidecar(config, recorded, until="tombstone")
    assert doc["state"] == "tombstone" and doc["reason"] == "withdrawn"
    assert not (config.storage.recordings_dir / recorded).exists()
    rows = {r["agent_id"]: r for r in json.loads(agent_cli("list", "--json").stdout)}
    assert rows["agent1"]["consent"] == "refused"
    assert rows["agent1"]["changed_by"] == "phone:agent1"
    assert "Value: 0" in asterisk.cli("database get callconsent agent/agent1")
    changes = [e for e in ledger_entries(config) if e["type"] == "agent_consent"]
    assert changes[-1]["agent"]["changed_by"] == "phone:agent1"
    assert changes[-1]["source"] == "phone"


def test_agent_give_code_registers_consent_again(
    asterisk: AsteriskLab, config: Config, recorded: str
) -> None:
    result, log = feature_code(asterisk, "*5")
    assert result == "given"
    assert not re.search(LATE_EVENT, log)
    rows = {r["agent_id"]: r for r in json.loads(agent_cli("list", "--json").stdout)}
    assert rows["agent1"]["consent"] == "given"
    assert "Value: 1" in asterisk.cli("database get callconsent agent/agent1")


def test_the_confirmations_exist_as_prompts(config: Config, recorded: str) -> None:
    folder: Path = config.prompts_dir / "da"
    for name in ("given", "refused", "refused-pending", "failed"):
        assert (folder / f"callconsent-agent-self-{name}.wav").is_file(), name
