"""The ledger's side of the lifecycle index (:mod:`.index`): its lines go in, in batches.

Only lines past the last indexed byte offset are read; a ledger replaced (rotation, restore: its
file identity or first line changed) or shortened is read again from the start, after its rows
are dropped. Where reading stopped is kept in the index's ``meta`` table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from callconsent.lifecycle import _scan
from callconsent.lifecycle._db import GuardedConnection
from callconsent.lifecycle._scan import Problem
from callconsent.lifecycle._schema import apply_entry_rows, entry_problem

BATCH: Final = 5000
#: Rows per commit during a rebuild: a B-tree page changed many times is written once per commit.
BULK_COMMIT: Final = 100_000

Progress = Callable[[str, int], None]  # (what, count so far)


@dataclass(slots=True)
class IndexStats:
    sidecars: int = 0
    ledger_lines: int = 0
    days_scanned: int = 0
    days_unchanged: int = 0
    problems: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "sidecars": self.sidecars,
            "ledger_lines": self.ledger_lines,
            "days_scanned": self.days_scanned,
            "days_unchanged": self.days_unchanged,
            "problems": self.problems,
        }


def read_meta(db: GuardedConnection, key: str) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return None if row is None else str(row[0])


def write_meta(db: GuardedConnection, **values: object) -> None:
    db.executemany(
        "INSERT OR REPLACE INTO meta VALUES (?,?)", [(k, str(v)) for k, v in values.items()]
    )


def update_ledger(
    db: GuardedConnection,
    ledger_path: Path,
    stats: IndexStats,
    progress: Progress | None,
    problem: Callable[[Problem, str, str], None],
    *,
    bulk: bool,
    between: Callable[[], None] | None = None,
) -> None:
    """Ingest ledger lines past the last indexed one; ``between`` runs after each batch."""
    try:
        st = ledger_path.stat()
    except FileNotFoundError:
        return
    identity = f"{st.st_dev}:{st.st_ino}"
    offset = int(read_meta(db, "ledger_offset") or 0)
    line_no = int(read_meta(db, "ledger_line_no") or 0)
    first = first_line(ledger_path)
    if (
        read_meta(db, "ledger_identity") not in (None, identity)
        or st.st_size < offset
        or read_meta(db, "ledger_first_line") not in (None, first)
    ):
        # the ledger was replaced (rotation, restore): re-read it from the start
        db.executescript(
            "DELETE FROM entries; DELETE FROM entry_calls; DELETE FROM "
            "calls; DELETE FROM holds; DELETE FROM exports; DELETE FROM "
            "export_files; DELETE FROM anonymised; DELETE FROM "
            "meta WHERE key='callref_key';"
        )
        offset, line_no = 0, 0
    if offset == 0:
        db.execute("DELETE FROM problems WHERE source='ledger'")
    batch: list[tuple[dict[str, Any], int, int, int]] = []
    for line in _scan.read_ledger(ledger_path, offset, line_no):
        bad = line.error if line.entry is None else entry_problem(line.entry)
        if line.entry is None or bad is not None:
            detail = bad if line.entry is None else f"malformed ledger line: {bad}"
            problem(Problem(ledger_path, line.line_no, detail or ""), "ledger", "")
        else:
            batch.append((line.entry, line.line_no, line.offset, line.length))
        offset, line_no = line.offset + line.length + 1, line.line_no
        stats.ledger_lines += 1
        if len(batch) >= BATCH:
            apply_entry_rows(db, batch, refs=not bulk)
            batch.clear()
            write_meta(db, ledger_offset=offset, ledger_line_no=line_no)
            if not bulk or stats.ledger_lines % BULK_COMMIT < BATCH:
                db.commit()
            if progress is not None:
                progress("ledger lines", stats.ledger_lines)
            if between is not None:
                between()
    apply_entry_rows(db, batch, refs=not bulk)
    write_meta(
        db,
        ledger_offset=offset,
        ledger_line_no=line_no,
        ledger_identity=identity,
        ledger_first_line=first_line(ledger_path),
    )
    db.commit()
    if progress is not None:
        progress("ledger lines", stats.ledger_lines)


def first_line(ledger_path: Path) -> str:
    """The ledger's first line (hex, shortened): a ledger replaced under the same name shows."""
    try:
        with ledger_path.open("rb") as f:
            return f.readline(4096).hex()[:128]
    except FileNotFoundError:
        return ""
