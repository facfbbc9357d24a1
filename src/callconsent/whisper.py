"""The agent whisper (R15, requirements text 12): fixed short prompts the answering agent hears
before the bridge, saying what is recorded. Made like the other prompts (espeak-ng + sox,
:mod:`callconsent.prompts`) into ``<prompts_dir>/<lang>/<name>.wav`` with the names in
:data:`callconsent.names.WHISPER_PROMPTS`; the agent gosub plays
``${CALLCONSENT_WHISPER_DIR}/callconsent-whisper-<kind>`` with ``CALLCONSENT_WHISPER_DIR`` =
``<prompts_dir>/<agent_consent.whisper_language>``. A studio recording at the same path (without
the ``.txt`` beside it) is kept, as for every prompt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from callconsent import names
from callconsent.config import Config, PromptText
from callconsent.prompts import PromptSource, build_sources

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


def whisper_sources() -> list[PromptSource]:
    return [
        PromptSource(f"whisper.{kind}", lang, PromptText(names.WHISPER_PROMPTS[kind], text))
        for kind, texts in WHISPER_TEXTS.items()
        for lang, text in texts.items()
    ]


def build_whispers(config: Config, *, force: bool = False) -> list[Path]:
    """Make every missing or outdated whisper prompt; return the WAV files written."""
    return build_sources(config.prompts_dir, whisper_sources(), force=force)
