"""Is the evidence the ledger expects on disk? (issue 12: "erasure reported while the data
remains").

A recording is *already deleted* only when its tombstone or a ledger ``deleted`` line says so.
Neither a sidecar nor audio, and nothing saying it was deleted, means the evidence is missing:
a recordings volume not mounted, a day folder moved away, files removed by hand. The jobs that
change or hand out evidence (erase, withdraw, export, purge) call :func:`require_recordings`
after updating the index: when no sidecar at all is found while the ledger records finished
recordings that were never deleted, the folder looks unmounted and the job is refused
(:class:`RecordingsUnavailable`, exit 2) before it changes anything. Single missing recordings
are reported by the job itself (:func:`ledger_says_deleted` decides), never as done.
"""

from __future__ import annotations

from pathlib import Path

from callconsent.evidence.paths import iter_symlinked_folders
from callconsent.lifecycle.index import Index


class RecordingsUnavailable(Exception):
    """The recordings folder looks unmounted: the job did nothing."""


def ledger_says_deleted(index: Index, uniqueid: str) -> bool:
    """True when the ledger holds a ``deleted`` line for call ``uniqueid``."""
    row = index.db.execute(
        "SELECT 1 FROM entry_calls c JOIN entries e ON e.seq = c.seq "
        "WHERE c.uniqueid = ? AND e.type = 'deleted' LIMIT 1",
        (uniqueid,),
    ).fetchone()
    return row is not None


def finished_not_deleted(index: Index) -> int:
    """How many calls have a ``recording_final`` ledger line and no ``deleted`` line."""
    row = index.db.execute(
        "SELECT COUNT(DISTINCT c.uniqueid) FROM entry_calls c JOIN entries e ON e.seq = c.seq "
        "WHERE e.type = 'recording_final' AND NOT EXISTS (SELECT 1 FROM entry_calls c2 "
        "JOIN entries d ON d.seq = c2.seq WHERE c2.uniqueid = c.uniqueid AND d.type = 'deleted')"
    ).fetchone()
    return int(row[0]) if row else 0


def folder_state(recordings_dir: Path) -> str:
    """``missing``, ``empty``, ``not a folder`` or ``present``."""
    if not recordings_dir.is_dir():
        return "not a folder" if recordings_dir.exists() else "missing"
    try:
        return "present" if any(recordings_dir.iterdir()) else "empty"
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"


def require_recordings(index: Index, recordings_dir: Path) -> None:
    """Raise :class:`RecordingsUnavailable` when the index (just updated) has no sidecar at all
    while the ledger records finished recordings never deleted. Cheap when sidecars exist."""
    if index.db.execute("SELECT 1 FROM recordings LIMIT 1").fetchone() is not None:
        return
    expected = finished_not_deleted(index)
    if expected == 0:
        return
    state = folder_state(recordings_dir)
    what = {"present": "holds no sidecar"}.get(state, f"is {state}")
    links = [f"{r} -> {t}" for r, t in iter_symlinked_folders(recordings_dir)]
    if links:
        what += f" (symlinked folders are never followed: {', '.join(links[:5])})"
    raise RecordingsUnavailable(
        f"the recordings folder {recordings_dir} {what}, but the ledger records {expected} "
        "finished recording(s) that were never deleted: is its volume mounted? Nothing was "
        "changed; mount it (or restore the recordings) and run the command again"
    )
