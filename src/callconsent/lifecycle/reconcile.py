"""After a crash or power loss: bring every recording to a final sidecar, or say why not.

What it does per ``<uniqueid>`` under the recordings folder:

============================================  ==================================================
found                                         action
============================================  ==================================================
sidecar ``recording`` + audio                 repair an unfinalised header from the file length,
                                              finalise (``recording_final`` ledger entry); a
                                              header-only file is tombstoned instead (``no_audio``,
                                              ``deleted`` entry)
sidecar ``final`` with ``has_audio`` false    tombstone ``no_audio`` (the app stopped before it)
tombstone + audio still present               complete the deletion (``deleted`` entry)
audio without sidecar, header only            tombstone ``no_audio``: a header holds no audio
audio without sidecar, with audio             repair its header if needed; **report**, never
                                              delete audio it cannot account for
sidecar ``recording`` without audio           the app stopped before MixMonitor started (a
                                              crash right after the consent, a full or
                                              read-only folder): tombstone ``no_audio``, as the
                                              app does at hangup
sidecar ``final`` without audio               report (the audio was lost after the call)
sidecar ``final``, audio in clear, config     encrypt it (R33): the app stopped between the
with ``encryption``                           recording's end and its encryption
sidecar ``recording`` with a purpose still     the agent's decision never came (the app crashed
waiting for the agent (``agent_purposes``     while it waited): refused, ``agent_unknown``, as
``pending``)                                  the app does at hangup (``agent_decision`` entry);
                                              nothing else left: tombstone; then as above
malformed sidecar / unreadable WAV            report with the path, skip, never delete
stale ``.<name>.tmp`` from an atomic write    remove (an uncommitted draft; the sidecar is intact)
WAV in the spool (``storage.spool_dir``),     the recording's audio while it was made: every
none in the tree                              row above applies to it (finalise, encrypt into the
                                              tree and delete the spooled file, or tombstone)
WAV in the spool beside an encrypted file     delete the spooled copy (a crash after the
or a tombstone                                encryption, or a deletion during the call)
WAV in the spool without any sidecar          **report**, never delete (as in the tree)
ledger's last line without its newline        moved aside to ``<ledger>.torn-<offset>`` first
                                              (:mod:`callconsent.evidence.ledger_repair`)
============================================  ==================================================

Files of calls that may still be in progress are left alone: a file counts as settled only when
``is_active(uniqueid)`` (if given, e.g. from ARI's channel list) says False and both files are
older than ``stale_after``. After an Asterisk crash, pass ``stale_after=timedelta(0)``.

Every fix is logged to the ledger *before* the files change, so a run interrupted at any point
can be re-run: it finds the remaining work from the files' states (at worst an entry repeats,
none is lost). ``dry_run`` changes nothing and reports what would be done.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from callconsent.agents.evidence import AgentEvidence, decision_entry, pending_purposes, resolve
from callconsent.evidence import sidecar, wav
from callconsent.evidence.at_rest import AtRest, file_is_encrypted
from callconsent.evidence.entries import deleted_entry, recording_final_entry
from callconsent.evidence.fsio import TEMP_NAME_RE, MalformedDocument, utc_stamp
from callconsent.evidence.ledger import Ledger, LedgerEntryInvalid
from callconsent.evidence.ledger_repair import find_torn_tail, repair_torn_tail
from callconsent.evidence.paths import (
    UNIQUEID_RE,
    FoundRecording,
    RecordingPaths,
    find_recording,
    in_tree,
    iter_recordings,
    spooled,
)
from callconsent.lifecycle._reconcile_report import ReconcileItem, ReconcileReport

__all__ = ["ReconcileItem", "ReconcileReport", "reconcile"]

SOURCE = "reconcile"
AGENT_UNKNOWN = "agent_unknown"  # the agent's decision never came (as the app at hangup)
DEFAULT_STALE_AFTER = timedelta(hours=6)


class _Run:
    def __init__(
        self,
        ledger: Ledger,
        now: datetime,
        dry_run: bool,
        stale_after: timedelta,
        is_active: Callable[[str], bool] | None,
        at_rest: AtRest | None = None,
    ) -> None:
        self.at_rest = at_rest  # encrypts final recordings left in clear (R33)
        self.ledger = ledger
        self.now = now
        self.dry_run = dry_run
        self.cutoff = now - stale_after
        self.is_active = is_active
        self.report = ReconcileReport(dry_run=dry_run)
        self.spool_seen: set[str] = set()  # spooled WAVs the tree's pass took care of

    def fixed(self, path: Path, kind: str, detail: str) -> None:
        self.report.fixed.append(ReconcileItem(path, kind, detail))

    def reported(self, path: Path, kind: str, detail: str) -> None:
        self.report.reported.append(ReconcileItem(path, kind, detail))

    def settled(self, paths: RecordingPaths) -> bool:
        if self.is_active is not None and self.is_active(paths.uniqueid):
            return False
        return all(_mtime(p) <= self.cutoff for p in (paths.audio, paths.sidecar) if p.exists())

    # -- per recording ---------------------------------------------------------------

    def recording(self, found: FoundRecording, spool: Path | None = None) -> None:
        self.report.checked += 1
        if spool is not None and not found.has_audio:  # the WAV never left the spool
            live = spooled(found.paths, spool)
            if live.audio.exists():
                self.spool_seen.add(live.uniqueid)
                found = FoundRecording(live, has_audio=True, has_sidecar=found.has_sidecar)
        paths = found.paths
        try:
            if not self.settled(paths):
                self.report.in_progress += 1
                return
            doc = sidecar.load(paths) if found.has_sidecar else None
        except FileNotFoundError:  # removed since the folder was listed
            return
        except MalformedDocument as exc:
            self.reported(paths.sidecar, "malformed_sidecar", f"{exc.detail} (skipped)")
            return
        try:
            self._dispatch(found, doc)
        except (
            OSError,
            wav.WavError,
            wav.RecordingNotClosed,
            MalformedDocument,
            LedgerEntryInvalid,
            sidecar.SidecarInvalid,
        ) as exc:
            self.reported(paths.audio, "fix_failed", f"{type(exc).__name__}: {exc}")

    def _dispatch(self, found: FoundRecording, doc: dict[str, Any] | None) -> None:
        paths = found.paths
        if doc is not None and doc["state"] == sidecar.State.RECORDING:
            doc = self._resolve_pending(paths, doc)
            if doc is None:
                return
        if doc is None:
            self._orphan_audio(paths)
        elif doc["state"] == sidecar.State.TOMBSTONE:
            if found.has_audio:
                self._tombstone(paths, doc, "deletion_completed")
        elif not found.has_audio and doc["state"] == sidecar.State.RECORDING:
            self._tombstone(paths, None, "tombstoned_never_started")
        elif not found.has_audio:
            self.reported(
                paths.sidecar,
                "recording_missing",
                f"sidecar in state {doc['state']} but no audio file",
            )
        elif doc["state"] == sidecar.State.RECORDING:
            self._finalise(paths)
            self._encrypt(paths)
        elif not doc["recording"]["has_audio"]:
            self._tombstone(paths, None, "tombstoned_no_audio")
        else:
            self._encrypt(paths)

    def _encrypt(self, paths: RecordingPaths) -> None:
        """A final recording still in clear while encryption is configured: a crash (or an
        error) came between its end and its encryption (R33)."""
        if self.at_rest is None or not paths.audio.exists() or file_is_encrypted(paths.audio):
            return
        if self.dry_run:
            self.fixed(paths.audio, "encrypted", "would encrypt (in clear after its end)")
            return
        tree = in_tree(paths)
        try:
            done = self.at_rest.encrypt(tree, source=None if tree == paths else paths.audio)
        except (OSError, ValueError) as exc:
            self.reported(paths.audio, "encrypt_failed", f"{type(exc).__name__}: {exc}")
            return
        if done is not None:
            self.fixed(paths.audio, "encrypted", "was in clear after its end")

    def _resolve_pending(self, paths: RecordingPaths, doc: dict[str, Any]) -> dict[str, Any] | None:
        """Purposes still waiting for the answering agent's decision, which can no longer come:
        refused (``agent_unknown``; fail closed). Returns the sidecar to go on with, or None
        when nothing was left to record (then tombstoned)."""
        waiting = pending_purposes(doc)
        if not waiting:
            return doc
        kept = [p["purpose"] for p in doc["purposes"]]
        detail = f"{', '.join(waiting)} not recorded: no decision from the agent"
        if self.dry_run:
            self.fixed(paths.sidecar, AGENT_UNKNOWN, f"would resolve: {detail}")
            return doc if kept else None
        agent = AgentEvidence(None, "unknown", None, self.now)
        self.ledger.append(
            decision_entry(
                uniqueid=paths.uniqueid,
                agent=agent,
                status="refused",
                reason=AGENT_UNKNOWN,
                purposes=waiting,
                kept_purposes=kept,
                recording=paths.relative if kept else None,
            )
        )
        self.fixed(paths.sidecar, AGENT_UNKNOWN, detail)
        if not kept:
            tomb = sidecar.prepare_tombstone(paths, reason=AGENT_UNKNOWN, at=self.now)
            self._tombstone(paths, tomb, "tombstoned_agent_unknown")
            return None
        resolved = resolve(doc, given=False, reason=AGENT_UNKNOWN, agent=agent)
        sidecar.write(paths, resolved)
        return resolved

    def _inspect(self, paths: RecordingPaths) -> wav.WavInfo | None:
        try:
            return wav.inspect(paths.audio)
        except wav.WavError as exc:
            self.reported(paths.audio, "unreadable_audio", f"{exc} (left as it is)")
            return None

    def _finalise(self, paths: RecordingPaths) -> None:
        info = self._inspect(paths)
        if info is None:
            return
        if info.header_only:
            self._tombstone(paths, None, "tombstoned_no_audio")
            return
        repaired = not info.finalised
        if self.dry_run:
            if repaired:
                self.fixed(paths.audio, "header_repaired", f"would set data size {info.data_bytes}")
            self.fixed(paths.sidecar, "finalised", "would finalise")
            return
        ended_at = _mtime(paths.audio)  # the last write: the best estimate of the end
        if repaired:
            wav.repair_header(paths.audio)
            self.fixed(paths.audio, "header_repaired", f"data size set to {info.data_bytes}")
        final = sidecar.prepare_final(paths, ended_at=ended_at)
        self.ledger.append(
            recording_final_entry(final, at=self.now, source=SOURCE, header_repaired=repaired)
        )
        sidecar.write(paths, final)
        self.fixed(
            paths.sidecar,
            "finalised",
            f"{final['recording']['bytes']} bytes, sha256 {final['recording']['sha256']}",
        )

    def _tombstone(self, paths: RecordingPaths, tomb: dict[str, Any] | None, kind: str) -> None:
        """Tombstone ``paths`` (reason ``no_audio``), or complete the existing ``tomb``."""
        if self.dry_run:
            self.fixed(paths.audio, kind, "would delete the audio and keep a tombstone")
            return
        if tomb is None:
            tomb = sidecar.prepare_tombstone(
                paths, reason=sidecar.TombstoneReason.NO_AUDIO.value, at=self.now
            )
        self.ledger.append(deleted_entry(tomb, source=SOURCE))
        sidecar.write(paths, tomb)
        self.fixed(paths.audio, kind, f"reason {tomb['reason']}")

    def _orphan_audio(self, paths: RecordingPaths) -> None:
        info = self._inspect(paths)
        if info is None:
            self.reported(paths.audio, "orphan_audio", "recording without a sidecar")
            return
        if info.header_only:
            self._tombstone(paths, None, "tombstoned_no_audio")
            return
        if not info.finalised:
            if not self.dry_run:
                self.ledger.append(
                    {
                        "type": "header_repaired",
                        "at": utc_stamp(self.now),
                        "call": {"uniqueid": paths.uniqueid},
                        "recording": {
                            "file": paths.relative,
                            "bytes": info.bytes,
                            "data_bytes": info.data_bytes,
                        },
                        "source": SOURCE,
                    }
                )
                wav.repair_header(paths.audio)
            self.fixed(paths.audio, "header_repaired", f"data size {info.data_bytes}")
        self.reported(
            paths.audio,
            "orphan_audio",
            f"recording without a sidecar ({info.duration_seconds} s of audio); kept",
        )

    def spool_leftover(self, recordings_dir: Path, audio: Path) -> None:
        """A WAV still in the spool after the tree was done: its call's sidecar decides."""
        uniqueid = audio.stem
        if uniqueid in self.spool_seen:
            return
        if self.is_active is not None and self.is_active(uniqueid):
            self.report.in_progress += 1
            return
        if _mtime(audio) > self.cutoff:
            self.report.in_progress += 1
            return
        where = find_recording(recordings_dir, uniqueid)
        try:
            doc = sidecar.load(where) if where is not None else None
        except MalformedDocument as exc:
            self.reported(audio, "malformed_sidecar", f"{exc.detail} (spooled audio kept)")
            return
        if where is None or doc is None:
            self.reported(audio, "orphan_audio", "spooled recording without a sidecar; kept")
            return
        done = doc["state"] == sidecar.State.TOMBSTONE or (
            where.audio.exists() and file_is_encrypted(where.audio)
        )
        if not done:
            self.reported(audio, "spooled_audio", f"sidecar in state {doc['state']}; kept")
            return
        if not self.dry_run:
            audio.unlink(missing_ok=True)
        self.fixed(audio, "spool_removed", f"clear copy of a recording now {doc['state']}")

    def other_file(self, path: Path) -> None:
        if not TEMP_NAME_RE.fullmatch(path.name):
            return
        with contextlib.suppress(FileNotFoundError):
            if _mtime(path) > self.cutoff:
                return
            if not self.dry_run:
                path.unlink()
            self.fixed(path, "temp_removed", "leftover of an interrupted atomic write")


def reconcile(
    recordings_dir: Path,
    ledger: Ledger,
    *,
    now: datetime,
    dry_run: bool,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    is_active: Callable[[str], bool] | None = None,
    at_rest: AtRest | None = None,
    spool_dir: Path | None = None,
) -> ReconcileReport:
    """Repair what a crash left behind under ``recordings_dir`` (and the spool, where
    MixMonitor writes encrypted recordings while they are made); see the module docstring."""
    run = _Run(ledger, now, dry_run, stale_after, is_active, at_rest)
    torn = find_torn_tail(ledger.path) if dry_run else repair_torn_tail(ledger.path)
    if torn is not None:  # first: the next append would chain to it for good
        run.fixed(ledger.path, "ledger_torn_line", str(torn))
    for found in iter_recordings(recordings_dir, on_other=run.other_file):
        run.recording(found, spool_dir)
    for audio in _spooled_files(spool_dir):
        run.spool_leftover(recordings_dir, audio)
    return run.report


def _spooled_files(spool_dir: Path | None) -> list[Path]:
    """The ``<uniqueid>.wav`` files in the spool (others are not ours), in name order."""
    if spool_dir is None or not spool_dir.is_dir():
        return []
    return [
        path
        for path in sorted(spool_dir.iterdir())
        if path.suffix == ".wav"
        and UNIQUEID_RE.fullmatch(path.stem)
        and ".." not in path.stem
        and path.is_file()
        and not path.is_symlink()
    ]


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)
