"""Byte searches for a caller's number in what Asterisk and the app write outside the evidence
(AstDB, Asterisk's log files, the app's log), shared by the end-to-end tests of issue 16."""

from __future__ import annotations

import re
from pathlib import Path

from tests.harness.asterisk import AsteriskLab

#: Lines the shipped logger.conf writes to its files (notice,warning,error,dtmf).
SHIPPED_LEVELS = re.compile(rb"^\[[^\]]*\] (NOTICE|WARNING|ERROR|DTMF)\[")


def forms(number: str) -> list[bytes]:
    """The number as it could be written: international, without +, national (8 digits)."""
    return [number.encode(), number[1:].encode(), number[-8:].encode()]


def found(number: str, files: list[Path], *, shipped_levels_only: bool = False) -> list[str]:
    """``path: form`` for every file holding one of the number's :func:`forms`; with
    ``shipped_levels_only`` only the lines the shipped logger.conf would write are searched."""
    hits = []
    for path in files:
        data = path.read_bytes()
        if shipped_levels_only:
            data = b"\n".join(line for line in data.splitlines() if SHIPPED_LEVELS.match(line))
        hits += [f"{path}: {form.decode()}" for form in forms(number) if form in data]
    return hits


def astdb_files(asterisk: AsteriskLab) -> list[Path]:
    """AstDB's SQLite file and its WAL or journal, where they exist."""
    base = asterisk.root / "var/lib/asterisk/astdb.sqlite3"
    files = [p for p in (base, Path(f"{base}-wal"), Path(f"{base}-journal")) if p.exists()]
    assert base in files
    return files


def asterisk_logs(asterisk: AsteriskLab) -> tuple[list[Path], list[Path]]:
    """(the lab's "full" log, every other log file but the CDR's)."""
    logs = asterisk.root / "var/log/asterisk"
    full = logs / "full"
    others = [
        p
        for p in logs.rglob("*")
        if p.is_file() and p != full and "cdr" not in p.relative_to(logs).parts[0]
    ]
    return [full], others
