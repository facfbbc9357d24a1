"""Streaming readers for the index: the recordings tree one day folder at a time, the ledger
from a byte offset. Nothing here changes a file; bad input is returned as a problem, not raised.

Sidecars are read with a plain JSON parse and a few shape checks, not the full JSON Schema
(which costs about a millisecond each, too slow for a million files). The index is only a finder:
every destructive step loads the sidecar again with :func:`callconsent.evidence.sidecar.load`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from callconsent.evidence.paths import AUDIO_SUFFIX, SIDECAR_SUFFIX, UNIQUEID_RE, iter_day_folders

#: Sidecar reads in flight per day folder (see :func:`day_rows`).
READERS: Final = 16

#: Columns of the ``recordings`` table, in the order :func:`sidecar_row` returns them.
RECORDING_COLUMNS: Final = (
    "uniqueid",
    "day",
    "file",
    "state",
    "started_at",
    "delete_after",
    "subject",  # the sidecar's clear number; stored as its lookup digest (subject_of)
    "linkedid",
    "route",
    "purposes",
    "agent",
    "sha256",
    "bytes",
    "has_audio",
    "deleted_reason",
)


@dataclass(frozen=True, slots=True)
class Problem:
    """Input that was skipped: a malformed sidecar or ledger line, with where it is."""

    path: Path
    line_no: int | None
    detail: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line_no}" if self.line_no is not None else str(self.path)
        return f"{where}: {self.detail} (skipped, nothing deleted)"


@dataclass(frozen=True, slots=True)
class Day:
    relative: str  # "YYYY/MM/DD"
    path: Path
    mtime_ns: int


def iter_days(root: Path) -> Iterator[Day]:
    """Every ``YYYY/MM/DD`` folder under ``root`` in date order, with its mtime.

    A sidecar is always written by renaming a temporary file into its day folder, so the
    folder's mtime changes whenever a sidecar is created, finalised or tombstoned.
    """
    for relative, path in iter_day_folders(root):
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            continue
        yield Day(relative, path, mtime)


def day_sidecars(day: Day) -> tuple[list[str], set[str]]:
    """The uniqueids with a sidecar in ``day`` in inode order (on a cold cache, reading in that
    order is several times faster than by name), and those with an audio file."""
    sidecars: list[tuple[int, str]] = []
    audio: set[str] = set()
    try:
        with os.scandir(day.path) as it:
            for e in it:
                if e.name.endswith(SIDECAR_SUFFIX) and e.is_file(follow_symlinks=False):
                    sidecars.append((e.inode(), e.name[: -len(SIDECAR_SUFFIX)]))
                elif e.name.endswith(AUDIO_SUFFIX):
                    audio.add(e.name[: -len(AUDIO_SUFFIX)])
    except FileNotFoundError:
        return [], set()
    sidecars.sort()
    return [s for _, s in sidecars if UNIQUEID_RE.fullmatch(s) and ".." not in s], audio


@dataclass(frozen=True, slots=True)
class DayRows:
    """What one day folder holds: its index rows (by uniqueid) and the sidecars skipped."""

    day: Day
    rows: list[tuple[Any, ...]]
    problems: list[Problem]


def day_rows(day: Day) -> DayRows:
    """Read every sidecar of ``day`` (pure reading; runs in a worker process on a rebuild).
    Files are read by :data:`READERS` threads at once: on a cold cache a disk answers many
    small reads in flight far faster than one at a time."""
    rows: list[tuple[Any, ...]] = []
    problems: list[Problem] = []
    stems, audio = day_sidecars(day)
    contents = _readers().map(_read, [day.path / f"{u}{SIDECAR_SUFFIX}" for u in stems])
    found = list(zip(stems, contents, strict=True))
    for uniqueid, data in found:
        row = sidecar_row(day, uniqueid, uniqueid in audio, data)
        if isinstance(row, Problem):
            problems.append(row)
        elif row is not None:
            rows.append(row)
    rows.sort(key=lambda r: str(r[0]))  # primary-key order: appends to the B-tree
    return DayRows(day, rows, problems)


def sidecar_row(
    day: Day, uniqueid: str, has_audio_file: bool, data: bytes | OSError | None = b""
) -> tuple[Any, ...] | Problem | None:
    """The index row of one sidecar, a :class:`Problem`, or None if it vanished meanwhile.
    For a tombstone, ``has_audio`` says whether audio is still there (an interrupted deletion).
    ``data``: the file's bytes if already read (None: it was gone, an ``OSError``: unreadable)."""
    path = day.path / f"{uniqueid}{SIDECAR_SUFFIX}"
    if data == b"":
        data = _read(path)
    if data is None:
        return None
    try:
        if isinstance(data, OSError):
            raise data
        doc = json.loads(data)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return Problem(path, None, f"malformed sidecar: {exc}")
    try:
        return row(day.relative, uniqueid, doc, has_audio_file)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return Problem(path, None, f"malformed sidecar: {type(exc).__name__}: {exc}")


_POOL: dict[int, ThreadPoolExecutor] = {}


def _readers() -> ThreadPoolExecutor:
    """This process's reader threads (made on first use: threads do not survive a fork)."""
    pid = os.getpid()
    if pid not in _POOL:
        _POOL.clear()
        _POOL[pid] = ThreadPoolExecutor(READERS, thread_name_prefix="sidecar-reader")
    return _POOL[pid]


def _read(path: Path) -> bytes | OSError | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return exc


def row(relative_day: str, uniqueid: str, doc: Any, has_audio_file: bool) -> tuple[Any, ...]:
    """The ``recordings`` row of sidecar document ``doc``."""
    if not isinstance(doc, dict):
        raise TypeError("not a JSON object")
    state = doc["state"]
    call, rec = doc["call"], doc["recording"]
    file = f"{relative_day}/{uniqueid}{AUDIO_SUFFIX}"
    if call["uniqueid"] != uniqueid or rec["file"] != file:
        raise ValueError(f"names call {call['uniqueid']!r} / file {rec['file']!r}")
    if state == "tombstone":
        return _scalars(
            uniqueid,
            relative_day,
            file,
            state,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            rec["sha256"],
            None,
            int(has_audio_file),
            str(doc["reason"]),
        )
    if state not in ("recording", "final"):
        raise ValueError(f"unknown state {state!r}")
    purposes = ",".join(str(p["purpose"]) for p in doc["purposes"])
    agent = next((t[6:] for t in doc.get("tags", ()) if str(t).startswith("agent:")), None)
    return _scalars(
        uniqueid,
        relative_day,
        file,
        state,
        str(doc["started_at"]),
        str(doc["delete_after"]),
        call["caller_number"],
        call["linkedid"],
        call["route"],
        purposes,
        agent,
        rec["sha256"],
        rec["bytes"],
        None if rec["has_audio"] is None else int(bool(rec["has_audio"])),
        None,
    )


def _scalars(*values: Any) -> tuple[Any, ...]:
    """``values`` as a row, if every one is a text, a number SQLite can store, or null."""
    for column, value in zip(RECORDING_COLUMNS, values, strict=True):
        if value is None or isinstance(value, str | float):
            continue
        if not isinstance(value, int) or not -(1 << 63) <= value < 1 << 63:
            raise TypeError(f"{column}: {type(value).__name__} {str(value)[:40]} is not storable")
    return values


@dataclass(frozen=True, slots=True)
class RawLine:
    line_no: int
    offset: int  # byte offset of the line in the ledger
    length: int  # without the newline
    entry: dict[str, Any] | None
    error: str | None


def read_ledger(path: Path, offset: int, line_no: int) -> Iterator[RawLine]:
    """Terminated lines of the ledger from byte ``offset`` (line ``line_no`` + 1 on). A last
    line without its newline (a write in progress, or torn by a crash) is not yielded."""
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return
    with f:
        f.seek(offset)
        pos = offset
        for line in f:
            if not line.endswith(b"\n"):
                return
            line_no += 1
            raw = line[:-1]
            entry, error = _parse_entry(raw)
            yield RawLine(line_no, pos, len(raw), entry, error)
            pos += len(line)


def _parse_entry(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    try:
        obj = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        return None, f"malformed ledger line: not valid JSON: {exc}"
    if not isinstance(obj, dict):
        return None, "malformed ledger line: not a JSON object"
    seq = obj.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        return None, f"malformed ledger line: bad seq {seq!r}"
    if not isinstance(obj.get("type"), str):
        return None, "malformed ledger line: bad type"
    return obj, None


def read_line(path: Path, offset: int, length: int) -> bytes:
    """One ledger line's bytes (without the newline) at ``offset``."""
    with path.open("rb") as f:
        f.seek(offset)
        return f.read(length)
