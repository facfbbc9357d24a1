"""Prompt audio: made from the config's transcripts, and every notice version archived.

``build_prompts`` speaks each transcript with espeak-ng (at the config's
``tts_words_per_minute``, default 165) and converts it with sox to what Asterisk plays without
transcoding on narrowband calls: 8 kHz mono 16-bit WAV at ``<prompts_dir>/<lang>/<audio>.wav``,
without the trailing silence espeak-ng adds.
Beside each generated WAV a ``.txt`` holds the transcript it was made from (and, after a last line
``# tts: espeak-ng <n> wpm``, a rate other than the default); a prompt is made again only when
that differs (or with ``force``).

Studio recordings replace generated ones: put the file at the same path and delete the ``.txt``.
A WAV without a ``.txt`` (or a ``.sln``/``.gsm`` file) counts as installed by hand and is never
overwritten, not even with ``force``.

``archive_notices`` copies every notice version's audio and transcript, unchanged, to
``<notice_archive_dir>/<sha256>.<ext>`` + ``.txt`` (+ ``.json`` with what it was for), so the
``version`` (sha256) in every sidecar and ledger entry resolves to what the caller heard (R19,
R20). An archived version is never overwritten.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import structlog

from callconsent.config import Config, PromptText, audio_files, sha256_file

log = structlog.get_logger(__name__)

#: espeak-ng voice per language code; other codes are passed to espeak-ng as they are.
VOICES: Final = {"da": "da", "en": "en-gb"}
SPEED_WPM: Final = 165
#: sox effects that cut a prompt's trailing silence (below 0.5 % of full scale, about -46 dBFS).
TRIM_TAIL: Final = ("reverse", "silence", "1", "0.005", "0.5%", "reverse")
TOOL_TIMEOUT_S: Final = 120


class PromptBuildError(RuntimeError):
    """espeak-ng or sox is missing or failed; the message says which and why."""


@dataclass(frozen=True, slots=True)
class PromptSource:
    """One prompt of the config: where it is used, its language and what it says."""

    prompt_id: str  # e.g. "training_v1.question" or "route:mixed.language_menu"
    language: str
    text: PromptText
    notice: str | None = None  # the notice it belongs to (None for a language menu)


def prompt_sources(config: Config) -> Iterator[PromptSource]:
    """Every prompt in the config: notices, questions, retries, language menus."""
    for name, notice in config.notices.items():
        for lang, text in notice.languages.items():
            yield PromptSource(f"{name}.notice", lang, text.prompt, name)
            for kind in ("question", "explicit_question", "retry"):
                prompt: PromptText | None = getattr(text, kind)
                if prompt is not None:
                    yield PromptSource(f"{name}.{kind}", lang, prompt, name)
    for name, route in config.routes.items():
        menu = route.language_menu
        if menu is not None:
            yield PromptSource(f"route:{name}.language_menu", menu.prompt_language, menu.prompt)


def build_prompts(config: Config, *, force: bool = False) -> list[Path]:
    """Make every missing or outdated generated prompt; return the WAV files written."""
    return build_sources(
        config.prompts_dir, prompt_sources(config), force=force, wpm=config.tts_words_per_minute
    )


def build_sources(
    prompts_dir: Path,
    sources: Iterable[PromptSource],
    *,
    force: bool = False,
    wpm: int = SPEED_WPM,
) -> list[Path]:
    """Make the missing or outdated generated prompts among ``sources`` (at ``wpm``)."""
    written: list[Path] = []
    done: set[Path] = set()
    for source in sources:
        wav = prompts_dir / source.language / f"{source.text.audio}.wav"
        if wav in done:
            continue  # one audio file may serve several notices (the validator checks the text)
        done.add(wav)
        txt = wav.with_suffix(".txt")
        existing = audio_files(prompts_dir, source.language, source.text.audio)
        if existing and not txt.exists():
            log.info("prompt_installed_by_hand", prompt_id=source.prompt_id, path=str(existing[0]))
            continue
        stamp = _stamp(source.text.transcript, wpm)
        if existing and not force and _read_text(txt) == stamp:
            continue
        _synthesise(source.language, source.text.transcript, wav, wpm)
        _write_atomic(txt, stamp.encode("utf-8"), 0o644)
        log.info("prompt_built", prompt_id=source.prompt_id, path=str(wav))
        written.append(wav)
    return written


def archive_notices(config: Config) -> None:
    """Copy each notice prompt's current audio and transcript into the archive, once per sha256."""
    archive = config.storage.notice_archive_dir
    archive.mkdir(parents=True, exist_ok=True, mode=0o750)
    for source in prompt_sources(config):
        if source.notice is None:
            continue  # a language menu is not part of any notice version
        files = audio_files(config.prompts_dir, source.language, source.text.audio)
        if not files:
            log.warning(
                "notice_audio_missing", prompt_id=source.prompt_id, language=source.language
            )
            continue
        audio = files[0]
        digest = sha256_file(audio)
        target = archive / f"{digest}{audio.suffix}"
        new = _link_new(audio.read_bytes(), target)
        text_file = target.with_suffix(".txt")
        if not _link_new(source.text.transcript.encode("utf-8"), text_file) and (
            _read_text(text_file) != source.text.transcript
        ):
            log.warning(
                "notice_archive_transcript_differs", prompt_id=source.prompt_id, sha256=digest
            )
        notice = config.notices[source.notice]
        meta = {
            "sha256": digest,
            "prompt_id": source.prompt_id,
            "notice": notice.name,
            "notice_version": notice.version,
            "language": source.language,
            "purpose": notice.purpose,
            "lawful_basis": notice.lawful_basis,
            "retention_days": notice.retention_days,
            "audio_file": target.name,
            "archived_at": datetime.now(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "config_sha256": config.sha256,
        }
        meta_bytes = (json.dumps(meta, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
        _link_new(meta_bytes, target.with_suffix(".json"))
        if new:
            log.info("notice_archived", prompt_id=source.prompt_id, sha256=digest)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def _stamp(transcript: str, wpm: int) -> str:
    """What the ``.txt`` beside a generated prompt holds: the transcript, and a rate other than
    the default (so a changed rate makes the prompt again)."""
    return transcript if wpm == SPEED_WPM else f"{transcript}\n# tts: espeak-ng {wpm} wpm"


def _synthesise(language: str, transcript: str, wav: Path, wpm: int) -> None:
    wav.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    with tempfile.TemporaryDirectory(dir=wav.parent, prefix=".build-") as tmp:
        raw, out = Path(tmp) / "raw.wav", Path(tmp) / "out.wav"
        voice = VOICES.get(language, language)
        _run(
            ["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(raw), "--stdin"],
            transcript.encode("utf-8"),
        )
        _run(
            [
                "sox",
                str(raw),
                "-r",
                "8000",
                "-c",
                "1",
                "-b",
                "16",
                "-e",
                "signed-integer",
                str(out),
                # espeak-ng ends every text with about 50 ms of silence: cut it (the agent's
                # whisper plays before the bridge, so it delays every recorded conversation)
                *TRIM_TAIL,
            ],
            b"",
        )
        out.chmod(0o644)
        os.replace(out, wav)


def _run(argv: list[str], stdin: bytes) -> None:
    try:
        subprocess.run(argv, input=stdin, capture_output=True, check=True, timeout=TOOL_TIMEOUT_S)
    except FileNotFoundError:
        raise PromptBuildError(
            f"{argv[0]} is not installed: install espeak-ng and sox, or install recorded prompts"
        ) from None
    except subprocess.CalledProcessError as exc:
        detail = exc.stderr.decode("utf-8", "replace").strip()
        raise PromptBuildError(f"{argv[0]} failed ({exc.returncode}): {detail}") from None
    except subprocess.TimeoutExpired:
        raise PromptBuildError(f"{argv[0]} took longer than {TOOL_TIMEOUT_S} s") from None


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:  # gone after the replace; left over only when something failed
        Path(tmp).unlink(missing_ok=True)


def _link_new(data: bytes, target: Path) -> bool:
    """Write ``target`` only if it does not exist (atomically, never overwriting); True if new."""
    if target.exists():
        return False
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o640)
        os.link(tmp, target)  # fails if another writer got there first: theirs is kept
    except FileExistsError:
        return False
    finally:
        Path(tmp).unlink(missing_ok=True)
    return True


__all__ = [
    "PromptBuildError",
    "PromptSource",
    "archive_notices",
    "build_prompts",
    "build_sources",
    "prompt_sources",
]
