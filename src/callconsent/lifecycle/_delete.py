"""Deleting one recording safely: shared by purge and erase.

The sidecar is re-read with full validation (the index only found the candidate). The ``deleted``
ledger entry is appended *before* the tombstone is written and the audio removed (as reconcile
does): a crash in between leaves a logged deletion still to do, which a re-run completes (at
worst the entry repeats; none is lost). A tombstone whose audio is still there is completed
without a second entry. Anything unreadable is reported and left alone.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from callconsent.evidence import sidecar
from callconsent.evidence.entries import deleted_entry
from callconsent.evidence.fsio import MalformedDocument, parse_stamp
from callconsent.evidence.keystore import destroy_key, keys_dir
from callconsent.evidence.ledger import LedgerEntryInvalid
from callconsent.evidence.paths import RecordingPaths, UnsafeIdentifier
from callconsent.lifecycle import _trust
from callconsent.lifecycle._context import Context
from callconsent.lifecycle.errors import StorageError, is_disk_full
from callconsent.lifecycle.presence import ledger_says_deleted

#: No sidecar, no audio and nothing saying the recording was deleted: never "already deleted".
MISSING = (
    "evidence missing: no sidecar, no audio, no tombstone and no deleted ledger line "
    "(recordings volume not mounted? files removed by hand?)"
)


@dataclass(frozen=True, slots=True)
class Outcome:
    call_id: str
    file: str
    action: str  # deleted | would_delete | completed | already_deleted | held | skipped | kept
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "file": self.file,
            "action": self.action,
            "detail": self.detail,
        }

    def __str__(self) -> str:
        extra = f" ({self.detail})" if self.detail else ""
        return f"{self.action}: {self.call_id} {self.file}{extra}"


def delete_recording(
    ctx: Context,
    call_id: str,
    file: str,
    *,
    reason: str,
    source: str,
    expired_only: bool,
    dry_run: bool = False,
    verify: bool = False,
) -> Outcome:
    """:func:`_delete_recording`, then the recording's data key destroyed (crypto-shredding,
    R33) whenever the audio is gone: an encrypted copy anywhere can no longer be read."""
    outcome = _delete_recording(
        ctx,
        call_id,
        file,
        reason=reason,
        source=source,
        expired_only=expired_only,
        dry_run=dry_run,
        verify=verify,
    )
    if outcome.action in ("deleted", "completed", "already_deleted"):
        try:
            destroy_key(keys_dir(ctx.ledger_path), call_id)
        except (OSError, UnsafeIdentifier) as exc:
            return Outcome(call_id, file, "skipped", f"data key not destroyed: {exc}")
    return outcome


def _delete_recording(
    ctx: Context,
    call_id: str,
    file: str,
    *,
    reason: str,
    source: str,
    expired_only: bool,
    dry_run: bool = False,
    verify: bool = False,
) -> Outcome:
    """Tombstone recording ``file`` of ``call_id`` with ``reason``. With ``expired_only`` the
    sidecar's own ``delete_after`` must have passed (the index may be stale). With ``verify``
    (erasure: ``file`` may come from a ledger pointer) the file must be the call's own and its
    audio a regular file whose sha256 the evidence confirms (see :mod:`._trust`)."""
    try:
        paths = ctx.paths(file)
        if verify and (problem := _trust.pointer_problem(call_id, paths)) is not None:
            return Outcome(call_id, file, "skipped", problem)
        doc: dict[str, Any] | None = sidecar.load(paths)
    except UnsafeIdentifier as exc:
        return Outcome(call_id, file, "skipped", f"unsafe path: {exc}")
    except FileNotFoundError:
        doc = None
    except MalformedDocument as exc:
        return Outcome(call_id, file, "skipped", f"malformed sidecar {exc.path}: {exc.detail}")
    if verify:
        problem = _trust.audio_problem(ctx, call_id, paths, doc, require_hash=doc is None)
        if problem is not None:
            return Outcome(call_id, file, "skipped", problem)
    if doc is None and not paths.audio.exists():
        if ledger_says_deleted(ctx.index, call_id):
            return Outcome(call_id, file, "already_deleted", "ledger deleted line, no files")
        return Outcome(call_id, file, "skipped", MISSING)
    if doc is not None and doc["state"] == sidecar.State.TOMBSTONE:
        if not paths.audio.exists():
            return Outcome(call_id, file, "already_deleted", f"tombstone ({doc['reason']})")
        if dry_run:
            return Outcome(call_id, file, "would_delete", "tombstone with leftover audio")
        sidecar.write(paths, doc)  # the entry was logged by the interrupted run
        _index_quietly(ctx, paths, doc)
        return Outcome(call_id, file, "completed", "leftover audio after tombstone removed")
    if expired_only:
        if doc is None:
            return Outcome(call_id, file, "skipped", "audio without sidecar: reconcile reports it")
        if parse_stamp(doc["delete_after"]) > ctx.now:
            return Outcome(call_id, file, "skipped", "not expired per its sidecar (index stale)")
    if dry_run:
        return Outcome(call_id, file, "would_delete", reason)
    try:
        tomb = sidecar.prepare_tombstone(paths, reason=reason, at=ctx.now)
        ctx.append(deleted_entry(tomb, source=source))  # StorageError: stop, nothing unlogged
        _write_tombstone(paths, tomb)
    except (OSError, MalformedDocument, LedgerEntryInvalid, sidecar.SidecarInvalid) as exc:
        return Outcome(call_id, file, "skipped", f"{type(exc).__name__}: {exc}")
    _index_quietly(ctx, paths, tomb)
    return Outcome(call_id, file, "deleted", reason)


def _write_tombstone(paths: RecordingPaths, tomb: dict[str, Any]) -> None:
    """Write the tombstone (which removes the audio). On a full disk the tombstone may not fit:
    the deletion is already in the ledger, so the audio goes first to make room, then the
    tombstone is written (a crash between leaves a final sidecar without audio, which the next
    run tombstones)."""
    try:
        sidecar.write(paths, tomb)
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        paths.audio.unlink(missing_ok=True)
        sidecar.write(paths, tomb)


def _index_quietly(ctx: Context, paths: RecordingPaths, doc: dict[str, Any]) -> None:
    """Tell the index; if it cannot be written (disk full) it catches up on its next update
    (the day folder's mtime changed)."""
    with contextlib.suppress(StorageError):
        ctx.index.add_sidecar(paths, doc)
