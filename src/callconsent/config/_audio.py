"""Where a prompt's audio lives, and its version (the sha256 of the file Asterisk plays).

Asterisk plays ``sound:<prompts_dir>/<lang>/<audio>`` and picks the file format itself, so the
base name carries no extension. We look for the formats in ``AUDIO_EXTENSIONS`` order.
"""

from __future__ import annotations

from pathlib import Path

from callconsent.evidence import fsio

from ._model import AUDIO_EXTENSIONS


def audio_base(prompts_dir: Path, language: str, audio: str) -> Path:
    """``<prompts_dir>/<lang>/<audio>`` without extension (what the media URI names)."""
    return prompts_dir / language / audio


def media_uri(prompts_dir: Path, language: str, audio: str) -> str:
    return f"sound:{audio_base(prompts_dir, language, audio)}"


def audio_files(prompts_dir: Path, language: str, audio: str) -> list[Path]:
    """Every existing format of the prompt, preferred first."""
    base = audio_base(prompts_dir, language, audio)
    candidates = (base.with_name(base.name + ext) for ext in AUDIO_EXTENSIONS)
    return [path for path in candidates if path.is_file()]


def sha256_file(path: Path) -> str:
    """The sha256 (hex) of a prompt's audio file."""
    return fsio.sha256_file(path)[1]


def audio_version(prompts_dir: Path, language: str, audio: str) -> str:
    """sha256 of the prompt's preferred audio file, or "" when there is none (R4)."""
    files = audio_files(prompts_dir, language, audio)
    if not files:
        return ""
    try:
        return sha256_file(files[0])
    except OSError:
        return ""
