"""The app's answer to the agent's own-consent feature code comes after the context's 5 s wait,
on the real Asterisk (R15): the confirmation is never untrue.

The app reaches AMI through a TCP proxy the test controls (tests/harness/tcp_proxy.py) that
holds agent1's ``CallconsentAgentSelf`` UserEvent back 6 s, as a loaded machine's app reads it
late. agent1, who had refused, dials ``*5``: the context gives up, plays "failed, nothing
changed" and raises ``CallconsentAgentSelfLate``; the app, which registers the give after all,
must then set the registry back to refused (ledger, AstDB), so that what the agent heard is true.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from callconsent.config import Config
from tests.e2e.agent_self import LATE_EVENT, feature_code
from tests.e2e.faults import app_events, app_reading_late, wait_until
from tests.e2e.lab_app import LabApp, agent_cli, ledger_entries
from tests.harness.asterisk import AsteriskLab


@dataclass(frozen=True)
class Late:
    result: str  # what the context read once its wait ended
    log: str  # Asterisk's log of the feature-code call
    changes: list[dict[str, Any]]  # agent1's agent_consent ledger entries since the call
    app: list[dict[str, Any]]  # the app's log lines about agent1's own consent


def _changes(config: Config, since: int) -> list[dict[str, Any]]:
    mine = [e for e in ledger_entries(config) if e["type"] == "agent_consent"][since:]
    return [e for e in mine if e["agent"]["id"] == "agent1"]


@pytest.fixture(scope="module")
def late(
    asterisk: AsteriskLab,
    lab_app: LabApp,
    config: Config,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Late]:
    proc = agent_cli("set", "agent1", "--consent", "refused", "--actor", "e2e:test")
    assert proc.returncode == 0, proc.stderr
    since = len([e for e in ledger_entries(config) if e["type"] == "agent_consent"])
    folder = tmp_path_factory.mktemp("agent-self-late")
    with app_reading_late(lab_app, folder, "CallconsentAgentSelf", 6.0) as app:
        result, log = feature_code(asterisk, "*5")
        try:
            wait_until(
                lambda: len(_changes(config, since)) >= 2, timeout=20, what="the give undone"
            )
        except AssertionError as exc:
            mine = [e for e in app_events(app.log_path, 0) if "agent_self" in str(e.get("event"))]
            raise AssertionError(f"{exc}; read {result!r}; app: {mine}") from None
        events = [e for e in app_events(app.log_path, 0) if "agent_self" in str(e.get("event"))]
        yield Late(result, log, _changes(config, since), events)


def test_the_context_gave_up_and_raised_the_late_event(late: Late) -> None:
    assert late.result == ""  # it plays "failed, nothing changed"
    assert [m["consent"] for m in re.finditer(LATE_EVENT, late.log)] == ["given"]


def test_the_give_registered_late_is_undone(late: Late) -> None:
    assert [
        (e["agent"]["consent"], e["agent"]["changed_by"], e["source"]) for e in late.changes
    ] == [
        ("given", "phone:agent1", "phone"),
        ("refused", "phone:agent1", "phone"),
    ]
    [told] = [e for e in late.app if e["event"] == "agent_self_not_told"]
    assert (told["agent"], told["consent"], told["done"]) == ("agent1", "given", "restore_refused")


def test_the_registry_and_astdb_end_as_the_agent_believes(
    late: Late, asterisk: AsteriskLab
) -> None:
    rows = {r["agent_id"]: r for r in json.loads(agent_cli("list", "--json").stdout)}
    assert (rows["agent1"]["consent"], rows["agent1"]["changed_by"]) == ("refused", "phone:agent1")
    assert "Value: 0" in asterisk.cli("database get callconsent agent/agent1")
