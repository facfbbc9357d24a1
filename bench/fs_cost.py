"""What the evidence writes cost the kernel on a given file system (not part of the test run).

    .venv/bin/python bench/fs_cost.py [--dir DIR] [--writes 300]

A recorded call writes its sidecar three times (created, the agent's decision, final), each with
:func:`callconsent.evidence.fsio.atomic_write_json` (a new temporary file, fsync, rename, the
folder fsynced), and group-commits its ledger lines (append + fsync). This prints the process
CPU (user and system) per operation in ``DIR`` (default: a temporary folder under /var/tmp), the
steps of an atomic write one by one, and what the file system is (mount options, journal or
not): creating a file costs ext4 far more without a journal, where every new inode is checked
against the inode table for a recent deletion (``recently_deleted``), and the more files were
deleted lately, the more it costs. Run it on the recordings folder's file system, and on
another for comparison.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from callconsent.evidence.fsio import atomic_write_json  # noqa: E402

DOC = {"schema_version": 1, "state": "recording", "padding": "x" * 1900}  # a sidecar's size


def _cpu() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


def measure(name: str, op: Callable[[int], object], n: int) -> None:
    u0, s0 = _cpu()
    for i in range(n):
        op(i)
    u1, s1 = _cpu()
    print(f"{name:44s} user {1e6 * (u1 - u0) / n:7.1f} us  system {1e6 * (s1 - s0) / n:7.1f} us")


def describe(folder: Path) -> str:
    """The mount holding ``folder``: device, type, options, and whether ext4 has a journal."""
    best = ("", "", "", "")
    with open("/proc/mounts") as mounts:
        for line in mounts:
            dev, point, kind, options = line.split()[:4]
            if str(folder).startswith(point.rstrip("/") + "/") and len(point) >= len(best[1]):
                best = (dev, point, kind, options)
    dev, point, kind, options = best
    journal = ""
    if kind == "ext4":
        name = os.path.basename(os.path.realpath(dev))
        journal = "journal" if Path(f"/proc/fs/jbd2/{name}-8").exists() else "no journal"
    return f"{dev} on {point} ({kind}, {journal or '-'}): {options}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", type=Path, help="folder to write in (default: under /var/tmp)")
    p.add_argument("--writes", type=int, default=300)
    args = p.parse_args()
    disk = args.dir or Path("/var/tmp")  # noqa: S108  # a real disk (not tmpfs), own mkdtemp
    folder = Path(tempfile.mkdtemp(prefix="callconsent-fs-", dir=disk))
    n = args.writes
    try:
        print(describe(folder.resolve()))
        data = b"x" * 2000
        measure("atomic_write_json, new sidecar", lambda i: _create(folder, i), n)
        measure("atomic_write_json, rewrite", lambda i: _rewrite(folder, i), n)
        measure("  create an empty file", lambda i: os.close(_open(folder / f"e{i}")), n)
        measure("  write 2 KB to it", lambda i: _write(folder / f"e{i}", data), n)
        measure("  fsync it", lambda i: _fsync(folder / f"e{i}"), n)
        measure("  rename it over another", lambda i: os.replace(folder / f"e{i}", folder / "t"), n)
        measure("  fsync the folder", lambda _: _fsync(folder), n)
        ledger = os.open(folder / "ledger", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        measure("ledger line: append 1.4 KB + fsync", lambda _: _append(ledger, data[:1400]), n)
        os.close(ledger)
    finally:
        shutil.rmtree(folder)
    return 0


def _create(folder: Path, i: int) -> None:
    atomic_write_json(folder / f"{i}.json", DOC, overwrite=False)


def _rewrite(folder: Path, i: int) -> None:
    atomic_write_json(folder / f"{i}.json", DOC)


def _open(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _append(fd: int, data: bytes) -> None:
    os.write(fd, data)
    os.fsync(fd)


if __name__ == "__main__":
    raise SystemExit(main())
