"""The agent whisper (R15, requirements text 12): fixed short prompts the answering agent hears
before the bridge, saying what is recorded. Made like the other prompts (espeak-ng + sox,
:mod:`callconsent.prompts`) into ``<prompts_dir>/<lang>/<name>.wav`` with the names in
:data:`callconsent.names.WHISPER_PROMPTS`; the agent gosub plays
``${CALLCONSENT_WHISPER_DIR}/callconsent-whisper-<kind>`` with ``CALLCONSENT_WHISPER_DIR`` =
``<prompts_dir>/<agent_consent.whisper_language>``. A studio recording at the same path (without
the ``.txt`` beside it) is kept, as for every prompt.

The caller's confirmation of an in-call withdrawal (R16, requirements text 9) is made here too:
``<prompts_dir>/<lang>/callconsent-withdrawn.wav`` per language of
:data:`callconsent.withdrawal.in_call.WITHDRAWN_TEXTS`; the withdrawal context plays the one in the call's
language.

The agent's confirmation of a withdrawal the agent made for a caller who asked orally (R16):
``<prompts_dir>/<agent_consent.whisper_language>/callconsent-agent-withdrawn.wav``, played by
``[callconsent-withdraw-agent]`` to the agent only; the agent then tells the caller.

The caller's confirmation after answering the training question (requirements texts 6, 7):
``<prompts_dir>/<lang>/callconsent-consent-{given,given-plain,refused}.wav`` per language of
:data:`callconsent.confirmation.CONFIRM_TEXTS`, played by the hook.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from callconsent import confirmation, names
from callconsent.config import Config, PromptText
from callconsent.prompts import PromptSource, build_sources
from callconsent.withdrawal import in_call

#: kind -> language -> what the agent hears
WHISPER_TEXTS: Final = {
    "documentation": {"da": "Optages: dokumentation.", "en": "Recording: documentation."},
    "documentation_training": {
        "da": "Optages: dokumentation og uddannelse.",
        "en": "Recording: documentation and training.",
    },
    "training": {"da": "Optages: uddannelse.", "en": "Recording: training."},
    "none": {"da": "Optages ikke.", "en": "Not recorded."},
}

#: What the agent hears after pressing the withdrawal code for the caller, per language.
AGENT_WITHDRAWN_TEXTS: Final = {
    "da": "Tilbagekaldt. Optagelsen til uddannelse er stoppet.",
    "en": "Withdrawn. The training recording has stopped.",
}


def whisper_sources() -> list[PromptSource]:
    return [
        PromptSource(f"whisper.{kind}", lang, PromptText(names.WHISPER_PROMPTS[kind], text))
        for kind, texts in WHISPER_TEXTS.items()
        for lang, text in texts.items()
    ]


def confirmation_sources() -> list[PromptSource]:
    return [
        PromptSource("withdrawn", lang, PromptText(names.WITHDRAW_PROMPT, text))
        for lang, text in in_call.WITHDRAWN_TEXTS.items()
    ]


def agent_confirmation_sources() -> list[PromptSource]:
    return [
        PromptSource("agent_withdrawn", lang, PromptText(names.AGENT_WITHDRAW_PROMPT, text))
        for lang, text in AGENT_WITHDRAWN_TEXTS.items()
    ]


def consent_confirmation_sources() -> list[PromptSource]:
    """Texts 6 and 7, heard after answering the training question (:mod:`callconsent.confirmation`)."""
    return [
        PromptSource(f"confirm.{name}", lang, PromptText(name, text))
        for name, texts in confirmation.CONFIRM_TEXTS.items()
        for lang, text in texts.items()
    ]


def build_whispers(config: Config, *, force: bool = False) -> list[Path]:
    """Make every missing or outdated fixed prompt (whispers, withdrawal confirmations for the
    caller and for the agent, the consent confirmations); return the WAV files written."""
    sources = (
        whisper_sources()
        + confirmation_sources()
        + agent_confirmation_sources()
        + consent_confirmation_sources()
    )
    return build_sources(config.prompts_dir, sources, force=force, wpm=config.tts_words_per_minute)
