"""The JSON sidecar beside each recording: create, finalise, tombstone; validated, atomic writes.

Life of a sidecar (``state``):

``recording``  written by :func:`create` when the recording starts; outcome fields null.
``final``      written by :func:`finalise` once MixMonitor has closed the WAV: size, duration,
               sha256 of the whole file and ``has_audio`` (False for MixMonitor's header-only file
               when no bridge happened; the caller then tombstones it with reason ``no_audio``).
``tombstone``  written by :func:`tombstone`, which also deletes the audio: ids, file name, hash,
               reason and time only, no personal data.

Every write is atomic (:func:`callconsent.evidence.fsio.atomic_write_json`) and validated
against ``schemas/sidecar.schema.json`` first, unless the caller passes ``schema_check=False``:
the live app does for documents its own builders made and it wrote itself (the unit tests check
each builder's output against the schema and ``verify --deep`` checks every file); full
validation cost more CPU than the rest of a call's evidence work together (bench/hotpath.py). ``prepare_*`` functions compute a document without
writing it, so a caller can log it to the ledger first (at-least-once) and then :func:`write` it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from callconsent.evidence import wav
from callconsent.evidence.fsio import (
    MalformedDocument,
    atomic_write_json,
    copy_document,
    fsync_dir,
    read_json,
    schema_errors,
    schema_validator,
    sha256_file,
    tighten_mode,
    utc_stamp,
)
from callconsent.evidence.paths import RecordingPaths

SCHEMA_VERSION: Final = 1
SCHEMA_NAME: Final = "sidecar.schema.json"


class State(enum.StrEnum):
    RECORDING = "recording"
    FINAL = "final"
    TOMBSTONE = "tombstone"


class ConsentStatus(enum.StrEnum):
    """``purposes[].consent.status``; the schema holds the same enum (a test checks)."""

    GIVEN = "given"
    REFUSED = "refused"
    NOT_SAMPLED = "not_sampled"


class ConsentReason(enum.StrEnum):
    """Known ``purposes[].consent.reason`` values. The schema accepts any short token
    (``^[a-z][a-z0-9_]{0,31}$``) so a new reason never makes evidence unwritable; add it here."""

    DIGIT = "digit"
    TIMEOUT = "timeout"
    HANGUP = "hangup"
    INVALID = "invalid"
    NOT_SAMPLED = "not_sampled"
    ERROR = "error"
    NOTICE_FAILED = "notice_failed"


class TombstoneReason(enum.StrEnum):
    """Known tombstone reasons (any short token is accepted, as for consent reasons)."""

    RETENTION = "retention"
    WITHDRAWN = "withdrawn"
    ERASED = "erased"
    NO_AUDIO = "no_audio"
    NOT_STARTED = "not_started"  # prepared, but the call was gone or failed before recording
    SENSITIVE = "sensitive"  # flagged by the agent (R22), only consent purposes recorded


class SidecarInvalid(ValueError):
    """A sidecar document that does not match the schema; ``errors`` lists every violation."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("sidecar does not match the schema: " + "; ".join(errors[:5]))
        self.errors = errors


class SidecarStateError(ValueError):
    """The operation does not apply to the sidecar's state (e.g. finalising a tombstone)."""


def validate(doc: Mapping[str, Any]) -> None:
    """Raise :class:`SidecarInvalid` unless ``doc`` matches the schema for its ``state``."""
    state = doc.get("state")
    pointer = f"/$defs/{state}_doc" if state in tuple(State) else ""
    errors = schema_errors(schema_validator(SCHEMA_NAME, pointer), doc)
    if errors:
        raise SidecarInvalid(errors)


def load(paths_or_file: RecordingPaths | Path, *, schema_check: bool = True) -> dict[str, Any]:
    """Read and validate a sidecar (a path, or the :class:`RecordingPaths` holding it).

    ``FileNotFoundError`` passes through; unreadable JSON, a schema violation or (given
    ``RecordingPaths``) a document naming another call or file raises
    :class:`~callconsent.evidence.fsio.MalformedDocument` naming the path.
    """
    path = paths_or_file.sidecar if isinstance(paths_or_file, RecordingPaths) else paths_or_file
    doc = read_json(path)
    try:
        if schema_check:
            validate(doc)
    except SidecarInvalid as exc:
        raise MalformedDocument(path, str(exc)) from exc
    if isinstance(paths_or_file, RecordingPaths):
        _check_belongs(paths_or_file, doc)
    return doc


def recording_document(
    paths: RecordingPaths,
    *,
    call: Mapping[str, Any],
    started_at: datetime,
    language: str,
    notices: list[dict[str, Any]],
    purposes: list[dict[str, Any]],
    delete_after: datetime,
    tags: list[str],
    software: Mapping[str, str],
    config_sha256: str,
) -> dict[str, Any]:
    """A ``recording``-state document for :func:`create`: fills in ``schema_version``,
    ``state``, the recording block (file from ``paths``, outcome fields null) and the times.
    ``notices``/``purposes`` are lists of plain dicts in the schema's shape (times as
    :func:`~callconsent.evidence.fsio.utc_stamp` strings)."""
    started = utc_stamp(started_at)
    return {
        "schema_version": SCHEMA_VERSION,
        "state": State.RECORDING.value,
        "call": dict(call),
        "started_at": started,
        "language": language,
        "notices": notices,
        "purposes": purposes,
        "recording": {
            "file": paths.relative,
            "format": "wav",
            "started_at": started,
            "ended_at": None,
            "duration_seconds": None,
            "bytes": None,
            "sha256": None,
            "has_audio": None,
        },
        "delete_after": utc_stamp(delete_after),
        "tags": tags,
        "software": dict(software),
        "config_sha256": config_sha256,
        "updated_at": started,
    }


def write(
    paths: RecordingPaths,
    doc: Mapping[str, Any],
    *,
    overwrite: bool = True,
    schema_check: bool = True,
    dir_sync: Callable[[Path], None] | None = None,
) -> os.stat_result:
    """Validate and atomically write ``doc`` as the sidecar of ``paths`` (with
    ``overwrite=False``: only if there is none yet, else ``FileExistsError``); returns the new
    file's status. ``dir_sync``: how the directory is fsynced (default: at once; see
    :func:`~callconsent.evidence.fsio.atomic_write_json`).

    A tombstone is written first and the audio deleted after it, so a crash in between leaves a
    tombstone beside leftover audio (``reconcile`` completes the deletion), never audio whose
    sidecar has already gone: its rename is made durable at once, before the unlink.
    """
    if schema_check:
        validate(doc)
    _check_belongs(paths, doc)
    if doc["state"] != State.TOMBSTONE:
        return atomic_write_json(paths.sidecar, doc, overwrite=overwrite, dir_sync=dir_sync)
    written = atomic_write_json(paths.sidecar, doc, overwrite=overwrite)
    with contextlib.suppress(FileNotFoundError):
        paths.audio.unlink()
    (dir_sync or fsync_dir)(paths.directory)
    return written


def create(
    paths: RecordingPaths,
    doc: Mapping[str, Any],
    *,
    schema_check: bool = True,
    dir_sync: Callable[[Path], None] | None = None,
) -> os.stat_result:
    """Write the ``recording``-state sidecar when the recording starts.

    The date folder must exist (:func:`callconsent.evidence.paths.ensure_directory`). Raises
    ``FileExistsError`` if the call already has a sidecar, :class:`SidecarInvalid` for a document
    that does not match the schema, and :class:`SidecarStateError` for another state.
    """
    if doc.get("state") != State.RECORDING:
        raise SidecarStateError(f"create writes state 'recording', not {doc.get('state')!r}")
    return write(paths, doc, overwrite=False, schema_check=schema_check, dir_sync=dir_sync)


def prepare_final(
    paths: RecordingPaths,
    *,
    ended_at: datetime,
    doc: Mapping[str, Any] | None = None,
    schema_check: bool = True,
    closed: wav.WavInfo | None = None,
) -> dict[str, Any]:
    """The ``final`` document for a closed recording, computed but not written.

    Reads the WAV header and hashes the whole file in chunks. An already final sidecar is
    returned unchanged. Raises ``FileNotFoundError`` (no sidecar or no audio), :class:`wav.RecordingNotClosed`
    (header not finalised: await :func:`wav.wait_closed`, or repair after a crash),
    :class:`wav.WavError`, :class:`SidecarStateError` (tombstone) or ``MalformedDocument``.
    ``doc``: the sidecar as the caller knows it is on disk (spares reading it again);
    ``closed``: the finalised header :func:`wav.wait_closed` read (spares reading it again; the
    hash still checks the file has that size).
    """
    doc = dict(doc) if doc is not None else load(paths, schema_check=schema_check)
    if doc["state"] == State.FINAL:
        return doc
    if doc["state"] == State.TOMBSTONE:
        raise SidecarStateError(f"{paths.sidecar}: a tombstone cannot be finalised")
    info = closed if closed is not None and closed.finalised else wav.inspect(paths.audio)
    if not info.finalised:
        raise wav.RecordingNotClosed(paths.audio, info, "WAV header sizes are not finalised")
    size, digest = sha256_file(paths.audio)
    if size != info.bytes:
        raise wav.RecordingNotClosed(paths.audio, info, "file changed while it was hashed")
    final = copy_document(doc)
    final["state"] = State.FINAL.value
    final["recording"].update(
        ended_at=utc_stamp(ended_at),
        duration_seconds=info.duration_seconds,
        bytes=size,
        sha256=digest,
        has_audio=not info.header_only,
    )
    final["updated_at"] = utc_stamp(ended_at)
    if schema_check:
        validate(final)
    return final


def finalise(
    paths: RecordingPaths,
    *,
    ended_at: datetime,
    doc: Mapping[str, Any] | None = None,
    schema_check: bool = True,
    dir_sync: Callable[[Path], None] | None = None,
) -> dict[str, Any]:
    """Finalise the sidecar (see :func:`prepare_final`) and return the written document.

    ``has_audio`` False means a header-only file: the caller decides (normally
    ``tombstone(paths, reason="no_audio", at=...)``). Blocking file I/O; from asyncio use
    :func:`finalise_when_closed`.
    """
    final = prepare_final(paths, ended_at=ended_at, doc=doc, schema_check=schema_check)
    # MixMonitor wrote the audio with Asterisk's umask: 0640 at most (R32), before the sidecar
    # says final (whoever sees a final sidecar sees the audio's final mode too)
    if paths.audio.exists():
        tighten_mode(paths.audio)
    write(paths, final, schema_check=schema_check, dir_sync=dir_sync)
    return final


async def finalise_when_closed(
    paths: RecordingPaths,
    *,
    ended_at: datetime,
    interval: float = 0.05,
    doc: Mapping[str, Any] | None = None,
    schema_check: bool = True,
) -> dict[str, Any]:
    """For the app after the channel hung up: wait for MixMonitor to close the file, then
    finalise in a worker thread (hashing a long recording must not stall the event loop).

    Bound it: ``async with asyncio.timeout(10): await finalise_when_closed(...)``. On timeout the
    sidecar stays ``recording`` and ``reconcile`` picks it up later.
    """
    await wav.wait_closed(paths.audio, interval=interval)
    return await asyncio.to_thread(
        finalise, paths, ended_at=ended_at, doc=doc, schema_check=schema_check
    )


def prepare_tombstone(
    paths: RecordingPaths, *, reason: str, at: datetime, schema_check: bool = True
) -> dict[str, Any]:
    """The tombstone replacing the sidecar of ``paths``, computed but not written.

    Keeps the recording's sha256 (from the final sidecar, else hashed from the audio if present,
    else null). Works without a sidecar; an existing tombstone is returned unchanged. A sidecar
    that cannot be read raises ``MalformedDocument``: nothing is deleted on a guess. Legal holds
    are the caller's business: check them before calling this.
    """
    try:
        doc: dict[str, Any] | None = load(paths, schema_check=schema_check)
    except FileNotFoundError:
        doc = None
    if doc is not None and doc["state"] == State.TOMBSTONE:
        return doc
    digest: str | None = None
    if doc is not None and doc["state"] == State.FINAL:
        digest = doc["recording"]["sha256"]
    elif paths.audio.exists():
        digest = sha256_file(paths.audio)[1]
    stamp = utc_stamp(at)
    tomb: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "state": State.TOMBSTONE.value,
        "call": {"uniqueid": paths.uniqueid},
        "recording": {"file": paths.relative, "sha256": digest},
        "deleted_at": stamp,
        "reason": reason,
        "updated_at": stamp,
    }
    if schema_check:
        validate(tomb)
    return tomb


def tombstone(paths: RecordingPaths, *, reason: str, at: datetime) -> dict[str, Any]:
    """Delete the audio and replace the sidecar by a tombstone (idempotent); return it."""
    tomb = prepare_tombstone(paths, reason=reason, at=at)
    write(paths, tomb)
    return tomb


def _check_belongs(paths: RecordingPaths, doc: Mapping[str, Any]) -> None:
    uniqueid = doc["call"]["uniqueid"]
    file = doc["recording"]["file"]
    if uniqueid != paths.uniqueid or file != paths.relative:
        raise MalformedDocument(
            paths.sidecar,
            f"sidecar names call {uniqueid!r} / file {file!r}, expected "
            f"{paths.uniqueid!r} / {paths.relative!r}",
        )
