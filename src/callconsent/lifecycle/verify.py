"""Integrity check (R34): every final sidecar's size and sha256 against its audio, and the
ledger's hash chain. Streams one day folder and one ledger line at a time; memory does not grow
with the number of recordings, only with the number of problems found.

Problem kinds: ``malformed_sidecar``, ``audio_missing``, ``size_mismatch``, ``sha256_mismatch``,
``unreadable_audio``, ``orphan_audio`` (audio without sidecar), ``audio_after_tombstone``,
``ledger_missing`` and ``ledger_<kind>`` for each :class:`~callconsent.evidence.ledger.ChainProblem`;
from the ledger's ``recording_final`` lines against the disk: ``evidence_missing`` (neither
sidecar nor audio, and no tombstone or ``deleted`` line), ``recordings_unavailable`` (no day
folder at all while such recordings are expected: the volume looks unmounted) and
``ledger_bad_recording`` (a line whose recording path is unusable); ``symlinked_folder`` for a
year, month or day folder that is a symlink (never followed, so never checked).
Sidecars still in state ``recording`` are counted (``unfinalised``), not reported: they belong to
calls in progress or to ``reconcile``.

Fast by default: each sidecar gets a structural check of what verify relies on (valid JSON, a
known state, the call and file it names match its place, a final one's ``bytes`` and
``sha256`` well formed), not the full JSON Schema, which costs about a millisecond per sidecar.
``deep=True`` (``callconsent verify --deep``) validates every sidecar and every ledger entry
against the schemas as well (``malformed_sidecar`` with the schema's words, ``ledger_schema``).
Every final recording's audio is hashed either way (into one reused buffer). Day folders are
checked once each to resolve inside the recordings folder, not once per file: the same rule as
:func:`callconsent.evidence.paths.recording_paths`, whose per-file ``realpath`` dominated at scale.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Final

from callconsent.evidence import sidecar
from callconsent.evidence.anchor import AnchorUnreadable, read_anchor
from callconsent.evidence.fsio import MalformedDocument, read_json
from callconsent.evidence.ledger import iter_entries, verify_chain
from callconsent.evidence.paths import (
    AUDIO_SUFFIX,
    SIDECAR_SUFFIX,
    UNIQUEID_RE,
    FoundRecording,
    RecordingPaths,
    UnsafeIdentifier,
    iter_day_folders,
    iter_symlinked_folders,
    relative_paths_unresolved,
)

_SHA256_RE: Final = re.compile(r"[0-9a-f]{64}")
_STATES: Final = frozenset(s.value for s in sidecar.State)
_CHUNK: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class VerifyProblem:
    path: Path
    kind: str
    detail: str
    line_no: int | None = None  # for ledger problems

    def __str__(self) -> str:
        where = f"{self.path}:{self.line_no}" if self.line_no is not None else str(self.path)
        return f"{where}: {self.kind}: {self.detail}"


@dataclass(slots=True)
class VerifyReport:
    problems: list[VerifyProblem] = field(default_factory=list)
    sidecars: int = 0
    recordings_hashed: int = 0
    tombstones: int = 0
    unfinalised: int = 0
    anchor: dict[str, Any] | None = None  # where the ledger's anchor is, and what it says

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        """For ``--json`` output."""
        return {
            "ok": self.ok,
            "sidecars": self.sidecars,
            "recordings_hashed": self.recordings_hashed,
            "tombstones": self.tombstones,
            "unfinalised": self.unfinalised,
            "anchor": self.anchor,
            "problems": [
                {"path": str(p.path), "line": p.line_no, "kind": p.kind, "detail": p.detail}
                for p in self.problems
            ],
        }

    def summary(self) -> str:
        """One line per problem, then a verdict line."""
        verdict = "intact" if self.ok else f"{len(self.problems)} problem(s)"
        counts = (
            f"{self.sidecars} sidecar(s), {self.recordings_hashed} recording(s) hashed, "
            f"{self.tombstones} tombstone(s), {self.unfinalised} still recording"
        )
        lines = [*map(str, self.problems)]
        if self.anchor is not None:
            seq = self.anchor["seq"]
            lines.append(
                f"ledger anchor: {self.anchor['path']} "
                + (f"(head seq {seq})" if seq is not None else "(none)")
            )
        return "\n".join([*lines, f"verify: {verdict}; {counts}"])


def verify(
    recordings_dir: Path,
    ledger_path: Path,
    *,
    anchor: tuple[int, str] | None = None,
    anchor_path: Path | None = None,
    on_problem: Callable[[VerifyProblem], None] | None = None,
    deep: bool = False,
) -> VerifyReport:
    """Check every recording under ``recordings_dir`` and the ledger at ``ledger_path``.

    ``on_problem`` is called as each problem is found (for streaming output); ``anchor`` is an
    optional ``(seq, sha256)`` from :func:`callconsent.evidence.ledger.head` kept outside the ledger,
    ``anchor_path`` the anchor file the ledger keeps (:mod:`callconsent.evidence.anchor`), read
    for it (a missing or unreadable anchor is a problem once the ledger has lines);
    ``deep`` adds full schema validation of sidecars and ledger entries (see the module doc).
    """
    report = VerifyReport()

    def problem(path: Path, kind: str, detail: str, line_no: int | None = None) -> None:
        found = VerifyProblem(path, kind, detail, line_no or None)
        report.problems.append(found)
        if on_problem is not None:
            on_problem(found)

    for relative, target in iter_symlinked_folders(recordings_dir):
        problem(
            recordings_dir / relative,
            "symlinked_folder",
            f"a symlink to {target}: its recordings are neither verified nor purged (symlinks "
            "are never followed); move the folder back into the recordings folder",
        )
    if anchor is None and anchor_path is not None:
        anchor = _read_anchor(anchor_path, ledger_path, report, problem)
    buffer = memoryview(bytearray(_CHUNK))
    for found in _recordings(recordings_dir):
        _check_recording(found, report, problem, deep=deep, buffer=buffer)
    try:
        for chain_problem in verify_chain(ledger_path, anchor=anchor, check_schema=deep):
            problem(
                ledger_path,
                f"ledger_{chain_problem.kind}",
                chain_problem.detail,
                chain_problem.line_no,
            )
        _check_ledger_recordings(recordings_dir, ledger_path, problem)
    except FileNotFoundError:
        problem(ledger_path, "ledger_missing", "the ledger file does not exist")
    return report


def _read_anchor(
    anchor_path: Path,
    ledger_path: Path,
    report: VerifyReport,
    problem: Callable[[Path, str, str], None],
) -> tuple[int, str] | None:
    report.anchor = {"path": str(anchor_path), "seq": None}
    try:
        found = read_anchor(anchor_path)
    except (OSError, AnchorUnreadable) as exc:
        problem(anchor_path, "ledger_anchor_unreadable", str(exc))
        return None
    if found is None:
        try:
            empty = ledger_path.stat().st_size == 0
        except FileNotFoundError:
            empty = True
        if not empty:
            problem(
                anchor_path,
                "ledger_anchor_missing",
                "no anchor: lines cut from the end of the ledger cannot be seen (the next "
                "append writes one)",
            )
        return None
    report.anchor["seq"] = found.seq
    return found.seq, found.sha256


def _check_ledger_recordings(
    recordings_dir: Path, ledger_path: Path, problem: Callable[[Path, str, str, int], None]
) -> None:
    """Every recording a ``recording_final`` line names must still have its sidecar or audio,
    unless a later ``deleted`` line says it was deleted (a tombstone is a sidecar). One ``stat``
    per finished recording; memory grows only with the recordings found missing."""
    missing: dict[str, tuple[Path, int]] = {}
    for line in iter_entries(ledger_path):
        entry = line.entry
        if entry is None or entry["type"] not in ("recording_final", "deleted"):
            continue
        call, rec = entry.get("call"), entry.get("recording")
        uniqueid = call.get("uniqueid") if isinstance(call, dict) else None
        file = rec.get("file") if isinstance(rec, dict) else None
        if not isinstance(uniqueid, str) or not isinstance(file, str):
            continue  # not the schema's shape: --deep reports it (ledger_schema)
        if entry["type"] == "deleted":
            missing.pop(uniqueid, None)
            continue
        try:
            paths = relative_paths_unresolved(recordings_dir, file)
        except UnsafeIdentifier as exc:
            problem(ledger_path, "ledger_bad_recording", str(exc), line.line_no)
            continue
        if paths.uniqueid != uniqueid:
            problem(
                ledger_path,
                "ledger_bad_recording",
                f"recording {file} does not belong to call {uniqueid}",
                line.line_no,
            )
        elif os.path.lexists(paths.sidecar) or os.path.lexists(paths.audio):
            missing.pop(uniqueid, None)
        else:
            missing[uniqueid] = (paths.audio, line.line_no)
    if missing and not any(True for _ in iter_day_folders(recordings_dir.absolute())):
        problem(
            recordings_dir,
            "recordings_unavailable",
            f"no day folder at all, but the ledger records {len(missing)} finished "
            "recording(s) never deleted: is the recordings volume mounted?",
            0,
        )
    for audio, line_no in missing.values():
        problem(
            audio,
            "evidence_missing",
            f"ledger line {line_no} records this recording as finished; neither its sidecar "
            "nor its audio exists, and no tombstone or deleted line says it was deleted",
            0,
        )


def _load(paths: RecordingPaths, *, deep: bool) -> dict[str, Any]:
    """The sidecar of ``paths``: schema-validated with ``deep``, else structurally checked."""
    if deep:
        return sidecar.load(paths)
    doc = read_json(paths.sidecar)
    try:
        state, call, rec = doc["state"], doc["call"], doc["recording"]
        if state not in _STATES:
            raise ValueError(f"unknown state {state!r}")
        if call["uniqueid"] != paths.uniqueid or rec["file"] != paths.relative:
            raise ValueError(
                f"sidecar names call {call['uniqueid']!r} / file {rec['file']!r}, "
                f"expected {paths.uniqueid!r} / {paths.relative!r}"
            )
        if state == sidecar.State.FINAL:
            size, sha = rec["bytes"], rec["sha256"]
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise ValueError(f"recording.bytes {size!r} is not a byte count")
            if not isinstance(sha, str) or not _SHA256_RE.fullmatch(sha):
                raise ValueError(f"recording.sha256 {sha!r} is not a sha256")
    except (KeyError, TypeError, ValueError) as exc:
        detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        raise MalformedDocument(paths.sidecar, detail) from exc
    return doc


def _check_recording(
    found: FoundRecording,
    report: VerifyReport,
    problem: Callable[[Path, str, str], None],
    *,
    deep: bool,
    buffer: memoryview,
) -> None:
    paths = found.paths
    if not found.has_sidecar:
        problem(paths.audio, "orphan_audio", "recording without a sidecar")
        return
    report.sidecars += 1
    try:
        doc = _load(paths, deep=deep)
    except FileNotFoundError:  # deleted (purged) since the folder was listed
        return
    except MalformedDocument as exc:
        problem(paths.sidecar, "malformed_sidecar", exc.detail)
        return
    state = doc["state"]
    if state == sidecar.State.TOMBSTONE:
        report.tombstones += 1
        if found.has_audio:
            problem(paths.audio, "audio_after_tombstone", "audio still present after deletion")
        return
    if state == sidecar.State.RECORDING:
        report.unfinalised += 1
        return
    if not found.has_audio:
        problem(paths.audio, "audio_missing", "final sidecar but no recording")
        return
    # an encrypted file (R33) is checked against the encrypted file's own size and sha256
    on_disk = doc["recording"].get("encryption") or doc["recording"]
    expected_bytes = on_disk["bytes"]
    expected_sha = on_disk["sha256"]
    try:
        actual_bytes = paths.audio.stat().st_size
        if actual_bytes != expected_bytes:
            problem(
                paths.audio, "size_mismatch", f"{actual_bytes} bytes, sidecar says {expected_bytes}"
            )
            return
        actual_sha = _sha256(paths.audio, buffer)
    except OSError as exc:
        problem(paths.audio, "unreadable_audio", str(exc))
        return
    report.recordings_hashed += 1
    if actual_sha != expected_sha:
        problem(paths.audio, "sha256_mismatch", f"sha256 {actual_sha}, sidecar says {expected_sha}")


def _sha256(path: Path, buffer: memoryview) -> str:
    digest = hashlib.sha256()
    with path.open("rb", buffering=0) as f:
        while n := f.readinto(buffer):
            digest.update(buffer[:n])
    return digest.hexdigest()


def _recordings(root: Path) -> Iterator[FoundRecording]:
    """As :func:`callconsent.evidence.paths.iter_recordings` (same folders and names, same order), with
    the date and containment checks made once per day folder."""
    base = root.absolute()
    real_base = base.resolve()
    for relative_day, directory in iter_day_folders(base):
        year, month, day = relative_day.split("/")
        try:
            date(int(year), int(month), int(day))
        except ValueError:
            continue  # e.g. 2026/13/45: not a recordings folder
        if not directory.resolve().is_relative_to(real_base):
            continue
        yield from _day(directory, relative_day)


def _day(directory: Path, relative_day: str) -> Iterator[FoundRecording]:
    found: dict[str, tuple[bool, bool]] = {}
    try:
        with os.scandir(directory) as it:
            for entry in it:
                stem, suffix = os.path.splitext(entry.name)
                if (
                    suffix in (AUDIO_SUFFIX, SIDECAR_SUFFIX)
                    and UNIQUEID_RE.fullmatch(stem)
                    and ".." not in stem
                    and entry.is_file(follow_symlinks=False)
                ):
                    audio, side = found.get(stem, (False, False))
                    found[stem] = (
                        audio or suffix == AUDIO_SUFFIX,
                        side or suffix == SIDECAR_SUFFIX,
                    )
    except FileNotFoundError:
        return
    for stem in sorted(found):
        audio, side = found[stem]
        paths = RecordingPaths(
            audio=directory / f"{stem}{AUDIO_SUFFIX}",
            sidecar=directory / f"{stem}{SIDECAR_SUFFIX}",
            relative=f"{relative_day}/{stem}{AUDIO_SUFFIX}",
            directory=directory,
        )
        yield FoundRecording(paths=paths, has_audio=audio, has_sidecar=side)
