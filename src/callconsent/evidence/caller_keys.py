"""The caller key store and the subject key: what makes the ledger's callers readable.

``<ledger dir>/caller-keys.sqlite3`` (0640) holds one row per sealed caller
(:mod:`callconsent.evidence.callers`): ``kid``, the call's ``uniqueid``, the ``lookup`` digest
of the normalised number and the 32-byte ``key``. Destroying a row is forgetting the caller:

* ``PRAGMA secure_delete=ON``: a deleted row's bytes are overwritten with zeros in the page,
  not left in the free list;
* WAL, and after every delete ``wal_checkpoint(TRUNCATE)``: the old page copies in the WAL
  (which still hold the key) are written back and the WAL is cut to nothing.

SQLite's page cache is held to ``CACHE_KIB`` (its default, 2 MiB, filled a little with every
call the live app stored, about 330 KiB per 1,000 calls, so the process grew for its first
~6,000 calls); a page outside it is one ``pread`` of a page the OS caches.

Writes are durable before they return (``synchronous=FULL``): the live app writes a batch's
rows in one transaction before the batch's ledger lines (:class:`~.group_commit.GroupCommit`), so a
ledger line never names a key that was not stored.

``<ledger dir>/subject.key``: 32 random bytes (0640), made on first use, the installation's
secret for lookup digests (as ``callref.key`` is for call references). It never enters the
recordings tree. Keep both files with the ledger's backups: without the key store no caller of
a live entry can be read; without the subject key no lookup by number finds one.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Final, Literal

import structlog

from callconsent.evidence.callers import KeyRow, seal
from callconsent.evidence.fsio import FILE_MODE, fsync_dir

STORE_NAME: Final = "caller-keys.sqlite3"
SUBJECT_KEY_NAME: Final = "subject.key"
SUBJECT_KEY_SIZE: Final = 32

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS caller_keys (
    kid TEXT PRIMARY KEY, uniqueid TEXT NOT NULL, lookup TEXT, key BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS caller_keys_lookup ON caller_keys (lookup);
CREATE INDEX IF NOT EXISTS caller_keys_uniqueid ON caller_keys (uniqueid);
"""
_CHUNK: Final = 500
#: SQLite's page cache for the store's one connection, KiB
CACHE_KIB: Final = 512

log = structlog.get_logger("callconsent.caller_keys")


def store_path(ledger_path: Path) -> Path:
    return ledger_path.parent / STORE_NAME


def subject_key_path(ledger_path: Path) -> Path:
    return ledger_path.parent / SUBJECT_KEY_NAME


def subject_key(ledger_path: Path) -> bytes:
    """The installation's subject key, made (32 random bytes, 0640) when there is none yet."""
    path = subject_key_path(ledger_path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = _make_subject_key(path)
    if len(data) < SUBJECT_KEY_SIZE:
        raise ValueError(f"{path}: the subject key must hold {SUBJECT_KEY_SIZE} bytes")
    return data


def _make_subject_key(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = os.urandom(SUBJECT_KEY_SIZE)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    except FileExistsError:  # another process made it first: use that one
        return path.read_bytes()
    try:
        os.fchmod(fd, FILE_MODE)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(path.parent)
    return data


class KeyStoreError(OSError):
    """The key store could not be read or written (an SQLite error: unopenable, full, locked,
    not a database). An OSError, so the live app's storage-error path (the call goes on,
    unrecorded) and the lifecycle's storage errors take it as they take a disk error."""


class CallerKeys:
    """The key store at ``path``; one connection, usable from any thread (serialised).
    Every SQLite error comes out as :class:`KeyStoreError`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise KeyStoreError(f"{self.path}: the caller key store: {exc}") from exc

    @classmethod
    def beside(cls, ledger_path: Path) -> CallerKeys:
        return cls(store_path(ledger_path))

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            new = not self.path.exists()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
            if new:
                with contextlib.suppress(OSError):
                    os.chmod(self.path, FILE_MODE)
            conn.execute("PRAGMA secure_delete=ON")
            conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
            conn.commit()
            self._conn = conn
        return self._conn

    def put(self, rows: Sequence[KeyRow]) -> None:
        """Store ``rows`` in one durable transaction (a row already there is kept as is)."""
        if not rows:
            return
        with self._lock, self._guard():
            db = self._db()
            with db:
                db.executemany(
                    "INSERT OR IGNORE INTO caller_keys VALUES (?,?,?,?)",
                    [(r.kid, r.uniqueid, r.lookup, r.key) for r in rows],
                )

    def key(self, kid: str) -> bytes | None:
        """The key ``kid`` names, or None (destroyed, or never stored)."""
        if not self.path.exists() and self._conn is None:
            return None
        with self._lock, self._guard():
            row = self._db().execute("SELECT key FROM caller_keys WHERE kid=?", (kid,)).fetchone()
        return None if row is None else bytes(row[0])

    def lookup(self, kid: str) -> str | None:
        """The lookup digest of the caller ``kid`` names (None: destroyed, or no number)."""
        if not self.path.exists() and self._conn is None:
            return None
        with self._lock, self._guard():
            row = (
                self._db().execute("SELECT lookup FROM caller_keys WHERE kid=?", (kid,)).fetchone()
            )
        return None if row is None else row[0]

    def lookups(self) -> dict[str, str | None]:
        """Every stored ``kid`` with its lookup digest (for an index rebuild: one query)."""
        if not self.path.exists() and self._conn is None:
            return {}
        with self._lock, self._guard():
            return dict(self._db().execute("SELECT kid, lookup FROM caller_keys").fetchall())

    def calls_of(self, lookup: str) -> list[str]:
        """The call ids whose caller key is stored under ``lookup`` (live entries only)."""
        if not self.path.exists() and self._conn is None:
            return []
        with self._lock, self._guard():
            rows = (
                self._db()
                .execute("SELECT DISTINCT uniqueid FROM caller_keys WHERE lookup=?", (lookup,))
                .fetchall()
            )
        return sorted(r[0] for r in rows)

    def destroy_calls(self, uniqueids: Iterable[str]) -> int:
        """Destroy every caller key of the calls ``uniqueids``; the number destroyed."""
        return self._delete("uniqueid", uniqueids)

    def discard(self, kids: Iterable[str]) -> int:
        """Delete the rows ``kids`` names (stored for ledger lines that were then refused: no
        line names them); the number deleted. Wiped as :meth:`destroy_calls` wipes."""
        return self._delete("kid", kids)

    def _delete(self, column: Literal["uniqueid", "kid"], values: Iterable[str]) -> int:
        """Delete the rows whose ``column`` is one of ``values`` (secure_delete overwrites
        them; the WAL is truncated so no copy stays there); the number deleted."""
        ids = sorted(set(values))
        if not ids or (not self.path.exists() and self._conn is None):
            return 0
        with self._lock, self._guard():
            db = self._db()
            gone = 0
            with db:
                for i in range(0, len(ids), _CHUNK):
                    part = ids[i : i + _CHUNK]
                    marks = ",".join("?" * len(part))
                    gone += db.execute(
                        f"DELETE FROM caller_keys WHERE {column} IN ({marks})",  # noqa: S608
                        part,
                    ).rowcount
            if gone:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return gone

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
                self._conn = None


class Sealer:
    """The live app's side: seals each call's caller (the subject key read, or made, with the
    first call) and forgets a call's caller when its recording is withdrawn during the call."""

    def __init__(self, ledger_path: Path) -> None:
        self._ledger_path = ledger_path
        self._secret: bytes | None = None
        self.keys = CallerKeys.beside(ledger_path)

    def seal(
        self, uniqueid: str, number: str | None, name: str | None
    ) -> tuple[dict[str, str] | None, KeyRow | None]:
        """``call.caller`` for the ledger and the key row to store with it (:func:`seal`);
        OSError when the subject key cannot be read or made (as a failed ledger write)."""
        if self._secret is None:
            try:
                self._secret = subject_key(self._ledger_path)
            except ValueError as exc:  # a short key file
                raise OSError(str(exc)) from exc
        return seal(uniqueid, number, name, self._secret)

    def forget(self, uniqueid: str) -> None:
        """Destroy call ``uniqueid``'s caller key; a failure is logged, never raised (the
        purge's end-of-evidence step destroys it later)."""
        try:
            self.keys.destroy_calls([uniqueid])
        except OSError as exc:  # KeyStoreError included
            log.error("caller_key_not_destroyed", call_id=uniqueid, error=str(exc))


__all__ = ["CallerKeys", "KeyStoreError", "Sealer", "store_path", "subject_key", "subject_key_path"]
