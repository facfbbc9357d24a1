"""The index's SQLite connection, with every SQLite error turned into a lifecycle error.

Whatever a job does with the index (``index.db.execute(...)`` in the queries, writes during an
update), an ``sqlite3.Error`` never reaches the operator as a traceback: a full disk becomes
:class:`~.errors.DiskFull`, a file that is not a usable database :class:`~.errors.IndexUnusable`
(``callconsent index rebuild`` recreates it from the evidence), anything else a
:class:`~.errors.StorageError` naming the file. A failed write is rolled back first.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from callconsent.evidence import callref
from callconsent.evidence.fsio import FILE_MODE
from callconsent.lifecycle._schema import SCHEMA, TABLES
from callconsent.lifecycle.errors import (
    DiskFull,
    IndexUnusable,
    StorageError,
    is_disk_full,
)

Params = Sequence[Any] | Mapping[str, Any]

#: SQLite's words for a file that cannot serve as the index whatever we retry.
_UNUSABLE = (
    "file is not a database",
    "database disk image is malformed",
    "unable to open database file",
    "attempt to write a readonly database",
)


def index_error(path: Path, exc: sqlite3.Error) -> StorageError:
    """The lifecycle error for ``exc`` met on the index at ``path``."""
    text = str(exc)
    if is_disk_full(exc) or (_no_room(path) and "i/o error" in text.lower()):
        return DiskFull(
            f"{path}: the index cannot be written: no space left on the device; free space and "
            "retry (purge still runs from what the index knows)"
        )
    if any(words in text.lower() for words in _UNUSABLE):
        what = "a folder, not the index" if path.is_dir() else f"not a usable index ({text})"
        return IndexUnusable(
            f"{path}: {what}; run `callconsent index rebuild` to recreate it from the ledger "
            "and the sidecars"
        )
    if "locked" in text.lower():
        return StorageError(f"{path}: the index is busy (locked by another process); retry")
    return StorageError(f"{path}: index error: {text}")


def _no_room(path: Path) -> bool:
    """Is the file system holding ``path`` out of space (SQLite reports ENOSPC on its WAL and
    shared-memory files only as an I/O error)?"""
    try:
        return os.statvfs(path.parent).f_bavail == 0
    except OSError:
        return False


class GuardedConnection:
    """The few ``sqlite3.Connection`` methods the lifecycle uses, errors converted."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self.conn.rollback()
            raise index_error(self.path, exc) from exc

    def execute(self, sql: str, params: Params = ()) -> sqlite3.Cursor:
        with self.guard():
            return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Params]) -> sqlite3.Cursor:
        with self.guard():
            return self.conn.executemany(sql, rows)

    def executescript(self, script: str) -> sqlite3.Cursor:
        with self.guard():
            return self.conn.executescript(script)

    def commit(self) -> None:
        with self.guard():
            self.conn.commit()

    def rollback(self) -> None:
        with self.guard():
            self.conn.rollback()

    def create_function(
        self, name: str, narg: int, func: Callable[..., Any], *, deterministic: bool
    ) -> None:
        with self.guard():
            self.conn.create_function(name, narg, func, deterministic=deterministic)

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()


def open_index(
    path: Path, key: bytes | None, subject_of: Callable[[object, object], str | None]
) -> GuardedConnection:
    """Connect to (or create, mode 0640) the index at ``path`` and make sure of its tables;
    ``call_ref`` is registered with the call reference ``key``, ``subject_of`` (a clear number
    or a sealed caller's key id to the lookup digest, :mod:`.subjects`). An index from before
    subjects (tables with ``caller_number``) is emptied: the next update re-reads everything.
    Deleted rows are overwritten (``secure_delete``): an erased subject leaves no free page."""
    new = not path.exists()
    try:
        conn = sqlite3.connect(path, timeout=30.0, check_same_thread=False)
    except sqlite3.Error as exc:
        raise index_error(path, exc) from exc
    db = GuardedConnection(conn, path)
    try:
        if new:
            with contextlib.suppress(OSError):
                os.chmod(path, FILE_MODE)
        db.create_function(
            "call_ref", 1, lambda u: callref.call_ref(str(u), key), deterministic=True
        )
        db.create_function("subject_of", 2, subject_of, deterministic=False)
        db.execute("PRAGMA secure_delete=ON")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # a cache: rebuildable from the evidence
        columns = {r[1] for r in db.execute("PRAGMA table_info(calls)").fetchall()}
        if "caller_number" in columns:  # the layout before subjects: held numbers in clear
            db.executescript("".join(f"DROP TABLE IF EXISTS {t};" for t in TABLES))
            db.execute("VACUUM")
        db.executescript(SCHEMA)
        db.commit()
    except StorageError:
        db.close()
        raise
    return db
