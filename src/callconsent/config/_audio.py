"""Where a prompt's audio lives, and its version (the sha256 of the file Asterisk plays).

Asterisk plays ``sound:<prompts_dir>/<lang>/<audio>`` and picks the file format itself, so the
base name carries no extension. We look for the formats in ``AUDIO_EXTENSIONS`` order.
"""

from __future__ import annotations

import functools
import hashlib
import os
import stat
import time
from pathlib import Path

from callconsent.evidence import fsio

from ._model import AUDIO_EXTENSIONS


def audio_base(prompts_dir: Path, language: str, audio: str) -> Path:
    """``<prompts_dir>/<lang>/<audio>`` without extension (what the media URI names)."""
    return prompts_dir / language / audio


@functools.lru_cache(maxsize=1024)
def media_uri(prompts_dir: Path, language: str, audio: str) -> str:
    return f"sound:{audio_base(prompts_dir, language, audio)}"


@functools.lru_cache(maxsize=1024)
def _candidates(prompts_dir: Path, language: str, audio: str) -> tuple[str, ...]:
    """The prompt's possible files, preferred first: made once per prompt, not per call (a
    plan names three or more prompts, and each path made anew cost pathlib about 10 us)."""
    base = audio_base(prompts_dir, language, audio)
    return tuple(str(base.with_name(base.name + ext)) for ext in AUDIO_EXTENSIONS)


def audio_files(prompts_dir: Path, language: str, audio: str) -> list[Path]:
    """Every existing format of the prompt, preferred first."""
    base = audio_base(prompts_dir, language, audio)
    candidates = (base.with_name(base.name + ext) for ext in AUDIO_EXTENSIONS)
    return [path for path in candidates if path.is_file()]


def sha256_file(path: Path) -> str:
    """The sha256 (hex) of a prompt's audio file."""
    return fsio.sha256_file(path)[1]


#: path -> (the file's identity when hashed, its sha256): a prompt is hashed again only when
#: the file changed (another inode, size, mtime or ctime: a rename over it, a rewrite, a
#: ``touch``), not at every call (bench/live.py: a few hundred KB read and hashed per call).
_SETTLED_NS = 2_000_000_000
_VERSIONS: dict[str, tuple[tuple[int, ...], str]] = {}


def _identity(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def audio_version(prompts_dir: Path, language: str, audio: str) -> str:
    """sha256 of the prompt's preferred audio file, or "" when there is none (R4).

    Read at each call, so the evidence names the file now on disk: the file's identity is
    checked at each call and its content hashed again whenever that changed."""
    for path in _candidates(prompts_dir, language, audio):
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        known = _VERSIONS.get(path)
        if known is not None and known[0] == _identity(st):
            return known[1]
        try:
            with open(path, "rb") as f:  # the identity of what is hashed, not of a later file
                st = os.fstat(f.fileno())
                digest = hashlib.file_digest(f, "sha256").hexdigest()
        except OSError:
            return ""
        # file times tick coarsely (a few ms): a file changed just now could change again
        # unseen under the same identity, so it is hashed again until it has been still a while
        if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > _SETTLED_NS:
            _VERSIONS[path] = (_identity(st), digest)
        return digest
    return ""
