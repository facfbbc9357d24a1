"""The lifecycle index: an embedded SQLite database (WAL) of sidecars and ledger entries.

``<ledger dir>/index.sqlite3``. It answers the lookups the lifecycle jobs need (by caller
number, call id/uniqueid/linkedid, date range, agent, state, ``delete_after``, sha256, holds,
exports). The sidecars and the ledger stay the source of truth: :meth:`Index.rebuild` recreates
the index from them, and :meth:`Index.update` catches up incrementally:

* ledger: lines past the last indexed byte offset (a replaced or shortened ledger is re-read;
  :mod:`._ledger_feed`);
* sidecars: only day folders whose mtime changed (every sidecar write renames into its folder).

Every lifecycle command calls :meth:`update` first, so the index is current even if nothing
else writes to it. The app may keep it current as it goes with :meth:`add_sidecar` and
:meth:`add_ledger_entry`. Destructive jobs re-read each sidecar with full validation; the index
only finds candidates. Rebuild and destructive jobs hold an exclusive lock (``index.lock``).

The index holds no caller number or name: only each call's *subject*, the keyed lookup digest
of the normalised number (:mod:`.subjects`), dropped when the caller is forgotten (its key
destroyed) or anonymised; deleted rows are overwritten (``secure_delete``). Created 0640.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from callconsent.evidence import callref
from callconsent.evidence.fsio import FILE_MODE
from callconsent.evidence.paths import RecordingPaths
from callconsent.lifecycle import _scan
from callconsent.lifecycle._db import GuardedConnection, open_index
from callconsent.lifecycle._feed import DayFeed, default_workers
from callconsent.lifecycle._ledger_feed import (
    BATCH,
    BULK_COMMIT,
    IndexStats,
    Progress,
    read_meta,
    update_ledger,
    write_meta,
)
from callconsent.lifecycle._scan import Problem
from callconsent.lifecycle._schema import (
    INDEXES,
    INSERT_REF,
    SCHEMA,
    TABLES,
    apply_entry_rows,
)
from callconsent.lifecycle.errors import IndexUnusable, storage_error
from callconsent.lifecycle.subjects import Subjects

if TYPE_CHECKING:
    from callconsent.config import Config

INDEX_NAME: Final = "index.sqlite3"
#: A day folder changed this recently is scanned again next time (coarse mtime clocks).
_SETTLE_NS: Final = 2_000_000_000
#: Page cache during a rebuild (KiB): the primary-key B-trees of a million calls stay in memory.
_REBUILD_CACHE_KIB: Final = 256 * 1024

#: A ``recordings`` row (:data:`_scan.RECORDING_COLUMNS`): the sidecar's clear number becomes
#: its lookup digest on the way in (``subject_of``, :mod:`.subjects`).
INSERT_RECORDING: Final = (
    "INSERT OR REPLACE INTO recordings VALUES (?,?,?,?,?,?,subject_of(?,NULL),?,?,?,?,?,?,?,?)"
)


def index_path(ledger_path: Path) -> Path:
    return ledger_path.parent / INDEX_NAME


class Index:
    """One connection to the index. Thread-safe (one lock); use as a context manager."""

    def __init__(self, path: Path, *, recordings_dir: Path, ledger_path: Path) -> None:
        self.path = path
        self.recordings_dir = recordings_dir
        self.ledger_path = ledger_path
        self._mutex = threading.RLock()
        self._bulk = False  # during rebuild: call references are added at the end, in one go
        self._pending_rows = 0  # recording rows written since the last commit
        try:
            self._key = callref.load_key(ledger_path)
        except OSError as exc:
            key_file = callref.key_path(ledger_path)
            raise storage_error("read the call reference key", key_file, exc) from exc
        self.ref_key_id = callref.key_id(self._key)
        self.subjects = Subjects(ledger_path)
        self._conn: GuardedConnection | None = None
        self._unusable: IndexUnusable | None = None  # only `rebuild` can use it then
        try:
            self._open()
        except IndexUnusable as exc:
            self._unusable = exc

    def _open(self) -> None:
        self._conn = open_index(self.path, self._key, self.subjects.subject_of)

    @property
    def db(self) -> GuardedConnection:
        """The connection; :class:`IndexUnusable` if the file is not a usable index."""
        if self._unusable is not None:
            raise IndexUnusable(str(self._unusable))
        assert self._conn is not None  # set whenever _unusable is None
        return self._conn

    def _recreate(self) -> None:
        """Replace an unusable index file by a new, empty one (it is only a cache: the ledger
        and the sidecars hold everything it held). A folder in its place is not touched."""
        if self.path.is_dir() and not self.path.is_symlink():
            raise IndexUnusable(
                f"{self.path}: a folder, not the index; move it away, then run "
                "`callconsent index rebuild`"
            )
        for stale in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")):
            try:
                stale.unlink(missing_ok=True)
            except OSError as exc:
                raise storage_error("remove the unusable index", stale, exc) from exc
        self._open()
        self._unusable = None

    @classmethod
    def open(cls, config: Config) -> Index:
        storage = config.storage
        return cls(
            index_path(storage.ledger_path),
            recordings_dir=storage.recordings_dir,
            ledger_path=storage.ledger_path,
        )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self.subjects.close()

    def forget(self, uniqueids: Iterable[str]) -> int:
        """Forget the callers of calls ``uniqueids``: destroy their keys (the ledger's sealed
        numbers and names become unreadable) and drop their subjects here; the keys destroyed."""
        ids = sorted(set(uniqueids))
        with self._mutex:
            gone = self.subjects.forget(ids)
            # sealed callers only: an old ledger's clear number is dropped by `anonymised`
            self.db.executemany(
                "UPDATE calls SET subject=NULL WHERE uniqueid=? AND caller_kid IS NOT NULL",
                [(u,) for u in ids],
            )
            self.db.commit()
        return gone

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def locked(self, *, shared: bool = False) -> Iterator[None]:
        """Cross-process lock: exclusive for rebuild and destructive jobs, shared for readers."""
        lock = self.path.with_suffix(".lock")
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        except OSError as exc:
            raise storage_error("open the index lock", lock, exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- keeping it current ------------------------------------------------------------

    def rebuild(
        self,
        *,
        progress: Progress | None = None,
        on_problem: Callable[[Problem], None] | None = None,
    ) -> IndexStats:
        """Drop everything and re-read the ledger and every sidecar (streaming, batched).

        Bulk mode, so time grows linearly with the evidence: secondary indexes are dropped and
        created again after the load (a sort each), the page cache is large enough for the
        primary keys, and commits do not fsync (the index is rebuildable; an interrupted
        rebuild leaves a consistent partial index that the next update completes). The file
        stays in place: other processes may have it open, and swapping a WAL database under
        them is not safe. An unusable index file (garbage, unreadable) is replaced first."""
        with self._mutex:
            if self._unusable is not None:
                self._recreate()
            self.db.commit()
            for name in INDEXES:
                self.db.execute(f"DROP INDEX IF EXISTS {name}")
            self.db.executescript("".join(f"DELETE FROM {t};" for t in TABLES))  # noqa: S608  # our fixed table names
            self.db.execute("PRAGMA synchronous=OFF")
            self.db.execute(f"PRAGMA cache_size=-{_REBUILD_CACHE_KIB}")
            self.db.execute("PRAGMA temp_store=MEMORY")
            self._bulk = True
            gone: set[str] = set()
            try:
                with self.subjects.preloaded(gone):
                    stats = self.update(progress=progress, on_problem=on_problem)
                self.db.executemany(  # keys destroyed during the rebuild
                    "UPDATE calls SET subject=NULL WHERE caller_kid=?", [(k,) for k in gone]
                )
            finally:
                self._bulk = False
                if progress is not None:
                    progress("secondary indexes", len(INDEXES))
                self.db.executescript(SCHEMA)
                self.db.execute("PRAGMA cache_size=-2000")  # SQLite's default
                self.db.execute("PRAGMA temp_store=DEFAULT")
                self.db.execute("PRAGMA synchronous=NORMAL")
                self.db.commit()
        return stats

    def update(
        self,
        *,
        progress: Progress | None = None,
        on_problem: Callable[[Problem], None] | None = None,
    ) -> IndexStats:
        """Ingest ledger lines past the last indexed one and sidecars of changed day folders."""
        stats = IndexStats()

        def problem(p: Problem, source: str, key: str) -> None:
            stats.problems += 1
            self.db.execute(
                "INSERT INTO problems VALUES (?,?,?,?,?)",
                (source, key, str(p.path), p.line_no, p.detail),
            )
            if on_problem is not None:
                on_problem(p)

        with self._mutex:
            days, gone = self._plan_sidecars(stats)
            workers = default_workers() if self._bulk and len(days) > 1 else 0
            with DayFeed(days, workers=workers) as feed:  # read by workers on a rebuild ...
                update_ledger(
                    self.db,
                    self.ledger_path,
                    stats,
                    progress,
                    problem,
                    bulk=self._bulk,
                    between=lambda: self._apply_days(feed.ready(), stats, progress, problem),
                )  # ... while this ingests the ledger
                self._apply_days(feed.rest(), stats, progress, problem)
            self._drop_days(gone)
            self.db.commit()
            if progress is not None:
                progress("sidecars", stats.sidecars)
            self.db.execute(
                "UPDATE recordings SET subject=NULL WHERE uniqueid IN "
                "(SELECT uniqueid FROM anonymised) AND subject IS NOT NULL"
            )
            self.db.execute(
                "UPDATE calls SET subject=NULL, anonymised=1 WHERE "
                "anonymised=0 AND uniqueid IN (SELECT uniqueid FROM anonymised)"
            )
            self._sync_refs()
            self.db.commit()
        return stats

    def _sync_refs(self) -> None:
        """Recompute every call reference if they were made with another key (or none yet:
        a rebuild, or an index from before references)."""
        if read_meta(self.db, "callref_key") == self.ref_key_id:
            return
        self.db.execute("DELETE FROM call_refs")
        self.db.execute(
            "INSERT OR IGNORE INTO call_refs SELECT call_ref(uniqueid) AS ref, uniqueid FROM "
            "(SELECT uniqueid FROM calls UNION SELECT uniqueid FROM recordings) ORDER BY ref"
        )
        write_meta(self.db, callref_key=self.ref_key_id)

    def _plan_sidecars(self, stats: IndexStats) -> tuple[list[_scan.Day], set[str]]:
        """The day folders to read (new or changed since indexed), and those now gone."""
        known = dict(self.db.execute("SELECT day, mtime_ns FROM dirs").fetchall())
        changed: list[_scan.Day] = []
        for day in _scan.iter_days(self.recordings_dir):
            if known.pop(day.relative, None) == day.mtime_ns:
                stats.days_unchanged += 1
            else:
                changed.append(day)
        return changed, set(known)

    def _apply_days(
        self,
        days: Iterable[_scan.DayRows],
        stats: IndexStats,
        progress: Progress | None,
        problem: Callable[[Problem, str, str], None],
    ) -> None:
        """Replace the rows of each day folder read."""
        insert = INSERT_RECORDING
        for found in days:
            day = found.day
            stats.days_scanned += 1
            settled = day.mtime_ns < _now_ns() - _SETTLE_NS
            self.db.execute(
                "DELETE FROM problems WHERE source='sidecar' AND key=?", (day.relative,)
            )
            for p in found.problems:
                problem(p, "sidecar", day.relative)
            if not self._bulk:
                self.db.execute("DELETE FROM recordings WHERE day=?", (day.relative,))
            self.db.executemany(insert, found.rows)
            if not self._bulk:
                self.db.executemany(INSERT_REF, [(r[0],) for r in found.rows])
            self.db.execute(
                "INSERT OR REPLACE INTO dirs VALUES (?,?)",
                (day.relative, day.mtime_ns if settled else 0),
            )
            stats.sidecars += len(found.rows)
            self._pending_rows += len(found.rows)
            if self._pending_rows >= (BULK_COMMIT if self._bulk else BATCH):
                self.db.commit()
                self._pending_rows = 0
                if progress is not None:
                    progress("sidecars", stats.sidecars)

    def _drop_days(self, gone: set[str]) -> None:
        for day in gone:
            self.db.execute("DELETE FROM recordings WHERE day=?", (day,))
            self.db.execute("DELETE FROM dirs WHERE day=?", (day,))

    def add_sidecar(self, paths: RecordingPaths, doc: Mapping[str, Any]) -> None:
        """Record a sidecar document just written for ``paths`` (for the app; cheap)."""
        day = paths.relative.rsplit("/", 1)[0]
        row = _scan.row(day, paths.uniqueid, doc, paths.audio.exists())
        with self._mutex:
            self.db.execute(INSERT_RECORDING, row)
            self.db.execute(INSERT_REF, (paths.uniqueid,))
            self.db.commit()

    def add_ledger_entry(self, entry: Mapping[str, Any]) -> None:
        """Record a ledger entry just appended (as :meth:`Ledger.append` returned it). Its byte
        offset is filled in by the next :meth:`update`."""
        with self._mutex:
            apply_entry_rows(self.db, [(dict(entry), None, None, None)])
            self.db.commit()

    def problems(self) -> list[Problem]:
        """Malformed input found by the last scans of each day folder and of the ledger."""
        rows = self.db.execute("SELECT path, line_no, detail FROM problems ORDER BY path, line_no")
        return [Problem(Path(p), n, d) for p, n, d in rows]


def _now_ns() -> int:
    import time

    return time.time_ns()
