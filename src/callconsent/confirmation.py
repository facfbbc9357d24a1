"""The caller's confirmation after answering the consent question (requirements texts 6, 7).

Once the caller has answered a training consent question (a digit, an invalid key or silence
until the timeout), the hook plays one sentence before the call goes on: text 6 after yes ("Tak.
Samtalen optages til uddannelse. Tryk stjerne 9, hvis du fortryder."), text 7 after no, an
invalid key or no key ("Samtalen bliver ikke optaget til uddannelse. Du bliver stillet videre
nu."). Text 6 names ``*9`` only where it is the route's ``withdraw_sequence``; elsewhere the
sentence without it plays, so the confirmation never promises a mechanism that does not exist.
On by default; a route turns it off with ``consent.confirm: false``. A caller who hung up, or a
flow ended by an error, hears nothing.

Pure: the texts (made into ``<prompts_dir>/<lang>/<name>.wav`` by ``callconsent prompts``, see
:mod:`callconsent.whisper`) and :func:`confirmation_prompt`, which picks the prompt from the
call's plan (built by :func:`callconsent.config.build_plan`) and its outcome; the app sets it as
``CALLCONSENT_CONFIRM_PROMPT`` on the caller's channel (:func:`confirmation_variables`).
"""

from __future__ import annotations

from typing import Final

from callconsent import names
from callconsent.consent import CallOutcome, CallPlan, Prompt

FALLBACK_LANGUAGE: Final = "da"
#: The purpose whose question the texts speak of.
PURPOSE: Final = "training"
#: The route's withdrawal code that text 6 names.
STAR_9: Final = "*9"
#: prompt base name -> language -> text
CONFIRM_TEXTS: Final = {
    names.CONSENT_GIVEN_PROMPT: {
        "da": "Tak. Samtalen optages til uddannelse. Tryk stjerne 9, hvis du fortryder.",
        "en": "Thank you. This call will be recorded for training. Press star 9 if you change "
        "your mind.",
    },
    names.CONSENT_GIVEN_PLAIN_PROMPT: {
        "da": "Tak. Samtalen optages til uddannelse.",
        "en": "Thank you. This call will be recorded for training.",
    },
    names.CONSENT_REFUSED_PROMPT: {
        "da": "Samtalen bliver ikke optaget til uddannelse. Du bliver stillet videre nu.",
        "en": "This call will not be recorded for training. Connecting you now.",
    },
}
#: Outcome reasons of an answered question (a key, an invalid key, no key until the timeout).
ANSWERED: Final = frozenset({"digit", "invalid", "timeout"})


def language_of(language: str) -> str:
    """The confirmation's language: the call's, or Danish when there is no text in it."""
    return (
        language if language in CONFIRM_TEXTS[names.CONSENT_REFUSED_PROMPT] else FALLBACK_LANGUAGE
    )


def given_prompt_name(withdraw_sequence: str) -> str:
    """Text 6 with "press star 9" only where ``*9`` is the route's withdrawal code."""
    return (
        names.CONSENT_GIVEN_PROMPT
        if withdraw_sequence == STAR_9
        else names.CONSENT_GIVEN_PLAIN_PROMPT
    )


def confirmation_prompt(plan: CallPlan, outcome: CallOutcome | None) -> Prompt | None:
    """The prompt the caller hears after answering (None: no confirmation)."""
    if outcome is None:
        return None
    questions = {p.purpose: p.consent for p in plan.purposes if p.consent is not None}
    answered = [
        p
        for p in outcome.purposes
        if p.purpose == PURPOSE and p.reason in ANSWERED and p.status in ("given", "refused")
    ]
    for purpose in answered:
        question = questions.get(purpose.purpose)
        if question is not None:
            return question.confirm_given if purpose.status == "given" else question.confirm_refused
    return None


def confirmation_variables(plan: CallPlan, outcome: CallOutcome | None) -> list[tuple[str, str]]:
    """``CALLCONSENT_CONFIRM_PROMPT`` (the file to play, without ``sound:``), or nothing."""
    prompt = confirmation_prompt(plan, outcome)
    if prompt is None or not prompt.version:  # the audio is missing: play nothing
        return []
    return [(names.VAR_CONFIRM_PROMPT, prompt.media.removeprefix("sound:"))]
