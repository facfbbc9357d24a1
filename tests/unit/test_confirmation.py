"""The caller's confirmation after answering the training question (texts 6 and 7)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from callconsent import confirmation, names
from callconsent.config import build_plan
from callconsent.consent import CallOutcome, CallPlan, PurposeOutcome
from tests.support.stasis_fakes import Harness, load_demo, pcm_wav, write_prompts


def _with_confirmation_audio(prompts: Path) -> None:
    write_prompts(prompts)
    for name, texts in confirmation.CONFIRM_TEXTS.items():
        for lang in texts:
            (prompts / lang / f"{name}.wav").write_bytes(pcm_wav(16) + name.encode())


def _plan(tmp_path: Path, route: str = "confirmed", **consent: Any) -> CallPlan:
    _with_confirmation_audio(tmp_path / "prompts")

    def change(data: dict[str, Any]) -> None:
        data["routes"][route]["purposes"]["training"]["consent"].update(consent)

    config = load_demo(tmp_path, change)
    return build_plan(config, route, sampled=lambda _rate: True)


def _outcome(status: str, reason: str) -> CallOutcome:
    training = PurposeOutcome("training", "6(1)(a)", 30, status, reason)
    recorded = ("training",) if status == "given" else ()
    return CallOutcome("confirmed", "da", status, reason, (), (training,), recorded, None)


@pytest.mark.parametrize(
    ("status", "reason", "prompt"),
    [
        ("given", "digit", names.CONSENT_GIVEN_PROMPT),
        ("refused", "digit", names.CONSENT_REFUSED_PROMPT),
        ("refused", "invalid", names.CONSENT_REFUSED_PROMPT),
        ("refused", "timeout", names.CONSENT_REFUSED_PROMPT),
        ("refused", "hangup", None),  # nobody to hear it
        ("refused", "notice_failed", None),  # never asked
    ],
)
def test_yes_hears_text_6_and_no_hears_text_7(
    tmp_path: Path, status: str, reason: str, prompt: str | None
) -> None:
    found = confirmation.confirmation_prompt(_plan(tmp_path), _outcome(status, reason))
    if prompt is None:
        assert found is None
    else:
        assert found is not None and found.media.endswith(f"/da/{prompt}")
        assert found.version  # the audio exists and is hashed


def test_text_6_names_star_9_only_where_it_is_the_withdrawal_code(tmp_path: Path) -> None:
    plan = _plan(tmp_path, withdraw_sequence="*7")
    found = confirmation.confirmation_prompt(plan, _outcome("given", "digit"))
    assert found is not None and found.media.endswith(names.CONSENT_GIVEN_PLAIN_PROMPT)
    plain = confirmation.CONFIRM_TEXTS[names.CONSENT_GIVEN_PLAIN_PROMPT]
    assert all("9" not in text for text in plain.values())
    assert "stjerne 9" in confirmation.CONFIRM_TEXTS[names.CONSENT_GIVEN_PROMPT]["da"]


def test_a_route_can_turn_the_confirmation_off(tmp_path: Path) -> None:
    plan = _plan(tmp_path, confirm=False)
    assert confirmation.confirmation_prompt(plan, _outcome("given", "digit")) is None


def test_the_confirmation_is_in_the_calls_language_or_danish(tmp_path: Path) -> None:
    _with_confirmation_audio(tmp_path / "prompts")

    def english(data: dict[str, Any]) -> None:
        data["routes"]["confirmed"]["language"] = "en"

    plan = build_plan(load_demo(tmp_path, english), "confirmed", sampled=lambda _rate: True)
    found = confirmation.confirmation_prompt(plan, _outcome("refused", "timeout"))
    assert found is not None and found.media.endswith(f"/en/{names.CONSENT_REFUSED_PROMPT}")
    assert confirmation.language_of("de") == "da"


def test_missing_audio_sets_no_variable(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    (tmp_path / "prompts" / "da" / f"{names.CONSENT_REFUSED_PROMPT}.wav").unlink()
    plan = build_plan(load_demo(tmp_path), "confirmed", sampled=lambda _rate: True)
    assert confirmation.confirmation_variables(plan, _outcome("refused", "timeout")) == []


async def test_the_app_sets_the_confirmation_prompt_on_the_callers_channel(
    tmp_path: Path,
) -> None:
    _with_confirmation_audio(tmp_path / "prompts")
    h = Harness(tmp_path, prompts=False)
    await h.answer_question("c1", "1", route="confirmed")
    await h.answer_question("c2", "2", route="confirmed")
    await h.answer_question("c3", "1", route="support")  # confirm: false in the lab config
    given = dict(h.ari.variables("c1"))[names.VAR_CONFIRM_PROMPT]
    refused = dict(h.ari.variables("c2"))[names.VAR_CONFIRM_PROMPT]
    assert given == str(tmp_path / "prompts" / "da" / names.CONSENT_GIVEN_PROMPT)
    assert refused == str(tmp_path / "prompts" / "da" / names.CONSENT_REFUSED_PROMPT)
    assert names.VAR_CONFIRM_PROMPT not in dict(h.ari.variables("c3"))
