"""A torn last ledger line (a power loss mid-write, or a disk-full append by a version before
appends were cut back): find it and move it aside.

A last line without its newline is no entry: nothing chains to it yet. Left in place, the
next append terminates it and chains to it, and from then on it is a malformed line inside the
chain for good. :func:`repair_torn_tail` (run by ``callconsent reconcile`` before anything else
appends) takes the ledger's append lock, copies the torn bytes to ``<ledger>.torn-<offset>``
(kept, mode 0640, for whoever investigates) and truncates the ledger to its last whole line.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from callconsent.evidence.fsio import FILE_MODE, fsync_dir

_TAIL = 1 << 16


@dataclass(frozen=True, slots=True)
class TornTail:
    ledger: Path
    offset: int  # where the torn line starts (the ledger's size once repaired)
    length: int
    kept: Path  # where its bytes are (or would be) kept

    def __str__(self) -> str:
        return (
            f"{self.ledger}: torn last line ({self.length} bytes at offset {self.offset}, "
            f"no newline) moved to {self.kept}"
        )


def _find(fd: int, path: Path) -> TornTail | None:
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return None
    pos = size
    while pos > 0:
        start = max(0, pos - _TAIL)
        newline = os.pread(fd, pos - start, start).rfind(b"\n")
        if newline >= 0:
            offset = start + newline + 1
            break
        pos = start
    else:
        offset = 0
    return TornTail(path, offset, size - offset, path.with_name(f"{path.name}.torn-{offset}"))


def find_torn_tail(path: Path) -> TornTail | None:
    """The ledger's torn last line, or None (also for a missing ledger)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        return _find(fd, path)
    finally:
        os.close(fd)


def repair_torn_tail(path: Path) -> TornTail | None:
    """Move a torn last line aside (see the module docstring); None if there was none."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # the lock every append takes
        torn = _find(fd, path)
        if torn is None:
            return None
        data = os.pread(fd, torn.length, torn.offset)
        keep = os.open(torn.kept, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
        try:
            os.write(keep, data)
            os.fsync(keep)
        finally:
            os.close(keep)
        os.ftruncate(fd, torn.offset)
        os.fsync(fd)
        fsync_dir(path.parent)
        return torn
    finally:
        os.close(fd)
