"""The ``agi`` config section: the FastAGI server of the callconsent-agi hook (issue 17)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from callconsent.config import AgiConfig, ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "config" / "demo.yaml"
ENV = {"CALLCONSENT_ARI_PASSWORD": "callconsent-lab"}


def _load(tmp_path: Path, agi: object) -> AgiConfig:
    data: dict[str, Any] = copy.deepcopy(yaml.safe_load(DEMO.read_text(encoding="utf-8")))
    if agi is not None:
        data["agi"] = agi
    path = tmp_path / "callconsent.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return load_config(path, env=ENV).agi


def _errors(tmp_path: Path, agi: object) -> str:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, agi)
    return "\n".join(caught.value.errors)


def test_without_agi_section_the_server_runs_on_loopback_for_loopback_clients(
    tmp_path: Path,
) -> None:
    assert _load(tmp_path, None) == AgiConfig(
        enabled=True, bind="127.0.0.1", port=4573, allow=("127.0.0.1/32", "::1/128")
    )


def test_agi_section_sets_bind_port_allow_and_can_disable(tmp_path: Path) -> None:
    got = _load(
        tmp_path, {"enabled": False, "bind": "10.0.0.5", "port": 4600, "allow": ["10.0.0.0/24"]}
    )
    assert got == AgiConfig(enabled=False, bind="10.0.0.5", port=4600, allow=("10.0.0.0/24",))


@pytest.mark.parametrize(
    ("agi", "message"),
    [
        ({"bind": "localhost"}, "agi.bind: 'localhost' is not an IP address"),
        ({"port": 70000}, "agi.port: must be a TCP port"),
        ({"allow": ["10.0.0.0/33"]}, "agi.allow[0]: '10.0.0.0/33' is not an address"),
        ({"allow": []}, "agi.allow: must list at least one address"),
        ({"allowed": ["127.0.0.1"]}, "agi.allowed: unknown key; did you mean 'allow'?"),
        ({"enabled": "yes"}, "agi.enabled: must be true or false"),
    ],
)
def test_bad_agi_setting_is_an_error_naming_the_key(
    tmp_path: Path, agi: dict[str, Any], message: str
) -> None:
    assert message in _errors(tmp_path, agi)


def test_shipped_config_documents_the_agi_section() -> None:
    shipped = yaml.safe_load((REPO / "config" / "callconsent.yaml").read_text(encoding="utf-8"))
    assert set(shipped["agi"]) == {"enabled", "bind", "port", "allow"}
