"""The legal rules: each feeds a bad config and checks the error names the key path."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from callconsent.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "config" / "demo.yaml"
ENV = {"CALLCONSENT_ARI_PASSWORD": "callconsent-lab"}


@pytest.fixture
def data() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(DEMO.read_text(encoding="utf-8")))


def errors_of(tmp_path: Path, data: object) -> list[str]:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=ENV)
    prefix = f"{path}: "
    assert all(e.startswith(prefix) for e in caught.value.errors)
    return [e.removeprefix(prefix) for e in caught.value.errors]


def has(errors: list[str], key: str, text: str = "") -> bool:
    return any(e.startswith(key + ":") and text in e for e in errors)


def training(data: dict[str, Any], route: str = "support") -> dict[str, Any]:
    return data["routes"][route]["purposes"]["training"]  # type: ignore[no-any-return]


def docs(data: dict[str, Any], route: str = "docs") -> dict[str, Any]:
    return data["routes"][route]["purposes"]["documentation"]  # type: ignore[no-any-return]


def notice_da(data: dict[str, Any], name: str) -> dict[str, Any]:
    return data["notices"][name]["languages"]["da"]  # type: ignore[no-any-return]


# -- lawful bases (R8, R9) ---------------------------------------------------------------


def test_training_needs_consent_basis(tmp_path: Path, data: dict[str, Any]) -> None:
    training(data)["lawful_basis"] = "6(1)(f)"
    errors = errors_of(tmp_path, data)
    assert (
        "routes.support.purposes.training.lawful_basis: training needs consent (6(1)(a)), "
        "got '6(1)(f)'"
    ) in errors


def test_documentation_needs_a_non_consent_basis(tmp_path: Path, data: dict[str, Any]) -> None:
    docs(data)["lawful_basis"] = "6(1)(a)"
    errors = errors_of(tmp_path, data)
    assert has(errors, "routes.docs.purposes.documentation.lawful_basis", "6(1)(c), (e) or (f)")


def test_documentation_needs_a_necessity_assessment(tmp_path: Path, data: dict[str, Any]) -> None:
    del docs(data)["necessity_assessment_ref"]
    errors = errors_of(tmp_path, data)
    assert errors == [
        "routes.docs.purposes.documentation.necessity_assessment_ref: missing: "
        "documentation needs the reference to the controller's necessity assessment "
        "(recording must be strictly necessary)"
    ]


def test_public_authority_cannot_use_legitimate_interest(
    tmp_path: Path, data: dict[str, Any]
) -> None:
    data["organisation"]["controller_type"] = "public_authority"
    errors = errors_of(tmp_path, data)
    assert has(
        errors,
        "routes.docs.purposes.documentation.lawful_basis",
        "public authority cannot use 6(1)(f)",
    )


def test_special_categories_is_a_required_choice_per_route(
    tmp_path: Path, data: dict[str, Any]
) -> None:
    del data["routes"]["docs"]["special_categories"]
    errors = errors_of(tmp_path, data)
    assert errors == [
        "routes.docs.special_categories: missing: choose likely or unlikely for this route: "
        "may callers mention health or other special categories of data (Art 9)? There is no "
        "default (R22)"
    ]


def test_special_categories_has_no_default_for_a_public_authority_either(
    tmp_path: Path, data: dict[str, Any]
) -> None:
    data["organisation"]["controller_type"] = "public_authority"
    del data["routes"]["docs"]["special_categories"]
    errors = errors_of(tmp_path, data)
    assert has(errors, "routes.docs.special_categories", "missing: choose likely (the usual")


def test_special_categories_likely_needs_an_art9_basis(
    tmp_path: Path, data: dict[str, Any]
) -> None:
    data["routes"]["docs"]["special_categories"] = "likely"
    errors = errors_of(tmp_path, data)
    assert has(
        errors, "routes.docs.purposes.documentation.art9_basis", "Art 9(2) basis is required"
    )


def test_emergency_quality_without_consent_needs_an_emergency_route(
    tmp_path: Path, data: dict[str, Any]
) -> None:
    data["notices"]["lab_emergency_v1"] = copy.deepcopy(data["notices"]["lab_docs_v1"])
    data["notices"]["lab_emergency_v1"]["purpose"] = "emergency_quality"
    docs(data)["notice"] = "lab_emergency_v1"
    data["routes"]["docs"]["purposes"] = {"emergency_quality": docs(data)}
    errors = errors_of(tmp_path, data)
    assert has(
        errors,
        "routes.docs.purposes.emergency_quality.lawful_basis",
        "only on routes with emergency_service: true and a justification_ref",
    )


def test_emergency_quality_without_consent_passes_on_a_justified_emergency_route(
    tmp_path: Path, data: dict[str, Any]
) -> None:
    data["notices"]["lab_emergency_v1"] = copy.deepcopy(data["notices"]["lab_docs_v1"])
    data["notices"]["lab_emergency_v1"]["purpose"] = "emergency_quality"
    purpose = docs(data)
    purpose["notice"] = "lab_emergency_v1"
    data["routes"]["docs"]["purposes"] = {"emergency_quality": purpose}
    data["routes"]["docs"]["emergency_service"] = True
    data["routes"]["docs"]["justification_ref"] = "JUST-1"
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    config = load_config(path, env=ENV)
    assert config.routes["docs"].purposes["emergency_quality"].consent is None


def test_emergency_service_needs_a_justification(tmp_path: Path, data: dict[str, Any]) -> None:
    data["routes"]["docs"]["emergency_service"] = True
    assert has(errors_of(tmp_path, data), "routes.docs.justification_ref", "(R9)")


# -- consent design (R11-R13) ------------------------------------------------------------


def test_opt_out_consent_is_rejected(tmp_path: Path, data: dict[str, Any]) -> None:
    training(data)["consent"]["mode"] = "opt_out"
    assert has(
        errors_of(tmp_path, data), "routes.support.purposes.training.consent.mode", "only opt_in"
    )


def test_accept_and_refuse_digit_must_differ(tmp_path: Path, data: dict[str, Any]) -> None:
    training(data)["consent"]["refuse_digit"] = "1"
    assert has(
        errors_of(tmp_path, data),
        "routes.support.purposes.training.consent.refuse_digit",
        "must differ from accept_digit",
    )


@pytest.mark.parametrize("digit", ["*", "#", "12", "a", ""])
def test_accept_digit_must_be_one_digit(tmp_path: Path, data: dict[str, Any], digit: str) -> None:
    training(data)["consent"]["accept_digit"] = digit
    assert has(
        errors_of(tmp_path, data),
        "routes.support.purposes.training.consent.accept_digit",
        "must be one digit 0-9",
    )


@pytest.mark.parametrize(
    ("key", "value", "text"),
    [
        ("timeout_seconds", 0, "1..30"),
        ("timeout_seconds", 31, "1..30"),
        ("retries", 2, "0 or 1"),
    ],
)
def test_consent_timing_limits(
    tmp_path: Path, data: dict[str, Any], key: str, value: int, text: str
) -> None:
    training(data)["consent"][key] = value
    assert has(errors_of(tmp_path, data), f"routes.support.purposes.training.consent.{key}", text)


def test_sample_rate_is_between_0_and_1(tmp_path: Path, data: dict[str, Any]) -> None:
    training(data)["sample_rate"] = 1.5
    assert has(
        errors_of(tmp_path, data), "routes.support.purposes.training.sample_rate", "between 0 and 1"
    )


def test_retention_must_be_positive(tmp_path: Path, data: dict[str, Any]) -> None:
    data["notices"]["lab_docs_v1"]["retention_days"] = -1
    assert has(errors_of(tmp_path, data), "notices.lab_docs_v1.retention_days", "must be > 0")


def test_documentation_cannot_ask_a_consent_question(tmp_path: Path, data: dict[str, Any]) -> None:
    docs(data)["consent"] = {"accept_digit": "1"}
    assert has(
        errors_of(tmp_path, data), "routes.docs.purposes.documentation.consent", "asks no consent"
    )


def test_question_must_name_the_accept_digit(tmp_path: Path, data: dict[str, Any]) -> None:
    training(data)["consent"]["accept_digit"] = "5"
    assert has(
        errors_of(tmp_path, data),
        "routes.support.purposes.training.consent.accept_digit",
        "does not name digit 5",
    )


# -- notices (R5, R6, R14, R20, R22) -------------------------------------------------------


def test_notice_without_rights_is_rejected(tmp_path: Path, data: dict[str, Any]) -> None:
    del notice_da(data, "lab_docs_v1")["rights"]
    assert has(errors_of(tmp_path, data), "notices.lab_docs_v1.languages.da.rights", "missing")


@pytest.mark.parametrize("element", ["controller", "purpose", "basis", "retention", "info_url"])
def test_notice_must_name_each_first_layer_element(
    tmp_path: Path, data: dict[str, Any], element: str
) -> None:
    del notice_da(data, "lab_docs_v1")[element]
    assert has(errors_of(tmp_path, data), f"notices.lab_docs_v1.languages.da.{element}", "missing")


def test_notice_element_must_be_said_in_the_transcript(
    tmp_path: Path, data: dict[str, Any]
) -> None:
    notice_da(data, "lab_docs_v1")["rights"] = "Du har ret til dataportabilitet"
    assert has(
        errors_of(tmp_path, data),
        "notices.lab_docs_v1.languages.da.rights",
        "not found in the transcript",
    )


def test_notice_must_name_the_controller(tmp_path: Path, data: dict[str, Any]) -> None:
    data["organisation"]["name"] = "Andet Firma ApS"
    assert has(
        errors_of(tmp_path, data), "notices.lab_docs_v1.languages.da.controller", "Andet Firma ApS"
    )


def test_consent_notice_needs_withdrawal(tmp_path: Path, data: dict[str, Any]) -> None:
    del notice_da(data, "lab_training_v1")["withdrawal"]
    assert has(
        errors_of(tmp_path, data), "notices.lab_training_v1.languages.da.withdrawal", "Art 7(3)"
    )


def test_legitimate_interest_notice_needs_objection(tmp_path: Path, data: dict[str, Any]) -> None:
    text = notice_da(data, "lab_docs_v1")
    text["transcript"] = text["transcript"].replace(text.pop("objection"), "")
    for route in ("docs", "mixed", "sensitive", "closed"):
        del docs(data, route)["objection"]
    assert has(errors_of(tmp_path, data), "notices.lab_docs_v1.languages.da.objection", "Art 21(4)")


def test_objection_must_be_its_own_sentence(tmp_path: Path, data: dict[str, Any]) -> None:
    text = notice_da(data, "lab_docs_v1")
    text["transcript"] = text["transcript"].replace(
        "Du kan gøre indsigelse ved at trykke 3. Du har ret til indsigt.",
        "Du har ret til indsigt og du kan gøre indsigelse ved at trykke 3.",
    )
    text["rights"] = "Du har ret til indsigt"
    text["objection"] = "du kan gøre indsigelse ved at trykke 3"
    assert has(errors_of(tmp_path, data), "notices.lab_docs_v1.languages.da.objection", "own")


@pytest.mark.parametrize(
    "sentence", ["Tryk 1 for ja.", "Press 1 to continue.", "Vi beder om dit samtykke."]
)
def test_documentation_notice_must_not_sound_like_consent(
    tmp_path: Path, data: dict[str, Any], sentence: str
) -> None:
    text = notice_da(data, "lab_docs_v1")
    text["transcript"] += " " + sentence
    assert has(
        errors_of(tmp_path, data),
        "notices.lab_docs_v1.languages.da.transcript",
        "describes a non-consent basis as consent",
    )


def test_documentation_notice_cannot_carry_a_question(tmp_path: Path, data: dict[str, Any]) -> None:
    notice_da(data, "lab_docs_v1")["question"] = {"audio": "q", "transcript": "Tryk 1."}
    assert has(
        errors_of(tmp_path, data), "notices.lab_docs_v1.languages.da.question", "asks no consent"
    )


def test_notice_needs_danish(tmp_path: Path, data: dict[str, Any]) -> None:
    del data["notices"]["lab_docs_v1"]["languages"]["da"]
    assert has(errors_of(tmp_path, data), "notices.lab_docs_v1.languages.da", "fallback")


def test_referenced_notice_must_exist(tmp_path: Path, data: dict[str, Any]) -> None:
    training(data)["notice"] = "lab_training_v2"
    assert has(
        errors_of(tmp_path, data), "routes.support.purposes.training.notice", "no notice named"
    )


def test_notice_must_be_for_the_same_purpose(tmp_path: Path, data: dict[str, Any]) -> None:
    training(data)["notice"] = "lab_docs_v1"
    assert has(
        errors_of(tmp_path, data), "routes.support.purposes.training.notice", "is for documentation"
    )


def test_changing_retention_needs_a_new_notice_version(
    tmp_path: Path, data: dict[str, Any]
) -> None:
    training(data)["retention_days"] = 60
    assert has(
        errors_of(tmp_path, data),
        "routes.support.purposes.training.retention_days",
        "needs a new notice version (R20)",
    )


def test_changing_basis_needs_a_new_notice_version(tmp_path: Path, data: dict[str, Any]) -> None:
    docs(data)["lawful_basis"] = "6(1)(e)"
    assert has(
        errors_of(tmp_path, data),
        "routes.docs.purposes.documentation.lawful_basis",
        "needs a new notice version (R20)",
    )


def test_sensitive_documentation_needs_art9_basis(tmp_path: Path, data: dict[str, Any]) -> None:
    del docs(data, "sensitive")["art9_basis"]
    assert has(
        errors_of(tmp_path, data), "routes.sensitive.purposes.documentation.art9_basis", "R22"
    )


def test_sensitive_training_needs_the_explicit_question(
    tmp_path: Path, data: dict[str, Any]
) -> None:
    del notice_da(data, "lab_training_v1")["explicit_question"]
    assert has(
        errors_of(tmp_path, data), "routes.sensitive.purposes.training.notice", "explicit_question"
    )


def test_explicit_question_must_name_health_data(tmp_path: Path, data: dict[str, Any]) -> None:
    notice_da(data, "lab_training_v1")["explicit_question"]["transcript"] = (
        "Tryk 1 for ja, 2 for nej."
    )
    assert has(
        errors_of(tmp_path, data),
        "notices.lab_training_v1.languages.da.explicit_question.transcript",
        "helbred",
    )


# -- routes ------------------------------------------------------------------------------


def test_enabled_route_needs_purposes(tmp_path: Path, data: dict[str, Any]) -> None:
    data["routes"]["support"]["purposes"] = {}
    assert has(errors_of(tmp_path, data), "routes.support.purposes", "at least one purpose")


def test_route_name_must_be_simple(tmp_path: Path, data: dict[str, Any]) -> None:
    data["routes"]["Support Line"] = data["routes"].pop("support")
    assert has(errors_of(tmp_path, data), "routes.Support Line", "^[a-z][a-z0-9_-]{0,31}$")


def test_unknown_purpose_is_rejected(tmp_path: Path, data: dict[str, Any]) -> None:
    data["routes"]["support"]["purposes"]["analytics"] = copy.deepcopy(
        training(data)
    )  # no YAML alias
    assert has(errors_of(tmp_path, data), "routes.support.purposes.analytics", "unknown purpose")


def test_language_menu_digit_must_not_clash_with_consent(
    tmp_path: Path, data: dict[str, Any]
) -> None:
    menu = data["routes"]["mixed"]["language_menu"]
    menu["options"] = {"1": "en"}
    menu["prompt"]["transcript"] = "For English, press 1."
    assert has(
        errors_of(tmp_path, data), "routes.mixed.language_menu.options.1", "training accept_digit"
    )


def test_language_menu_digit_must_not_clash_with_withdrawal(
    tmp_path: Path, data: dict[str, Any]
) -> None:
    menu = data["routes"]["mixed"]["language_menu"]
    menu["options"] = {"9": "en"}
    menu["prompt"]["transcript"] = "For English, press 9."
    assert has(
        errors_of(tmp_path, data), "routes.mixed.language_menu.options.9", "withdraw_sequence"
    )


def test_objection_digit_must_not_clash_with_consent(tmp_path: Path, data: dict[str, Any]) -> None:
    docs(data, "mixed")["objection"]["digit"] = "1"
    assert has(
        errors_of(tmp_path, data),
        "routes.mixed.purposes.documentation.objection.digit",
        "training accept_digit",
    )


def test_notice_naming_an_objection_key_needs_the_route_digit(
    tmp_path: Path, data: dict[str, Any]
) -> None:
    del docs(data)["objection"]
    assert has(
        errors_of(tmp_path, data),
        "routes.docs.purposes.documentation.objection.digit",
        "sets no objection digit",
    )


def test_record_with_grounds_needs_a_reference(tmp_path: Path, data: dict[str, Any]) -> None:
    docs(data)["objection"]["action"] = "record_with_grounds"
    assert has(
        errors_of(tmp_path, data),
        "routes.docs.purposes.documentation.objection.compelling_grounds_ref",
        "Art 21(1)",
    )


def test_a_dialled_number_belongs_to_one_route(tmp_path: Path, data: dict[str, Any]) -> None:
    data["routes"]["support"]["dids"] = ["4570000001"]
    data["routes"]["docs"]["dids"] = ["4570000001"]
    assert has(errors_of(tmp_path, data), "routes.docs.dids", "already used by route support")
