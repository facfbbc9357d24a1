"""Only the commands that connect to Asterisk read the ARI/AMI password (issue 12, item 10).

The nightly purge and the DPO's export, erase and verify run with the config alone; serve,
agent set/sync and withdraw of a call still recording say which variable or file they need.
"""

from __future__ import annotations

import configparser
from datetime import timedelta
from pathlib import Path

import pytest

from callconsent.cli.main import main
from callconsent.config import load_config
from callconsent.lifecycle.live_stop import stop_live_recordings
from tests.support.cli import cli_logging  # noqa: F401 - a fixture
from tests.support.lifecycle_fixtures import NUMBER, T0, make_config, make_store

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "config" / "callconsent.yaml"
PURGE_UNIT = REPO / "deploy" / "systemd" / "callconsent-purge.service"
NOW = (T0 + timedelta(days=91)).isoformat()
ENV_VAR = "CALLCONSENT_ARI_PASSWORD"  # the demo config's ARI and AMI password_env


@pytest.fixture
def config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    store = make_store(tmp_path)
    store.call("4000.1")
    store.call("4000.2", purposes=("documentation", "training"))
    path = make_config(tmp_path).path
    monkeypatch.delenv(ENV_VAR, raising=False)
    return path


OFFLINE = {
    "check-config": ["check-config", "{config}", "--features-conf", "/nonexistent"],
    "index": ["index", "rebuild", "--config", "{config}"],
    "purge": ["purge", "--config", "{config}", "--now", NOW],
    "hold": ["hold", "list", "--config", "{config}"],
    "export": ["export", "--config", "{config}", "--number", NUMBER, "--reason", "t-1"],
    "erase": ["erase", "--config", "{config}", "--call-id", "4000.1", "--reason", "t-2"],
    "withdraw": ["withdraw", "--config", "{config}", "--call-id", "4000.2", "--reason", "t-3"],
    "verify": ["verify", "--config", "{config}"],
    "ropa": ["ropa", "--config", "{config}"],
    "identify": ["identify", "--config", "{config}", "{config}"],
    "reconcile": ["reconcile", "--config", "{config}", "--dry-run"],
}


@pytest.mark.usefixtures("cli_logging")
@pytest.mark.parametrize("command", sorted(OFFLINE))
def test_offline_commands_run_without_the_asterisk_password(
    command: str, config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [a.replace("{config}", str(config_path)) for a in OFFLINE[command]]
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 2, err
    assert ENV_VAR not in err and "error" not in err


@pytest.mark.usefixtures("cli_logging")
def test_check_config_warns_that_the_password_is_missing_and_who_needs_it(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-config", str(config_path), "--features-conf", "/nonexistent"]) == 0
    out = capsys.readouterr().out
    assert f"warning: {config_path}: asterisk.ari.password_env: environment variable " in out
    assert f"{ENV_VAR} is not set (the ARI password: serve" in out


@pytest.mark.usefixtures("cli_logging")
def test_serve_without_the_password_exits_2_naming_the_variable(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--config", str(config_path)]) == 2
    err = capsys.readouterr().err
    assert f"error: {config_path}: asterisk.ari.password_env: environment variable {ENV_VAR}" in err
    assert "Traceback" not in err


@pytest.mark.usefixtures("cli_logging")
def test_agent_sync_without_the_password_exits_1_naming_the_variable(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["agent", "sync", "--config", str(config_path)]) == 1
    err = capsys.readouterr().err
    assert f"asterisk.ami.password_env: environment variable {ENV_VAR} is not set" in err


@pytest.mark.usefixtures("cli_logging")
def test_agent_set_without_the_password_keeps_the_change_and_names_the_variable(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["agent", "set", "agent1", "--consent", "given", "--config", str(config_path)]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("agent1: given")
    assert "AstDB was not updated" in captured.err
    assert f"environment variable {ENV_VAR} is not set" in captured.err


def test_withdraw_live_stop_without_the_password_fails_with_the_variable_named(
    tmp_path: Path,
) -> None:
    config = load_config(make_config(tmp_path).path, env={})
    (result,) = stop_live_recordings(config, ["4000.9"])
    assert result.outcome == "failed"
    assert f"asterisk.ami.password_env: environment variable {ENV_VAR} is not set" in result.detail


def test_shipped_purge_unit_runs_with_the_shipped_config_and_no_secret() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(PURGE_UNIT)
    service = unit["Service"]
    assert "EnvironmentFile" not in service  # the purge never needs the Asterisk password
    assert " purge --config /etc/callconsent/callconsent.yaml " in service["ExecStart"]
    config = load_config(SHIPPED, env={})  # loads: the secret is not read
    writable = [Path(p) for p in service["ReadWritePaths"].split()]
    for needed in (config.storage.recordings_dir, config.storage.ledger_path.parent):
        assert any(needed.is_relative_to(w) for w in writable), needed
