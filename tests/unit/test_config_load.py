"""Loading the config: YAML, unknown keys, secrets, paths, the shipped files."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml

from callconsent.cli import main as cli_main
from callconsent.cli.main import main
from callconsent.config import (
    ConfigError,
    MetricsConfig,
    SecretUnavailable,
    load_config,
    recording_prerequisites,
)
from tests.support.cli import cli_logging  # noqa: F401 - a fixture
from tests.support.stasis_fakes import load_demo

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "config" / "demo.yaml"
SHIPPED = REPO / "config" / "callconsent.yaml"
ENV = {"CALLCONSENT_ARI_PASSWORD": "callconsent-lab", "CALLCONSENT_AMI_PASSWORD": "lab-ami"}


def demo_data() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(DEMO.read_text(encoding="utf-8")))


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "callconsent.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def errors_of(tmp_path: Path, data: object, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, data), env=ENV if env is None else env)
    return list(caught.value.errors)


def test_shipped_config_is_valid_and_records_nothing() -> None:
    config = load_config(SHIPPED, env=ENV)
    assert config.routes, "the shipped config is a complete example"
    assert not any(route.enabled for route in config.routes.values())
    purposes = {
        p.purpose: p.lawful_basis for r in config.routes.values() for p in r.purposes.values()
    }
    assert purposes == {"documentation": "6(1)(f)", "training": "6(1)(a)"}
    assert set(config.notices["documentation_v1"].languages) == {"da", "en"}
    assert config.asterisk.ami is not None and config.asterisk.ami.host == "127.0.0.1"
    assert config.parties is not None


def test_shipped_config_and_lab_manager_conf_agree_on_the_ami_user() -> None:
    """The shipped YAML, the README and manager.conf name the same least privileges."""
    shipped = SHIPPED.read_text(encoding="utf-8")
    manager = (REPO / "config" / "asterisk" / "manager.conf").read_text(encoding="utf-8")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = manager[manager.index("[callconsent]") :]
    lines = {
        line.split("=")[0].strip(): line.split("=")[1].strip()
        for line in section.splitlines()
        if "=" in line and not line.startswith(";")
    }
    assert lines["read"] == "call,user,dtmf" and lines["write"] == "call,system"
    assert "read = call,user,dtmf   write = call,system" in shipped
    assert "`read = call,user,dtmf` and `write = call,system`" in readme
    config = load_config(SHIPPED, env=ENV)
    assert config.asterisk.ami is not None
    assert config.asterisk.ami.username == "callconsent"


def test_demo_config_has_the_lab_routes() -> None:
    config = load_config(DEMO, env=ENV)
    routes = config.routes
    assert set(routes) == {
        "sampled",
        "support",
        "confirmed",
        "docs",
        "mixed",
        "mixed-queue",
        "callref",
        "sensitive",
        "closed",
    }
    assert [n for n, r in routes.items() if not r.enabled] == ["closed"]
    assert list(routes["support"].purposes) == ["training"]
    support = routes["support"].purposes["training"].consent
    assert support is not None and support.timeout_seconds == 5
    assert list(routes["docs"].purposes) == ["documentation"]
    assert list(routes["mixed"].purposes) == ["documentation", "training"]
    assert routes["sensitive"].special_categories == "likely"
    assert routes["callref"].call_reference == "withheld"  # R17b; the others: off
    assert {r.call_reference for n, r in routes.items() if n != "callref"} == {"off"}
    assert routes["sensitive"].purposes["documentation"].art9_basis == "9(2)(f)"
    assert config.asterisk.ari.username == "callconsent"
    assert config.asterisk.ari.password.reveal() == "callconsent-lab"
    assert config.prompts_dir == Path("/var/lib/callconsent-lab/prompts")


def test_config_sha256_is_the_hash_of_the_file_bytes() -> None:
    config = load_config(DEMO, env=ENV)
    assert config.sha256 == hashlib.sha256(DEMO.read_bytes()).hexdigest()


def test_config_is_frozen() -> None:
    config = load_config(DEMO, env=ENV)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.prompts_dir = Path("/tmp")  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.routes["x"] = config.routes["support"]  # type: ignore[index]


def test_unknown_key_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    data = demo_data()
    data["routes"]["support"]["enabeld"] = True
    errors = errors_of(tmp_path, data)
    assert any(
        e.endswith("routes.support.enabeld: unknown key; did you mean 'enabled'?") for e in errors
    )


def test_every_error_is_reported_not_only_the_first(tmp_path: Path) -> None:
    data = demo_data()
    data["routes"]["support"]["purposes"]["training"]["lawful_basis"] = "6(1)(f)"
    data["routes"]["docs"]["purposes"]["documentation"]["retention_days"] = 0
    data["storage"]["recordings_dir"] = "relative/dir"
    errors = errors_of(tmp_path, data)
    joined = "\n".join(errors)
    assert "routes.support.purposes.training.lawful_basis" in joined
    assert "routes.docs.purposes.documentation.retention_days: must be > 0" in joined
    assert "storage.recordings_dir: must be an absolute path" in joined


def test_a_prompts_dir_with_a_comma_is_refused_by_name(tmp_path: Path) -> None:
    """Asterisk's ARI plays a comma-separated media list: a comma would split a prompt's URI."""
    data = demo_data()
    data["prompts_dir"] = "/var/lib/callconsent/prompts,v2"
    errors = errors_of(tmp_path, data)
    assert errors == [
        f"{tmp_path / 'callconsent.yaml'}: prompts_dir: must not contain a comma (ARI's media list)"
    ]


def test_error_lines_name_the_file(tmp_path: Path) -> None:
    data = demo_data()
    data["organisation"]["controller_type"] = "company"
    errors = errors_of(tmp_path, data)
    assert errors == [
        f"{tmp_path / 'callconsent.yaml'}: organisation.controller_type: must be one of "
        "private, public_authority, got 'company'"
    ]


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("organisation:\n  name: x\n  bad: [unclosed\nroutes: {}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=ENV)
    assert str(caught.value.errors[0]).startswith(f"{path}:")
    assert "YAML syntax error" in caught.value.errors[0]
    assert f"{path}:4:" in caught.value.errors[0] or f"{path}:5:" in caught.value.errors[0]


def test_key_written_twice_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("routes:\n  a:\n    enabled: false\n    enabled: true\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=ENV)
    assert "'enabled' is written twice" in caught.value.errors[0]
    assert f"{path}:4:" in caught.value.errors[0]


def test_inline_password_is_refused(tmp_path: Path) -> None:
    data = demo_data()
    data["asterisk"]["ari"]["password"] = "hunter2"
    errors = errors_of(tmp_path, data)
    assert any("asterisk.ari.password: a password is never written" in e for e in errors)
    assert not any("hunter2" in e for e in errors)


def test_missing_password_environment_variable_is_named_when_the_secret_is_read(
    tmp_path: Path,
) -> None:
    config = load_config(write(tmp_path, demo_data()), env={})  # loading never reads a secret
    with pytest.raises(SecretUnavailable) as caught:
        config.asterisk.ari.password.reveal()
    assert (
        "asterisk.ari.password_env: environment variable CALLCONSENT_ARI_PASSWORD is not set"
        in str(caught.value)
    )


def test_password_file_readable_by_group_is_refused_when_read(tmp_path: Path) -> None:
    secret = tmp_path / "ari-password"
    secret.write_text("s3cret\n", encoding="utf-8")
    secret.chmod(0o640)
    data = demo_data()
    del data["asterisk"]["ari"]["password_env"]
    data["asterisk"]["ari"]["password_file"] = str(secret)
    config = load_config(write(tmp_path, data), env=ENV)
    problem = config.asterisk.ari.password.problem()
    assert problem is not None
    assert "asterisk.ari.password_file:" in problem and "chmod 600" in problem
    assert "s3cret" not in problem


def test_password_file_that_is_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "ari-password"
    os.mkfifo(fifo, 0o600)
    data = demo_data()
    del data["asterisk"]["ari"]["password_env"]
    data["asterisk"]["ari"]["password_file"] = str(fifo)
    config = load_config(write(tmp_path, data), env=ENV)
    problem = config.asterisk.ari.password.problem()
    assert problem is not None and "is not a regular file" in problem


def test_relative_password_file_is_a_load_error(tmp_path: Path) -> None:
    data = demo_data()
    del data["asterisk"]["ari"]["password_env"]
    data["asterisk"]["ari"]["password_file"] = "ari-password"
    errors = errors_of(tmp_path, data)
    assert any("asterisk.ari.password_file: must be an absolute path" in e for e in errors)


def test_password_file_0600_is_read_and_hidden_from_repr(tmp_path: Path) -> None:
    secret = tmp_path / "ari-password"
    secret.write_text("s3cret\n", encoding="utf-8")
    secret.chmod(0o600)
    data = demo_data()
    del data["asterisk"]["ari"]["password_env"]
    data["asterisk"]["ari"]["password_file"] = str(secret)
    data["asterisk"].pop("ami")  # its password_env would be unset here
    config = load_config(write(tmp_path, data), env={})
    assert config.asterisk.ari.password.reveal() == "s3cret"
    assert "s3cret" not in repr(config)
    assert "s3cret" not in str(config.asterisk.ari.password)


def test_ari_over_plain_http_to_another_host_is_refused(tmp_path: Path) -> None:
    data = demo_data()
    data["asterisk"]["ari"]["url"] = "http://pbx.example:8088"
    errors = errors_of(tmp_path, data)
    assert any("asterisk.ari.url: ARI must be reached over localhost or https" in e for e in errors)


def test_ari_defaults_apply(tmp_path: Path) -> None:
    data = demo_data()
    del data["asterisk"]["ari"]["url"]
    del data["asterisk"]["ari"]["app"]
    config = load_config(write(tmp_path, data), env=ENV)
    assert config.asterisk.ari.url == "http://127.0.0.1:8088"
    assert config.asterisk.ari.app == "callconsent"


def test_missing_audio_is_a_warning_not_an_error(tmp_path: Path) -> None:
    data = demo_data()
    data["prompts_dir"] = str(tmp_path / "prompts")
    config = load_config(write(tmp_path, data), env=ENV)
    assert any(
        "notices.lab_docs_v1.languages.da.audio: no audio at" in w and "(R4)" in w
        for w in config.warnings
    )


@pytest.mark.usefixtures("cli_logging")
def test_check_config_prints_ok_and_returns_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLCONSENT_ARI_PASSWORD", "x")
    data = demo_data()
    data["prompts_dir"] = str(tmp_path / "no-prompts-here")
    path = write(tmp_path, data)
    assert main(["check-config", str(path), "--features-conf", "/nonexistent"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"OK: {path}\n")
    assert "warning: " in out and "no audio at" in out


@pytest.mark.usefixtures("cli_logging")
def test_check_config_prints_every_error_and_returns_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLCONSENT_ARI_PASSWORD", "x")
    data = demo_data()
    data["routes"]["support"]["purposes"]["training"]["consent"]["mode"] = "opt_out"
    data["routes"]["docs"]["purposes"]["documentation"]["necessity_assessment_ref"] = None
    path = write(tmp_path, data)
    assert main(["check-config", str(path), "--features-conf", "/nonexistent"]) == 2
    err = capsys.readouterr().err
    assert "routes.support.purposes.training.consent.mode" in err
    assert "routes.docs.purposes.documentation.necessity_assessment_ref" in err
    assert f"FAILED: {path} (2 error(s))" in err


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml", env=ENV)


def test_parties_lists_the_organisations_channel_patterns() -> None:
    config = load_config(DEMO, env=ENV)
    assert config.parties is not None
    assert config.parties.internal == ("PJSIP/agent*", "Local/agent@callconsent-lab-agent")


def test_bad_party_patterns_are_errors_naming_the_key(tmp_path: Path) -> None:
    data = demo_data()
    data["parties"] = {"internal": ["PJSIP/agent*", "agent 7", 5]}
    errors = errors_of(tmp_path, data)
    assert any("parties.internal[1]" in e and "channel name pattern" in e for e in errors)
    assert any("parties.internal[2]" in e for e in errors)
    data["parties"] = {"internal": []}
    assert any("parties.internal" in e and "at least one" in e for e in errors_of(tmp_path, data))
    data["parties"] = {"internals": ["PJSIP/agent*"]}
    assert any("parties.internals" in e for e in errors_of(tmp_path, data))


def test_without_parties_transfers_are_not_watched_and_a_warning_says_so(tmp_path: Path) -> None:
    data = demo_data()
    del data["parties"]
    config = load_config(write(tmp_path, data), env=ENV)
    assert config.parties is None
    assert any("parties.internal" in w and "transferred" in w for w in config.warnings)


@pytest.mark.parametrize(
    ("drop", "missing"),
    [
        (("ami",), "missing: asterisk.ami"),
        (("parties",), "missing: parties.internal"),
        (("ami", "parties"), "missing: asterisk.ami, parties.internal"),
    ],
)
def test_check_config_fails_naming_both_keys_when_a_recording_route_lacks_the_party_watch(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    drop: tuple[str, ...],
    missing: str,
) -> None:
    monkeypatch.setenv("CALLCONSENT_ARI_PASSWORD", "x")
    data = demo_data()
    for route in data["routes"].values():
        route["enabled"] = False
    data["routes"]["docs"]["enabled"] = True  # documentation only: no agent consent involved
    if "ami" in drop:
        del data["asterisk"]["ami"]
    if "parties" in drop:
        del data["parties"]
    path = write(tmp_path, data)
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "asterisk.ami and parties.internal: both are required while route 'docs'" in err
    assert missing in err
    assert f"FAILED: {path} (1 error(s))" in err


def test_the_party_watch_is_not_required_while_no_route_records(tmp_path: Path) -> None:
    data = demo_data()
    for route in data["routes"].values():
        route["enabled"] = False
    del data["asterisk"]["ami"], data["parties"]
    assert recording_prerequisites(load_config(write(tmp_path, data), env=ENV)) == ()
    assert recording_prerequisites(load_config(DEMO, env=ENV)) == ()


def test_serve_refuses_to_start_without_the_party_watch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLCONSENT_ARI_PASSWORD", "x")
    data = demo_data()
    del data["asterisk"]["ami"]
    path = write(tmp_path, data)
    try:
        assert cli_main.main(["serve", "--config", str(path)]) == 2
    finally:  # serve configures structlog for the process, bound to pytest's captured stderr
        structlog.reset_defaults()
    err = capsys.readouterr().err
    assert "missing: asterisk.ami" in err and "refusing to start" in err
    assert "Traceback" not in err


def test_speaking_rate_of_generated_prompts_is_checked(tmp_path: Path) -> None:
    data = demo_data()
    assert load_config(DEMO, env=ENV).tts_words_per_minute == 340  # the lab's quick calls
    del data["tts_words_per_minute"]
    assert load_config(write(tmp_path, data), env=ENV).tts_words_per_minute == 165
    data["tts_words_per_minute"] = 1000
    assert any("tts_words_per_minute" in e and "80 to 400" in e for e in errors_of(tmp_path, data))


def test_the_agent_gosubs_wait_for_the_answer_is_two_seconds_unless_configured(
    tmp_path: Path,
) -> None:
    data = demo_data()
    assert load_config(write(tmp_path, data), env=ENV).agent_consent.answer_wait_seconds == 2.0
    data["agent_consent"]["answer_wait_seconds"] = 4
    assert load_config(write(tmp_path, data), env=ENV).agent_consent.answer_wait_seconds == 4.0
    for bad in (0.5, 11, "4s"):
        data["agent_consent"]["answer_wait_seconds"] = bad
        assert any("agent_consent.answer_wait_seconds" in e for e in errors_of(tmp_path, data))


def test_metrics_endpoints_default_to_loopback_and_can_be_disabled(tmp_path: Path) -> None:
    assert load_demo(tmp_path).metrics == MetricsConfig(enabled=True, host="127.0.0.1", port=9467)
    off = load_demo(tmp_path, lambda d: d.update(metrics={"enabled": False}))
    assert off.metrics.enabled is False


def test_metrics_on_a_public_address_is_a_warning_and_a_bad_port_an_error(tmp_path: Path) -> None:
    public = load_demo(tmp_path, lambda d: d.update(metrics={"host": "0.0.0.0"}))  # noqa: S104
    assert any("metrics.host" in w and "not loopback" in w for w in public.warnings)
    with pytest.raises(ConfigError, match=r"metrics\.port: must be a TCP port"):
        load_demo(tmp_path, lambda d: d.update(metrics={"port": 70000}))
