"""check-config warns when features.conf lacks the objection codes (Art 21, R30)."""

from __future__ import annotations

from pathlib import Path

from callconsent.objection.features_check import objection_feature_warnings
from tests.support.stasis_fakes import load_demo

REPO = Path(__file__).resolve().parents[2]
LAB_FEATURES = REPO / "config" / "asterisk" / "features.conf"


def test_the_lab_features_conf_binds_both_objection_codes(tmp_path: Path) -> None:
    assert objection_feature_warnings(load_demo(tmp_path), LAB_FEATURES) == []


def test_a_missing_agent_code_is_named_with_the_entry_to_add(tmp_path: Path) -> None:
    features = tmp_path / "features.conf"
    text = LAB_FEATURES.read_text(encoding="utf-8")
    features.write_text(
        "\n".join(line for line in text.splitlines() if "callconsent_object_agent" not in line),
        encoding="utf-8",
    )
    (warning,) = objection_feature_warnings(load_demo(tmp_path), features)
    assert "no callconsent_object_agent entry" in warning
    assert "*6,self,Gosub(callconsent-object-agent,s,1)" in warning


def test_a_code_that_clashes_with_the_withdrawal_code_is_reported(tmp_path: Path) -> None:
    features = tmp_path / "features.conf"
    text = LAB_FEATURES.read_text(encoding="utf-8").replace(
        "callconsent_object => *3,", "callconsent_object => *9,"
    )
    features.write_text(text, encoding="utf-8")
    (warning,) = objection_feature_warnings(load_demo(tmp_path), features)
    assert "clashes with callconsent_withdraw" in warning


def test_no_warning_without_a_route_that_may_be_objected_to(tmp_path: Path) -> None:
    def only_training(data: dict[str, object]) -> None:
        routes = data["routes"]
        assert isinstance(routes, dict)
        for name in list(routes):
            if "documentation" in routes[name]["purposes"]:
                routes[name]["enabled"] = False

    config = load_demo(tmp_path, only_training)
    assert objection_feature_warnings(config, tmp_path / "missing.conf") == []
