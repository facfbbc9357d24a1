"""Where a recording and its sidecar live: ``<recordings_dir>/YYYY/MM/DD/<uniqueid>.{wav,json}``.

Paths are built from Asterisk's uniqueid and the UTC date only. Caller-controlled text (caller
number, name, dialled number) never reaches a path; it is stored as data in the sidecar.

Permissions (R32). Two service users share the date folders: Asterisk writes the WAV (MixMonitor)
and callconsent writes the sidecar and deletes expired audio. Both are in one recordings group, so
the date folders are ``2770`` (owner and group rwx, setgid so every file in them gets that group,
nothing for others) and files are ``0640``. The recordings root itself can be ``0750`` or
``2770``; what R32 forbids, and what the start-up check looks for, is any access for others.
When callconsent runs as the Asterisk user itself, pass ``mode=0o750``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Final

from callconsent.evidence.fsio import fsync_dir

UNIQUEID_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: Asterisk's own uniqueid format, ``[<systemname>-]<epoch seconds>.<sequence>`` (e.g.
#: ``1733390000.42``, ``pbx1-1733390000.42``). Ids read back from evidence (ledger, index) must
#: have it before they name a path or an archive member: anything else was not made by Asterisk.
ASTERISK_UNIQUEID_RE: Final = re.compile(
    r"(?:[A-Za-z0-9][A-Za-z0-9_-]{0,31}(?:\.[A-Za-z0-9_-]{1,31}){0,4}-)?[0-9]{1,20}\.[0-9]{1,10}"
)
_RELATIVE_RE: Final = re.compile(r"(\d{4})/(\d{2})/(\d{2})/([^/]+)\.wav")
_YEAR_RE: Final = re.compile(r"\d{4}")
_TWO_DIGITS_RE: Final = re.compile(r"\d{2}")

#: Mode of the date folders (see the module docstring).
DATE_DIR_MODE: Final = 0o2770

AUDIO_SUFFIX: Final = ".wav"
SIDECAR_SUFFIX: Final = ".json"


class UnsafeIdentifier(ValueError):
    """A uniqueid (or relative recording path) that could not safely name a file."""


@dataclass(frozen=True, slots=True)
class RecordingPaths:
    audio: Path  # <dir>/YYYY/MM/DD/<uniqueid>.wav, the file MixMonitor writes
    sidecar: Path  # <dir>/YYYY/MM/DD/<uniqueid>.json
    relative: str  # "YYYY/MM/DD/<uniqueid>.wav", as stored in sidecar and ledger
    directory: Path  # <dir>/YYYY/MM/DD

    @property
    def uniqueid(self) -> str:
        return self.audio.stem


def check_uniqueid(uniqueid: str) -> str:
    """Return ``uniqueid`` if it is safe as a file name, else raise :class:`UnsafeIdentifier`."""
    if not isinstance(uniqueid, str) or not UNIQUEID_RE.fullmatch(uniqueid) or ".." in uniqueid:
        raise UnsafeIdentifier(f"unsafe uniqueid {uniqueid!r}")
    return uniqueid


def is_asterisk_uniqueid(value: object) -> bool:
    """Is ``value`` a uniqueid in Asterisk's format (at most 64 characters, no ``..``)?"""
    return (
        isinstance(value, str)
        and len(value) <= 64
        and ASTERISK_UNIQUEID_RE.fullmatch(value) is not None
        and ".." not in value
    )


def recording_paths(recordings_dir: Path, uniqueid: str, when: datetime) -> RecordingPaths:
    """The paths of the recording of call ``uniqueid`` started at ``when`` (date taken in UTC).

    Creates nothing. Raises :class:`UnsafeIdentifier` for an unsafe uniqueid or when the result
    would resolve outside ``recordings_dir`` (e.g. a date folder that is a symlink elsewhere).
    """
    check_uniqueid(uniqueid)
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"naive datetime {when!r}: the date folder is chosen in UTC")
    day = when.astimezone(UTC)
    relative_dir = PurePosixPath(f"{day.year:04d}", f"{day.month:02d}", f"{day.day:02d}")
    base = recordings_dir.absolute()
    directory = base.joinpath(*relative_dir.parts)
    audio = directory / f"{uniqueid}{AUDIO_SUFFIX}"
    if not audio.resolve().is_relative_to(base.resolve()):
        raise UnsafeIdentifier(f"{audio} resolves outside {base}")
    return RecordingPaths(
        audio=audio,
        sidecar=directory / f"{uniqueid}{SIDECAR_SUFFIX}",
        relative=str(relative_dir / audio.name),
        directory=directory,
    )


def spooled(where: RecordingPaths, spool_dir: Path) -> RecordingPaths:
    """``where`` with the audio in the private spool (``<spool_dir>/<uniqueid>.wav``): what
    MixMonitor writes while an encrypted recording is made; the sidecar stays in the tree."""
    return RecordingPaths(
        audio=spool_dir.absolute() / where.audio.name,
        sidecar=where.sidecar,
        relative=where.relative,
        directory=where.directory,
    )


def in_tree(where: RecordingPaths) -> RecordingPaths:
    """``where`` with the audio back in the recordings tree (the inverse of :func:`spooled`)."""
    audio = where.directory / where.audio.name
    return (
        where
        if audio == where.audio
        else RecordingPaths(
            audio=audio, sidecar=where.sidecar, relative=where.relative, directory=where.directory
        )
    )


def paths_from_relative(recordings_dir: Path, relative: str) -> RecordingPaths:
    """Rebuild :class:`RecordingPaths` from a stored ``"YYYY/MM/DD/<uniqueid>.wav"``."""
    m = _RELATIVE_RE.fullmatch(relative)
    if m is None:
        raise UnsafeIdentifier(f"not a recording path: {relative!r}")
    year, month, day, uniqueid = m.groups()
    try:
        when = datetime(int(year), int(month), int(day), 12, tzinfo=UTC)
    except ValueError as exc:
        raise UnsafeIdentifier(f"not a recording path: {relative!r}: {exc}") from exc
    return recording_paths(recordings_dir, uniqueid, when)


def ensure_directory(paths: RecordingPaths, mode: int = DATE_DIR_MODE) -> None:
    """Create the date folder (and missing year/month folders) with ``mode``, umask aside.
    Each folder made is durable before this returns (its parent fsynced): a sidecar fsynced in
    it cannot vanish with a folder a power loss forgot."""
    missing: list[Path] = []
    d = paths.directory
    while not d.exists():
        missing.append(d)
        d = d.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=mode)
        except FileExistsError:  # another process made it first: keep its mode
            continue
        os.chmod(folder, mode)  # mkdir's mode is masked by the umask
        fsync_dir(folder.parent)


# -- scanning the tree (verify, reconcile) -----------------------------------------------


@dataclass(frozen=True, slots=True)
class FoundRecording:
    paths: RecordingPaths
    has_audio: bool
    has_sidecar: bool


def iter_recordings(
    recordings_dir: Path, *, on_other: Callable[[Path], None] | None = None
) -> Iterator[FoundRecording]:
    """Every ``<uniqueid>`` with a WAV and/or sidecar under ``YYYY/MM/DD`` folders, in order.

    Streams one day folder at a time (memory bounded by the largest day). Other files in day
    folders (temporary files, foreign names) go to ``on_other``; other folders are not entered.
    """
    for _relative, day in iter_day_folders(recordings_dir):
        yield from _scan_day(recordings_dir, day, on_other)


def iter_day_folders(root: Path) -> Iterator[tuple[str, Path]]:
    """``("YYYY/MM/DD", folder)`` for every date folder under ``root``, in date order, one
    directory listing at a time. Only digit names of the right length count; symlinks are never
    followed."""
    for year in _sorted_dirs(root, _YEAR_RE):
        for month in _sorted_dirs(root / year, _TWO_DIGITS_RE):
            for day in _sorted_dirs(root / year / month, _TWO_DIGITS_RE):
                yield f"{year}/{month}/{day}", root / year / month / day


def iter_symlinked_folders(root: Path) -> Iterator[tuple[str, str]]:
    """``("YYYY[/MM[/DD]]", link target)`` for every year, month or day folder under ``root``
    that is a symlink: :func:`iter_day_folders` never follows them, so their recordings are
    neither verified nor purged, and callers report them instead of skipping them silently."""
    for parent, pattern, prefix in _levels(root):
        try:
            with os.scandir(parent) as it:
                links = sorted(e.name for e in it if pattern.fullmatch(e.name) and e.is_symlink())
        except (FileNotFoundError, NotADirectoryError):
            continue
        for name in links:
            try:
                target = os.readlink(parent / name)
            except OSError as exc:
                target = f"<unreadable: {exc.strerror or exc}>"
            yield f"{prefix}{name}", target


def _levels(root: Path) -> Iterator[tuple[Path, re.Pattern[str], str]]:
    yield root, _YEAR_RE, ""
    for year in _sorted_dirs(root, _YEAR_RE):
        yield root / year, _TWO_DIGITS_RE, f"{year}/"
        for month in _sorted_dirs(root / year, _TWO_DIGITS_RE):
            yield root / year / month, _TWO_DIGITS_RE, f"{year}/{month}/"


def relative_paths_unresolved(recordings_dir: Path, relative: str) -> RecordingPaths:
    """As :func:`paths_from_relative` (same checks of the name), without resolving symlinks:
    for existence checks over many files only (verify), never to write or delete."""
    m = _RELATIVE_RE.fullmatch(relative)
    if m is None:
        raise UnsafeIdentifier(f"not a recording path: {relative!r}")
    uniqueid = check_uniqueid(m.group(4))
    directory = recordings_dir.absolute().joinpath(*m.groups()[:3])
    return RecordingPaths(
        audio=directory / f"{uniqueid}{AUDIO_SUFFIX}",
        sidecar=directory / f"{uniqueid}{SIDECAR_SUFFIX}",
        relative=relative,
        directory=directory,
    )


def _sorted_dirs(parent: Path, pattern: re.Pattern[str]) -> list[str]:
    try:
        with os.scandir(parent) as it:
            return sorted(
                e.name for e in it if pattern.fullmatch(e.name) and e.is_dir(follow_symlinks=False)
            )
    except (FileNotFoundError, NotADirectoryError):
        return []


def _scan_day(
    recordings_dir: Path, day: Path, on_other: Callable[[Path], None] | None
) -> Iterator[FoundRecording]:
    found: dict[str, tuple[bool, bool]] = {}
    with os.scandir(day) as it:
        for entry in it:
            stem, suffix = os.path.splitext(entry.name)
            known = suffix in (AUDIO_SUFFIX, SIDECAR_SUFFIX) and entry.is_file(
                follow_symlinks=False
            )
            if known and UNIQUEID_RE.fullmatch(stem) and ".." not in stem:
                audio, sidecar = found.get(stem, (False, False))
                found[stem] = (audio or suffix == AUDIO_SUFFIX, sidecar or suffix == SIDECAR_SUFFIX)
            elif on_other is not None:
                on_other(day / entry.name)
    relative_day = day.relative_to(recordings_dir).as_posix()
    for stem in sorted(found):
        audio, sidecar = found[stem]
        try:
            paths = paths_from_relative(recordings_dir, f"{relative_day}/{stem}{AUDIO_SUFFIX}")
        except UnsafeIdentifier:  # e.g. a folder named 2026/13/45, or a symlink out of the tree
            if on_other is not None:
                for suffix, present in ((AUDIO_SUFFIX, audio), (SIDECAR_SUFFIX, sidecar)):
                    if present:
                        on_other(day / f"{stem}{suffix}")
            continue
        yield FoundRecording(paths=paths, has_audio=audio, has_sidecar=sidecar)


def find_recording(recordings_dir: Path, uniqueid: str) -> RecordingPaths | None:
    """The sidecar of call ``uniqueid`` by the date in Asterisk's uniqueid (``<epoch>.<n>``):
    that UTC day or the next (a call that crossed midnight). None when there is none."""
    head = uniqueid.rsplit("-", 1)[-1].split(".", 1)[0]  # "[systemname-]<epoch>.<n>"
    if not head.isdigit():
        return None
    day = datetime.fromtimestamp(int(head), UTC)
    for when in (day, day + timedelta(days=1), day - timedelta(days=1)):
        where = recording_paths(recordings_dir, uniqueid, when)
        if where.sidecar.exists():
            return where
    return None
