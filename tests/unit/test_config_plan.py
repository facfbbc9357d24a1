"""From config to call: route selection and the plan the consent machine runs."""

from __future__ import annotations

import copy
import hashlib
import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from callconsent.config import Config, _audio, build_plan, load_config, route_for

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "config" / "demo.yaml"
ENV = {"CALLCONSENT_ARI_PASSWORD": "callconsent-lab"}


def never(rate: float) -> bool:
    raise AssertionError(f"sampled({rate}) must not be called")


def load(tmp_path: Path, change: Any = None) -> Config:
    data: dict[str, Any] = copy.deepcopy(yaml.safe_load(DEMO.read_text(encoding="utf-8")))
    data["prompts_dir"] = str(tmp_path / "prompts")
    if change is not None:
        change(data)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_config(path, env=ENV)


def test_route_is_chosen_by_hook_argument(tmp_path: Path) -> None:
    config = load(tmp_path)
    route = route_for(config, "docs", "4570000001")
    assert route is not None and route.name == "docs"


def test_route_is_chosen_by_dialled_number_without_argument(tmp_path: Path) -> None:
    config = load(tmp_path, lambda d: d["routes"]["mixed"].update(dids=["+4570000002"]))
    route = route_for(config, None, "4570000002")
    assert route is not None and route.name == "mixed"
    assert route_for(config, "", "+4570000002") is route


def test_disabled_or_unknown_route_is_out_of_scope(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert route_for(config, "closed", None) is None
    assert route_for(config, "nosuch", None) is None
    assert route_for(config, None, "12345") is None
    assert route_for(config, None, None) is None


def test_training_route_plan_asks_with_the_configured_digits(tmp_path: Path) -> None:
    config = load(tmp_path)
    plan = build_plan(config, "support", sampled=never)
    assert plan.route == "support" and plan.language == "da"
    assert [p.prompt_id for p in plan.notices] == ["lab_training_v1.notice"]
    (purpose,) = plan.purposes
    assert (purpose.purpose, purpose.lawful_basis, purpose.retention_days) == (
        "training",
        "6(1)(a)",
        30,
    )
    assert purpose.sampled and purpose.consent is not None
    question = purpose.consent
    assert question.question.prompt_id == "lab_training_v1.question"
    assert question.question.media == f"sound:{tmp_path}/prompts/da/lab-training-v1-question"
    assert question.retry.prompt_id == "lab_training_v1.retry"
    assert (question.accept_digit, question.refuse_digit) == ("1", "2")
    assert (question.timeout_seconds, question.retries) == (5.0, 1)


def test_prompt_version_is_the_sha256_of_the_audio_on_disk(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert build_plan(config, "docs", sampled=never).notices[0].version == ""
    wav = tmp_path / "prompts" / "da" / "lab-docs-v1.wav"
    wav.parent.mkdir(parents=True)
    wav.write_bytes(b"RIFF fake audio")
    notice = build_plan(config, "docs", sampled=never).notices[0]
    assert notice.version == hashlib.sha256(b"RIFF fake audio").hexdigest()
    assert notice.media == f"sound:{tmp_path}/prompts/da/lab-docs-v1"


def test_prompt_version_follows_an_audio_file_replaced_or_rewritten_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Versions are kept between calls, but a changed file is hashed again: replaced by a
    rename, or rewritten in place with its old size and modification time (the ctime moves)."""
    monkeypatch.setattr(_audio, "_SETTLED_NS", -1)  # files written just now count as settled
    config = load(tmp_path)
    wav = tmp_path / "prompts" / "da" / "lab-docs-v1.wav"
    wav.parent.mkdir(parents=True)
    wav.write_bytes(b"RIFF first take")
    assert build_plan(config, "docs", sampled=never).notices[0].version == sha(b"RIFF first take")
    new = wav.with_name("new.wav")
    new.write_bytes(b"RIFF second take")
    new.replace(wav)
    assert build_plan(config, "docs", sampled=never).notices[0].version == sha(b"RIFF second take")
    before = wav.stat()
    time.sleep(0.02)  # past the file system's clock tick
    wav.write_bytes(b"RIFF third  take")  # same size
    os.utime(wav, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert build_plan(config, "docs", sampled=never).notices[0].version == sha(b"RIFF third  take")


def test_prompt_version_prefers_the_first_audio_format_and_skips_a_folder(tmp_path: Path) -> None:
    config = load(tmp_path)
    base = tmp_path / "prompts" / "da" / "lab-docs-v1"
    base.parent.mkdir(parents=True)
    base.with_suffix(".wav").mkdir()  # not a file: not the audio
    base.with_suffix(".gsm").write_bytes(b"gsm audio")
    base.with_suffix(".sln").write_bytes(b"sln audio")
    assert build_plan(config, "docs", sampled=never).notices[0].version == sha(b"sln audio")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_documentation_route_plan_needs_no_consent(tmp_path: Path) -> None:
    plan = build_plan(load(tmp_path), "docs", sampled=never)
    (purpose,) = plan.purposes
    assert purpose.consent is None and purpose.lawful_basis == "6(1)(f)"
    assert purpose.retention_days == 90


def test_mixed_route_plays_the_non_consent_notice_first(tmp_path: Path) -> None:
    plan = build_plan(load(tmp_path), "mixed", sampled=never)
    assert [p.prompt_id for p in plan.notices] == ["lab_docs_v1.notice", "lab_training_v1.notice"]
    assert [p.purpose for p in plan.purposes] == ["documentation", "training"]


def test_menu_choice_gives_english_prompts(tmp_path: Path) -> None:
    plan = build_plan(load(tmp_path), "mixed", "en", sampled=never)
    assert plan.language == "en"
    assert all(p.language == "en" and "/prompts/en/" in p.media for p in plan.notices)


def test_missing_language_falls_back_to_danish(tmp_path: Path) -> None:
    def drop_english(data: dict[str, Any]) -> None:
        del data["notices"]["lab_training_v1"]["languages"]["en"]

    config = load(tmp_path, drop_english)
    assert any("callers choosing en hear Danish" in w for w in config.warnings)
    plan = build_plan(config, "mixed", "en", sampled=never)
    assert plan.language == "da"
    assert all(p.language == "da" for p in plan.notices)


def test_unsampled_call_is_neither_asked_nor_told(tmp_path: Path) -> None:
    def sample(data: dict[str, Any]) -> None:
        data["routes"]["mixed"]["purposes"]["training"]["sample_rate"] = 0.1

    config = load(tmp_path, sample)
    rates: list[float] = []

    def decide(rate: float) -> bool:
        rates.append(rate)
        return False

    plan = build_plan(config, "mixed", sampled=decide)
    assert rates == [0.1]
    assert [p.prompt_id for p in plan.notices] == ["lab_docs_v1.notice"]
    training = plan.purposes[1]
    assert training.purpose == "training" and not training.sampled
    assert build_plan(config, "mixed", sampled=lambda rate: True).purposes[1].sampled


def test_sample_rate_zero_never_asks(tmp_path: Path) -> None:
    def zero(data: dict[str, Any]) -> None:
        data["routes"]["support"]["purposes"]["training"]["sample_rate"] = 0.0

    plan = build_plan(load(tmp_path, zero), "support", sampled=never)
    assert plan.notices == () and not plan.purposes[0].sampled


def test_sensitive_route_asks_the_explicit_question(tmp_path: Path) -> None:
    plan = build_plan(load(tmp_path), "sensitive", sampled=never)
    training = plan.purposes[1].consent
    assert training is not None
    assert training.question.prompt_id == "lab_training_v1.explicit_question"


def test_disabled_route_plan_records_nothing(tmp_path: Path) -> None:
    plan = build_plan(load(tmp_path), "closed", sampled=never)
    assert plan.notices == () and plan.purposes == ()


def test_unknown_route_plan_is_a_key_error(tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        build_plan(load(tmp_path), "nosuch", sampled=never)


def test_menu_route_plan_offers_the_same_call_in_each_menu_language(tmp_path: Path) -> None:
    config = load(tmp_path)
    plan = build_plan(config, "mixed", sampled=never)
    assert plan.menu is not None
    assert plan.language == "da"
    assert plan.menu.prompt.language == "en"
    ((digit, english),) = plan.menu.options
    assert digit == "8"
    assert english.language == "en" and english.menu is None
    assert {p.language for p in english.notices} == {"en"}
    assert [p.purpose for p in english.purposes] == [p.purpose for p in plan.purposes]


def test_menu_languages_share_one_sampling_decision_per_purpose(tmp_path: Path) -> None:
    config = load(
        tmp_path, lambda d: d["routes"]["mixed"]["purposes"]["training"].update(sample_rate=0.5)
    )
    answers = iter([False, True])
    plan = build_plan(config, "mixed", sampled=lambda _rate: next(answers))
    ((_digit, english),) = plan.menu.options  # type: ignore[union-attr]
    training = {p.purpose: p.sampled for p in plan.purposes}["training"]
    assert training is False
    assert {p.purpose: p.sampled for p in english.purposes}["training"] is False


def test_objection_digit_reaches_the_plan_with_its_action(tmp_path: Path) -> None:
    config = load(tmp_path)
    documentation = {p.purpose: p for p in build_plan(config, "docs", sampled=never).purposes}[
        "documentation"
    ]
    assert documentation.objection is not None
    assert (documentation.objection.digit, documentation.objection.record_anyway) == ("3", False)

    def grounds(d: dict[str, Any]) -> None:
        d["routes"]["docs"]["purposes"]["documentation"]["objection"].update(
            action="record_with_grounds", compelling_grounds_ref="LAB-CG-1"
        )

    config = load(tmp_path, grounds)
    (documentation,) = build_plan(config, "docs", sampled=never).purposes
    assert documentation.objection is not None
    assert documentation.objection.record_anyway is True
    assert documentation.objection.grounds_ref == "LAB-CG-1"
