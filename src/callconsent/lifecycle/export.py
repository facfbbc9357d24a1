"""Subject access export (R27, R37): one zip archive for a data subject, with an export id.

Contents: ``audio/<call id>.wav`` for each recording with audio, ``sidecars/<call id>.json``
(the sidecar as stored, tombstones included), ``ledger-entries.jsonl`` (every ledger line about
those calls, refusals included, byte for byte, so each line's hash can be checked against the
chain; only calls whose evidence was anonymised have their caller number/name nulled),
``callers.json`` (the caller number and name of each ``call`` line whose caller the ledger holds
sealed, decrypted on the fly: ``erased`` once its key was destroyed), the bilingual
``cover-sheet.md`` and ``manifest.json``.

Each export gets an id (uuid4 hex) and is logged before the archive appears: a ledger ``export``
entry (who, why, when, which call ids, the sha256 of every exported file and of the archive,
the identity check and request date if given; never the caller number) and an audit line.
Recordings the agent flagged as containing health/CPR data (sidecar ``restricted: true``, R22)
are exported to the data subject as any other, and listed under ``restricted`` in the manifest
and the summary, so whoever handles the archive knows which items need restricted handling.
Recordings under a legal hold are withheld unless ``include_held`` (the legal role; R26) and
are listed. Nothing is ever sent anywhere: the archive is written to ``out_dir`` (mode 0600).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callconsent.encryption import at_rest_for
from callconsent.evidence import sidecar
from callconsent.evidence.at_rest import plain_chunks
from callconsent.evidence.crypto import DecryptionError
from callconsent.evidence.fsio import MalformedDocument, dumps, fsync_dir, utc_stamp
from callconsent.evidence.paths import UnsafeIdentifier
from callconsent.lifecycle import _scan, _trust, query
from callconsent.lifecycle._context import Context
from callconsent.lifecycle._schema import EXPORT
from callconsent.lifecycle.audit import os_user
from callconsent.lifecycle.cover import cover_sheet
from callconsent.lifecycle.errors import LifecycleError
from callconsent.lifecycle.kept_exports import archive_name
from callconsent.lifecycle.presence import require_recordings

if TYPE_CHECKING:
    from callconsent.config import Config

SOURCE = "export"
ARCHIVE_MODE = 0o600


class ExportError(LifecycleError):
    """An export request that cannot be carried out."""


@dataclass(slots=True)
class ExportResult:
    export_id: str
    archive: Path
    archive_sha256: str
    call_ids: list[str]
    files: list[dict[str, Any]] = field(default_factory=list)  # name, sha256, uniqueid
    audio_files: int = 0
    ledger_entries: int = 0
    withheld: list[dict[str, Any]] = field(default_factory=list)  # held recordings left out
    restricted: list[str] = field(default_factory=list)  # flagged sensitive (R22): call ids
    problems: list[str] = field(default_factory=list)
    ledger_seq: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "export_id": self.export_id,
            "archive": str(self.archive),
            "archive_sha256": self.archive_sha256,
            "call_ids": self.call_ids,
            "audio_files": self.audio_files,
            "ledger_entries": self.ledger_entries,
            "files": self.files,
            "withheld": self.withheld,
            "restricted": self.restricted,
            "problems": self.problems,
            "ledger_seq": self.ledger_seq,
        }

    def summary(self) -> str:
        lines = [
            f"withheld (legal hold): {w['call_id']} ({w['reason']}, case {w['case_ref']})"
            for w in self.withheld
        ]
        lines += [
            f"restricted (health/CPR data, flagged by the agent): {c}" for c in self.restricted
        ]
        lines += [f"problem: {p}" for p in self.problems]
        lines.append(
            f"export {self.export_id}: {len(self.call_ids)} call(s), "
            f"{self.audio_files} audio file(s), {self.ledger_entries} ledger entry(ies)"
            f" -> {self.archive} (sha256 {self.archive_sha256}); not sent anywhere"
        )
        return "\n".join(lines)


class _Archive:
    """A zip being written, hashing every member."""

    def __init__(self, zf: zipfile.ZipFile) -> None:
        self.zf = zf
        self.files: list[dict[str, Any]] = []

    def add_bytes(self, name: str, data: bytes, uniqueid: str | None) -> None:
        self.zf.writestr(name, data)
        self.files.append(
            {"name": name, "sha256": hashlib.sha256(data).hexdigest(), "uniqueid": uniqueid}
        )

    def add_chunks(
        self, name: str, chunks: Iterator[bytes], uniqueid: str, *, expected: str, relative: str
    ) -> None:
        """A member streamed from ``chunks`` (the WAV, decrypted if it is encrypted at rest); the
        WAV must still hash to ``expected`` (the evidence's sha256)."""
        digest = hashlib.sha256()
        with self.zf.open(name, "w") as dst:
            for block in chunks:
                digest.update(block)
                dst.write(block)
        if digest.hexdigest() != expected:
            raise ExportError(
                f"{relative} changed while it was exported; no archive written, retry"
            )
        self.files.append({"name": name, "sha256": digest.hexdigest(), "uniqueid": uniqueid})


def export(
    ctx: Context,
    config: Config,
    selector: query.Selector,
    *,
    reason: str,
    out_dir: Path,
    include_held: bool = False,
    identity_check: str | None = None,
    request_date: date | None = None,
) -> ExportResult:
    """Build the archive for the calls ``selector`` matches; log it; return what it holds."""
    if selector.empty:
        raise ExportError("say whose data: --number, --call-id, --from/--to or --agent")
    if not reason.strip():
        raise ExportError("an export needs a reason")
    if selector.call_id is not None and _trust.id_problem(selector.call_id) is not None:
        raise ExportError(f"--call-id {selector.call_id!r} is not an Asterisk uniqueid")
    export_id = uuid.uuid4().hex
    archive = out_dir / archive_name(export_id)
    with ctx.index.locked(shared=True):
        ctx.index.update()
        require_recordings(ctx.index, ctx.recordings_dir)
        call_ids = query.find_calls(ctx.index, selector)
        if not call_ids:
            raise ExportError(f"no calls found for {selector.said()}: no archive was written")
        out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        call_ids, bad_ids = _trust.split_ids(call_ids)
        call_ids, contested = _trust.of_subject(ctx, call_ids, selector.number)
        result = ExportResult(export_id, archive, "", call_ids, problems=bad_ids + contested)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{archive.name}.", suffix=".tmp", dir=out_dir)
        tmp = Path(tmp_name)
        try:
            os.fchmod(fd, ARCHIVE_MODE)
            with os.fdopen(fd, "wb") as raw:
                with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                    _fill(ctx, config, zipfile_archive := _Archive(zf), result, include_held)
                raw.flush()
                os.fsync(raw.fileno())
            result.files = zipfile_archive.files
            result.archive_sha256 = hashlib.sha256(tmp.read_bytes()).hexdigest()
            entry = _log(ctx, result, selector, reason, identity_check, request_date)
            os.replace(tmp, archive)
            fsync_dir(out_dir)
        finally:  # gone after the replace; left over only when something failed
            tmp.unlink(missing_ok=True)
    result.ledger_seq = entry["seq"]
    ctx.audit.write(
        "export",
        actor=ctx.actor,
        at=ctx.now,
        reason=reason,
        ids=call_ids,
        export_id=export_id,
        archive=str(archive),
        ledger_seq=entry["seq"],
        selector=selector.describe(),
        withheld=[w["call_id"] for w in result.withheld],
    )
    return result


def _fill(
    ctx: Context, config: Config, out: _Archive, result: ExportResult, include_held: bool
) -> None:
    holds = query.holds(ctx.index)
    at_rest = at_rest_for(config)  # decrypts recordings encrypted at rest (R33)
    purposes: dict[str, tuple[str, int]] = {}
    for rec in query.recordings(ctx.index, result.call_ids):
        try:
            paths = ctx.paths(rec.file)
            problem = _trust.pointer_problem(rec.uniqueid, paths)
            if problem is not None:
                result.problems.append(problem)
                continue
            doc = sidecar.load(paths)
        except FileNotFoundError:
            result.problems.append(f"{rec.file}: no sidecar")
            continue
        except (MalformedDocument, UnsafeIdentifier) as exc:
            result.problems.append(f"{rec.file}: {exc} (skipped)")
            continue
        for p in doc.get("purposes", ()):
            purposes[p["purpose"]] = (p["lawful_basis"], p["retention_days"])
        hold = holds.get(rec.uniqueid)
        if hold is not None and not include_held:
            result.withheld.append({**hold.as_dict(), "call_id": rec.uniqueid})
            continue
        if doc.get("restricted") is True:  # health/CPR data flagged by the agent (R22)
            result.restricted.append(rec.uniqueid)
        out.add_bytes(f"sidecars/{rec.uniqueid}.json", paths.sidecar.read_bytes(), rec.uniqueid)
        if doc["state"] == sidecar.State.FINAL and doc["recording"]["has_audio"]:
            problem = _trust.audio_problem(ctx, rec.uniqueid, paths, doc, require_hash=True)
            if problem is not None:
                result.problems.append(problem)
                continue
            try:
                chunks = plain_chunks(at_rest, paths, doc)
                first = next(chunks, b"")  # opens the key before the member exists
                out.add_chunks(
                    f"audio/{rec.uniqueid}.wav",
                    itertools.chain([first], chunks),
                    rec.uniqueid,
                    expected=doc["recording"]["sha256"],
                    relative=str(paths.relative),
                )
            except (DecryptionError, FileNotFoundError) as exc:  # key destroyed, not configured
                result.problems.append(f"{rec.file}: audio not exported: {exc}")
                continue
            result.audio_files += 1
    lines: list[bytes] = []
    opened: dict[str, dict[str, str | None]] = {}
    for seq, offset, length in query.entry_positions(ctx.index, result.call_ids):
        if offset is None or length is None:
            result.problems.append(f"ledger entry seq {seq}: position not indexed yet (skipped)")
            continue
        raw = _scan.read_line(ctx.ledger_path, offset, length)
        try:
            raw = _ledger_line(ctx, raw, purposes, opened)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            result.problems.append(f"ledger entry seq {seq}: unreadable ({exc}; skipped)")
            continue
        lines.append(raw + b"\n")
    result.ledger_entries = len(lines)
    out.add_bytes("ledger-entries.jsonl", b"".join(lines), None)
    if opened:
        text = dumps(opened, indent=2) + "\n"
        out.add_bytes("callers.json", text.encode("ascii"), None)
    created = utc_stamp(ctx.now)
    sheet = cover_sheet(
        config,
        export_id=result.export_id,
        created=created,
        purposes=purposes,
        audio=result.audio_files,
        entries=result.ledger_entries,
        calls=len(result.call_ids),
        withheld=len(result.withheld),
        files=list(out.files),
    )
    out.add_bytes("cover-sheet.md", sheet.encode("utf-8"), None)
    manifest = {
        "export_id": result.export_id,
        "created": created,
        "calls": result.call_ids,
        "files": list(out.files),
        "withheld": [w["call_id"] for w in result.withheld],
        "restricted": list(result.restricted),
    }
    out.add_bytes("manifest.json", (dumps(manifest, indent=2) + "\n").encode("ascii"), None)


def _ledger_line(
    ctx: Context,
    raw: bytes,
    purposes: dict[str, tuple[str, int]],
    opened: dict[str, dict[str, str | None]],
) -> bytes:
    """The line as exported (caller fields nulled once anonymised); collects its purposes and
    a sealed caller, decrypted (``erased`` once its key is destroyed), into ``opened``."""
    entry = json.loads(raw)
    if entry.get("type") != "call":
        return raw
    found = {
        p["purpose"]: (p["lawful_basis"], p["retention_days"]) for p in entry.get("purposes") or ()
    }
    call = entry["call"]
    if "caller" in call:
        number, name = ctx.index.subjects.caller(call).shown()
        if query.is_anonymised(ctx.index, call["uniqueid"]):
            number = name = None
        opened[str(call["uniqueid"])] = {"caller_number": number, "caller_name": name}
        return raw
    if query.is_anonymised(ctx.index, call["uniqueid"]):
        call["caller_number"] = call["caller_name"] = None
        raw = dumps(entry).encode("ascii")
    for name, basis in found.items():
        purposes.setdefault(name, basis)
    return raw


def _log(
    ctx: Context,
    result: ExportResult,
    selector: query.Selector,
    reason: str,
    identity_check: str | None,
    request_date: date | None,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "type": EXPORT,
        "at": utc_stamp(ctx.now),
        "export_id": result.export_id,
        "actor": ctx.actor or os_user(),
        "reason": reason,
        "selector": selector.describe(),
        "calls": result.call_ids,
        "files": result.files,
        "archive": result.archive.name,
        "archive_sha256": result.archive_sha256,
        "withheld": [w["call_id"] for w in result.withheld],
        "identity_check": identity_check,
        "request_date": request_date.isoformat() if request_date else None,
        "respond_by": _one_month(request_date).isoformat() if request_date else None,
        "source": SOURCE,
    }
    entry = ctx.append(record)
    ctx.index.add_ledger_entry(entry)
    return entry


def _one_month(start: date) -> date:
    """Art 12(3): one month from the request (the same day next month, or its last day)."""
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    day = start.day
    while True:
        try:
            return date(year, month, day)
        except ValueError:  # 31 January -> 28/29 February
            day -= 1
