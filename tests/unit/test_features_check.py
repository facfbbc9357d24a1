"""The caller's in-call withdrawal code in features.conf against the config (R16)."""

from __future__ import annotations

from pathlib import Path

import pytest

from callconsent.config import Config
from callconsent.withdrawal.features_check import bound_sequence, withdraw_feature_warnings
from tests.support.lab import lab_config

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "config" / "asterisk" / "features.conf"


@pytest.fixture(scope="module")
def config() -> Config:
    return lab_config()


def test_the_shipped_features_conf_binds_the_configured_code(config: Config) -> None:
    assert bound_sequence(SHIPPED.read_text()) == ("*9", "Gosub(callconsent-withdraw,s,1)")
    assert withdraw_feature_warnings(config, SHIPPED) == []


def test_an_unreadable_features_conf_is_a_warning_naming_the_entry(
    config: Config, tmp_path: Path
) -> None:
    (warning,) = withdraw_feature_warnings(config, tmp_path / "missing.conf")
    assert "cannot be checked" in warning
    assert "callconsent_withdraw => *9,self,Gosub(callconsent-withdraw,s,1)" in warning


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[applicationmap]\n", "no callconsent_withdraw entry"),
        (
            "[applicationmap]\n;callconsent_withdraw => *9,self,Gosub(callconsent-withdraw,s,1)\n",
            "no callconsent_withdraw entry",
        ),
        (
            "[general]\ncallconsent_withdraw => *9,self,Gosub(callconsent-withdraw,s,1)\n",
            "no callconsent_withdraw entry",
        ),
        (
            "[applicationmap]\ncallconsent_withdraw => *8,self,Gosub(callconsent-withdraw,s,1)\n",
            "bound to '*8'",
        ),
        ("[applicationmap]\ncallconsent_withdraw => *9,self,Playback(x)\n", "runs 'Playback(x)'"),
    ],
)
def test_a_missing_or_different_binding_is_a_warning(
    config: Config, tmp_path: Path, text: str, expected: str
) -> None:
    conf = tmp_path / "features.conf"
    conf.write_text(text)
    warnings = withdraw_feature_warnings(config, conf)
    assert any(expected in w for w in warnings), warnings


def test_the_shipped_features_conf_binds_the_agents_sensitive_flag(config: Config) -> None:
    assert bound_sequence(SHIPPED.read_text(), "callconsent_sensitive") == (
        "*7",
        "Gosub(callconsent-sensitive,s,1)",
    )


@pytest.mark.parametrize(
    ("sensitive", "expected"),
    [
        ("", "no callconsent_sensitive entry"),  # the lab has a special_categories: likely route
        ("callconsent_sensitive => *9,self,Gosub(callconsent-sensitive,s,1)\n", "clashes"),
        ("callconsent_sensitive => *,self,Gosub(callconsent-sensitive,s,1)\n", "clashes"),
    ],
)
def test_a_missing_or_clashing_sensitive_flag_is_a_warning(
    config: Config, tmp_path: Path, sensitive: str, expected: str
) -> None:
    assert any(r.special_categories == "likely" for r in config.routes.values() if r.enabled)
    conf = tmp_path / "features.conf"
    conf.write_text(
        "[applicationmap]\n"
        "callconsent_withdraw => *9,self,Gosub(callconsent-withdraw,s,1)\n"
        f"{AGENT_WITHDRAW}\n" + sensitive
    )
    warnings = withdraw_feature_warnings(config, conf)
    assert warnings and all(expected in w for w in warnings), warnings  # "*" clashes with both


AGENT_WITHDRAW = "callconsent_withdraw_agent => *8,self,Gosub(callconsent-withdraw-agent,s,1)"


def test_the_shipped_features_conf_binds_the_agents_withdrawal_code() -> None:
    assert bound_sequence(SHIPPED.read_text(), "callconsent_withdraw_agent") == (
        "*8",
        "Gosub(callconsent-withdraw-agent,s,1)",
    )


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        ("", "no callconsent_withdraw_agent entry"),
        (
            "callconsent_withdraw_agent => *7,self,Gosub(callconsent-withdraw-agent,s,1)\n",
            "clashes with callconsent_sensitive",
        ),
        (
            "callconsent_withdraw_agent => *,self,Gosub(callconsent-withdraw-agent,s,1)\n",
            "clashes with callconsent_withdraw",
        ),
        (
            "callconsent_withdraw_agent => *8,self,Gosub(callconsent-withdraw,s,1)\n",
            "runs 'Gosub(callconsent-withdraw,s,1)'",
        ),
    ],
)
def test_a_missing_clashing_or_misrouted_agent_withdrawal_code_is_a_warning(
    config: Config, tmp_path: Path, agent: str, expected: str
) -> None:
    conf = tmp_path / "features.conf"
    conf.write_text(
        "[applicationmap]\n"
        "callconsent_withdraw => *9,self,Gosub(callconsent-withdraw,s,1)\n"
        "callconsent_sensitive => *7,self,Gosub(callconsent-sensitive,s,1)\n" + agent
    )
    warnings = withdraw_feature_warnings(config, conf)
    assert any(expected in w for w in warnings), warnings
    assert all("callconsent_withdraw_agent" in w for w in warnings), warnings
