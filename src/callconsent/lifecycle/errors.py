"""The lifecycle jobs' domain errors: one base class the CLI maps to a clear message, exit 2.

Every job raises a :class:`LifecycleError` (or a subclass) for a request it cannot carry out or
evidence storage it cannot use; the message names what is wrong and, where there is one, the
way out (``callconsent index rebuild``, free space, fix a permission). No job lets an
``OSError`` or ``sqlite3.Error`` escape as a traceback.
"""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path


class LifecycleError(ValueError):
    """A lifecycle request that cannot be carried out; the message says why."""


class StorageError(LifecycleError):
    """A file the job needs cannot be read or written (permission, a folder, disk full)."""


class DiskFull(StorageError):
    """No space left on the device holding ``path``."""


class IndexUnusable(StorageError):
    """The index file is not a usable SQLite database; ``index rebuild`` recreates it."""


def is_disk_full(exc: BaseException) -> bool:
    """Does ``exc`` say the disk (or quota) is full, from the OS or from SQLite?"""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or (
            "disk is full" in str(exc)
        )
    return False


def storage_error(what: str, path: Path, exc: OSError | sqlite3.Error) -> StorageError:
    """The domain error for ``exc`` met trying to ``what`` (e.g. "append to the ledger")."""
    if is_disk_full(exc):
        return DiskFull(f"{path}: cannot {what}: no space left on the device; free space, retry")
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return StorageError(f"{path}: cannot {what}: {detail}")
