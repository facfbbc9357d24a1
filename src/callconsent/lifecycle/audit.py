"""The audit log (R35): one JSON line per list, export, erase, hold or purge action.

``<ledger dir>/audit.jsonl``: append-only, one ``O_APPEND`` write per line under an exclusive
``flock``, fsynced. Each line says who (the OS user, or ``--actor`` given by the operator, with
the OS user kept beside it), when, what, why and which call ids. It never holds a caller number:
a subject is named by the ids of their calls. Destructive actions also write a ledger entry (the
hash-chained evidence); the audit log is the operator trail, including read-only actions.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from callconsent.evidence.fsio import FILE_MODE, dumps, utc_stamp
from callconsent.lifecycle.errors import storage_error

AUDIT_NAME: Final = "audit.jsonl"


def os_user() -> str:
    """The OS account running the command (``sudo`` keeps the invoking user in SUDO_USER)."""
    sudo = os.environ.get("SUDO_USER")
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers): fall back to the uid
        user = f"uid:{os.getuid()}"
    return f"{sudo} (via sudo as {user})" if sudo else user


class AuditLog:
    """Appends audit lines to ``path`` (created with mode 0640 on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(
        self,
        action: str,
        *,
        actor: str | None,
        at: datetime,
        reason: str | None = None,
        ids: Iterable[str] = (),
        **details: Any,
    ) -> dict[str, Any]:
        """Append one line and return it. ``actor`` None means the OS user."""
        line: dict[str, Any] = {
            "at": utc_stamp(at),
            "action": action,
            "actor": actor or os_user(),
            "os_user": os_user(),
            "reason": reason,
            "ids": list(ids),
            **details,
        }
        data = (dumps(line) + "\n").encode("ascii")
        try:
            self._append(data)
        except OSError as exc:
            raise storage_error("write the audit log", self.path, exc) from exc
        return line

    def _append(self, data: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size == 0:
                os.fchmod(fd, FILE_MODE)
            view = memoryview(data)
            try:
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            except OSError:  # no torn line: cut back to the last whole one
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
                raise
        finally:
            os.close(fd)


def read(path: Path) -> list[Mapping[str, Any]]:
    """Every readable line of the audit log (for tests and small reports)."""
    import json

    out: list[Mapping[str, Any]] = []
    try:
        with path.open("rb") as f:
            for raw in f:
                try:
                    obj = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(obj, dict):
                    out.append(obj)
    except FileNotFoundError:
        return []
    return out
