"""The agent-consent registry: timestamped changes, ledger trail, AstDB mirror, CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from callconsent.agents import registry as agents
from callconsent.agents.registry import AgentRegistry, AgentRegistryError, astdb_key
from callconsent.ami import AmiError
from callconsent.cli.main import build_parser
from callconsent.evidence.ledger import iter_entries, verify_chain
from tests.support.stasis_fakes import load_demo, schema_problems

T0 = datetime(2026, 11, 24, 9, 0, 0, 123000, tzinfo=UTC)
T1 = datetime(2026, 11, 24, 10, 0, 0, tzinfo=UTC)


class FakeAmi:
    def __init__(self, fail: bool = False) -> None:
        self.db: dict[tuple[str, str], str] = {}
        self.fail = fail

    async def db_put(self, family: str, key: str, value: str) -> None:
        if self.fail:
            raise AmiError("DBPut", "not connected")
        self.db[(family, key)] = value

    async def db_del(self, family: str, key: str) -> None:
        self.db.pop((family, key), None)

    async def mixmonitor(self, channel: str, file: str, options: str) -> None: ...
    async def setvar(self, channel: str, variable: str, value: str) -> None: ...


def registry(tmp_path: Path) -> AgentRegistry:
    return AgentRegistry(tmp_path / "state" / "agents.json", tmp_path / "state" / "ledger.jsonl")


def ledger(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "state" / "ledger.jsonl"
    return [line.entry for line in iter_entries(path) if line.entry is not None]


def test_an_empty_registry_knows_no_agent(tmp_path: Path) -> None:
    assert registry(tmp_path).load() == {}
    assert registry(tmp_path).get("agent1") is None  # unknown: never consent


def test_set_stores_consent_with_time_and_actor_and_logs_it(tmp_path: Path) -> None:
    reg = registry(tmp_path)
    record = reg.set("agent1", "given", actor="hr:jane", now=T0)
    assert record.given and record.changed_at == T0 and record.changed_by == "hr:jane"
    assert reg.get("agent1") == record
    doc = json.loads((tmp_path / "state" / "agents.json").read_text())
    assert doc == {
        "schema_version": 1,
        "agents": {
            "agent1": {
                "consent": "given",
                "changed_at": "2026-11-24T09:00:00.123Z",
                "changed_by": "hr:jane",
            }
        },
    }
    (entry,) = ledger(tmp_path)
    assert entry["type"] == "agent_consent"
    assert entry["agent"] == {"id": "agent1", "consent": "given", "changed_by": "hr:jane"}
    assert schema_problems("ledger-entry.schema.json", entry) == []


def test_revoke_makes_the_agent_refused_and_keeps_the_history_in_the_ledger(
    tmp_path: Path,
) -> None:
    reg = registry(tmp_path)
    reg.set("agent1", "given", actor="cli:root", now=T0)
    reg.set("agent2", "given", actor="cli:root", now=T0)
    reg.revoke("agent1", actor="cli:root", now=T1)
    assert reg.get("agent1") is not None and not reg.get("agent1").given  # type: ignore[union-attr]
    assert reg.get("agent2").given  # type: ignore[union-attr]
    assert [e["agent"]["consent"] for e in ledger(tmp_path)] == ["given", "given", "refused"]
    assert verify_chain(tmp_path / "state" / "ledger.jsonl") == []


@pytest.mark.parametrize("bad", ["", "a" * 33, "agent 1", "../x", "agent;1", "ågent"])
def test_agent_ids_outside_the_member_name_pattern_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(AgentRegistryError):
        registry(tmp_path).set(bad, "given", actor="cli:root", now=T0)
    assert not (tmp_path / "state" / "agents.json").exists()


def test_a_consent_other_than_given_or_refused_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AgentRegistryError):
        registry(tmp_path).set("agent1", "yes", actor="cli:root", now=T0)


def test_a_broken_registry_file_is_an_error_not_an_empty_registry(tmp_path: Path) -> None:
    path = tmp_path / "state" / "agents.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"schema_version": 1, "agents": {"agent1": {"consent": "maybe"}}}')
    with pytest.raises(AgentRegistryError, match=r"agents\.agent1"):
        registry(tmp_path).load()


async def test_mirror_and_sync_write_one_and_zero_into_astdb(tmp_path: Path) -> None:
    reg = registry(tmp_path)
    reg.set("agent1", "given", actor="cli:root", now=T0)
    reg.set("agent2", "refused", actor="cli:root", now=T0)
    ami = FakeAmi()
    assert await agents.sync(ami, reg) == 2
    assert ami.db == {("callconsent", "agent/agent1"): "1", ("callconsent", "agent/agent2"): "0"}
    assert astdb_key("agent1") == "agent/agent1"


def test_cli_set_changes_the_registry_and_says_when_astdb_was_not_updated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_demo(tmp_path, lambda data: data["asterisk"].pop("ami"))  # no AMI at all
    monkeypatch.setenv("CALLCONSENT_ARI_PASSWORD", "callconsent-lab")
    code = agent_cli_main(
        ["agent", "set", "agent7", "--consent", "given", "--actor", "t:1"], config
    )
    out = capsys.readouterr()
    assert code == 1 and "AstDB was not updated (asterisk.ami is not configured)" in out.err
    assert AgentRegistry.from_config(config).get("agent7") is not None

    code = agent_cli_main(["agent", "list", "--json"], config)
    rows = json.loads(capsys.readouterr().out)
    assert code == 0 and rows[0]["agent_id"] == "agent7" and rows[0]["changed_by"] == "t:1"


def agent_cli_main(argv: list[str], config: Any) -> int:
    args = build_parser().parse_args([*argv, "--config", str(config.path)])
    result: int = args.run(args)
    return result
