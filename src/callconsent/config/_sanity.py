"""Limits on what a config may ask for: how big the file is, where evidence is stored, how long
it is kept, and what a secret file may be. Each problem names the file and the key path.

* The config file must be a regular file (a FIFO would block the reader for ever): checked
  with ``stat`` before opening, opened ``O_NONBLOCK``, checked again on the open file
  (:func:`read_regular_file`, also fit for secret files: cap :data:`MAX_SECRET_BYTES`). The
  config is at most :data:`MAX_CONFIG_BYTES`; YAML aliases are refused by the loader (an alias
  bomb of a few KB expands to gigabytes).
* Storage paths are never a system folder or inside one (:data:`SYSTEM_TREES`, and the
  top-level folders in :data:`SYSTEM_FOLDERS` themselves), and never inside each other:
  the ledger and the notice archive stay out of the recordings folder, whose files purge and
  erase delete.
* The spool (``storage.spool_dir``, where MixMonitor writes the clear WAV while an encrypted
  recording is made) is neither inside nor around the recordings folder, the notice archive or
  the ledger's folder: the clear audio must never lie where the tree's readers, backups or the
  ledger's owner look. Its modes are checked on disk by ``check-config`` and ``serve``.
* Retention is at most :data:`MAX_RETENTION_DAYS` (10 years): more is a typo, and would
  overflow the date arithmetic.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Final

from ._errors import Problems
from ._model import StorageConfig
from ._read import Node

MAX_CONFIG_BYTES: Final = 1 << 20
MAX_SECRET_BYTES: Final = 64 * 1024
MAX_RETENTION_DAYS: Final = 3650

#: Folders whose whole tree belongs to the system.
SYSTEM_TREES: Final = (
    "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot", "/dev",
    "/proc", "/sys",
)  # fmt: skip
#: Folders that may hold our folders, but are never one themselves.
SYSTEM_FOLDERS: Final = frozenset(
    {
        "/", "/var", "/var/lib", "/var/spool", "/var/log", "/var/cache", "/var/run", "/home",
        "/root", "/opt", "/srv", "/run", "/mnt", "/media",
        "/tmp", "/var/tmp",  # noqa: S108  # names compared against, never written to
    }
)  # fmt: skip


#: Asterisk's HTTP static folders (http.conf enablestatic): never a place for clear audio.
SERVED_TREES: Final = ("/var/lib/asterisk/static-http", "/usr/share/asterisk/static-http")


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def read_regular_file(path: Path, *, limit: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes. ``ValueError``
    says what is wrong with it; ``OSError`` passes through (missing, no permission)."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"is {_kind(st.st_mode)}, not a regular file")
    if st.st_size > limit:
        raise ValueError(f"is {st.st_size:,} bytes; at most {limit:,} are read")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):  # replaced between the stat and the open
            raise ValueError(f"is {_kind(mode)}, not a regular file")
        chunks: list[bytes] = []
        size = 0
        while size <= limit and (chunk := os.read(fd, 1 << 16)):
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise ValueError(f"grew past {limit:,} bytes while read")
    return b"".join(chunks)


def _system_problem(path: Path) -> str | None:
    for candidate in dict.fromkeys((os.path.normpath(path), os.path.realpath(path))):
        if candidate in SYSTEM_FOLDERS:
            return f"{candidate} is a system folder"
        for tree in SYSTEM_TREES:
            if candidate == tree or candidate.startswith(tree + "/"):
                return f"{candidate} is in the system folder {tree}"
    return None


def _inside(inner: Path, outer: Path) -> bool:
    a, b = Path(os.path.realpath(inner)), Path(os.path.realpath(outer))
    return a == b or a.is_relative_to(b)


def check_storage(node: Node, recordings: Path, ledger: Path, archive: Path) -> None:
    """Report storage paths that are system folders, a ledger that is a folder, and paths
    inside each other."""
    for key, path in (
        ("recordings_dir", recordings),
        ("ledger_path", ledger),
        ("notice_archive_dir", archive),
    ):
        if not path.is_absolute() or node.problems.failed(node.at(key)):
            continue
        problem = _system_problem(path)
        if problem is not None:
            node.problems.error(node.at(key), f"{problem}: evidence never goes there")
    if node.problems.failed(node.at("recordings_dir"), node.at("ledger_path")):
        return
    if ledger.is_dir():
        node.problems.error(node.at("ledger_path"), f"{ledger} is a folder, not a file")
    if _inside(ledger, recordings):
        node.problems.error(
            node.at("ledger_path"),
            f"{ledger} is inside recordings_dir {recordings}: keep the ledger apart from the "
            "recordings that purge and erase delete",
        )
    if not node.problems.failed(node.at("notice_archive_dir")) and _inside(archive, recordings):
        node.problems.error(
            node.at("notice_archive_dir"),
            f"{archive} is inside recordings_dir {recordings}: keep the archive apart",
        )


def check_spool(node: Node, storage: StorageConfig) -> None:
    """``storage.spool_dir`` apart from every other storage path (see the module docstring)."""
    spool = storage.spool_dir
    if spool is None or not spool.is_absolute() or node.problems.failed(node.at("spool_dir")):
        return
    problem = _system_problem(spool)
    if problem is not None:
        node.problems.error(node.at("spool_dir"), f"{problem}: give the spool its own folder")
        return
    for served in SERVED_TREES:
        if _inside(spool, Path(served)):
            node.problems.error(
                node.at("spool_dir"),
                f"{spool} is inside {served}, which Asterisk's HTTP server serves: the spool "
                "holds clear audio",
            )
    for key, other in (
        ("recordings_dir", storage.recordings_dir),
        ("notice_archive_dir", storage.notice_archive_dir),
        ("ledger_path", storage.ledger_path.parent),
    ):
        if _inside(spool, other) or _inside(other, spool):
            node.problems.error(
                node.at("spool_dir"),
                f"{spool} overlaps {key} ({other}): the spool holds clear audio while calls "
                "record; give it its own folder outside the evidence",
            )


def warn_spool(storage: StorageConfig, encrypted: bool, problems: Problems) -> None:
    """A spool without encryption is unused; encryption without a spool leaves the clear WAV
    in the recordings tree while the call records."""
    if storage.spool_dir is not None and not encrypted:
        problems.warn(
            "storage.spool_dir",
            "is used only with an `encryption` section: recordings are written to the "
            "recordings folder in clear",
        )
    elif storage.spool_dir is None and encrypted:
        problems.warn(
            "storage.spool_dir",
            "not set: while a call records, its clear WAV lies in the recordings folder until "
            "it is encrypted at the end; set a private spool folder (README, Production: encryption at rest)",
        )


def check_retention(node: Node, key: str, days: int) -> None:
    """``days`` must be 1 to :data:`MAX_RETENTION_DAYS`."""
    if node.problems.failed(node.at(key)):
        return
    if days <= 0:
        node.problems.error(node.at(key), f"must be > 0, got {days}")
    elif days > MAX_RETENTION_DAYS:
        node.problems.error(
            node.at(key), f"must be at most {MAX_RETENTION_DAYS} days (10 years), got {days}"
        )
