"""The index's tables, and how a ledger entry becomes rows in them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Protocol

from callconsent.evidence import callers
from callconsent.evidence.anchor import HOLD_RELEASED as HOLD_RELEASED  # the anchor keeps holds
from callconsent.evidence.anchor import HOLD_SET as HOLD_SET
from callconsent.evidence.paths import is_asterisk_uniqueid

#: The tables. Primary keys only: secondary indexes are in :data:`INDEXES`, which a rebuild
#: drops and creates again after the bulk load (one sort each instead of a million inserts).
TABLES_SQL: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dirs (day TEXT PRIMARY KEY, mtime_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS recordings (
    uniqueid TEXT PRIMARY KEY, day TEXT NOT NULL, file TEXT NOT NULL, state TEXT NOT NULL,
    started_at TEXT, delete_after TEXT, subject TEXT, linkedid TEXT,
    route TEXT, purposes TEXT, agent TEXT, sha256 TEXT, bytes INTEGER, has_audio INTEGER,
    deleted_reason TEXT);
CREATE TABLE IF NOT EXISTS calls (
    uniqueid TEXT PRIMARY KEY, linkedid TEXT, seq INTEGER, at TEXT, started_at TEXT,
    subject TEXT, caller_kid TEXT, route TEXT, status TEXT, reason TEXT, purposes TEXT,
    recording TEXT, retention_days INTEGER NOT NULL, anonymised INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY, type TEXT NOT NULL, at TEXT, line_no INTEGER, offset INTEGER,
    length INTEGER, detail TEXT);
CREATE TABLE IF NOT EXISTS entry_calls (
    uniqueid TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (uniqueid, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS holds (
    uniqueid TEXT PRIMARY KEY, reason TEXT NOT NULL, case_ref TEXT NOT NULL,
    review_date TEXT NOT NULL, actor TEXT, set_at TEXT NOT NULL, seq INTEGER);
CREATE TABLE IF NOT EXISTS exports (
    export_id TEXT PRIMARY KEY, seq INTEGER, at TEXT, actor TEXT, reason TEXT);
CREATE TABLE IF NOT EXISTS export_files (
    sha256 TEXT NOT NULL, export_id TEXT NOT NULL, uniqueid TEXT, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS call_refs (ref TEXT NOT NULL, uniqueid TEXT NOT NULL,
    PRIMARY KEY (ref, uniqueid)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS anonymised (uniqueid TEXT PRIMARY KEY, seq INTEGER, at TEXT,
    reason TEXT);
CREATE TABLE IF NOT EXISTS problems (source TEXT NOT NULL, key TEXT NOT NULL, path TEXT NOT NULL,
    line_no INTEGER, detail TEXT NOT NULL);
"""

INDEXES: Final = {
    "recordings_subject": "recordings (subject)",
    "recordings_expiry": "recordings (delete_after, uniqueid)",
    "recordings_sha256": "recordings (sha256)",
    "recordings_day": "recordings (day)",
    "recordings_started": "recordings (started_at)",
    "recordings_agent": "recordings (agent)",
    "recordings_linkedid": "recordings (linkedid)",
    "calls_subject": "calls (subject)",
    "calls_at": "calls (at)",
    "calls_linkedid": "calls (linkedid)",
    "entries_type": "entries (type)",
    "export_files_sha256": "export_files (sha256)",
}

SCHEMA: Final = TABLES_SQL + "".join(
    f"CREATE INDEX IF NOT EXISTS {name} ON {target};\n" for name, target in INDEXES.items()
)

TABLES: Final = (
    "meta",
    "dirs",
    "recordings",
    "calls",
    "entries",
    "entry_calls",
    "holds",
    "exports",
    "export_files",
    "anonymised",
    "call_refs",
    "problems",
)

#: Ledger entry types this package writes (besides ``deleted``, fixed by the schema).
EXPORT: Final = "export"
ANONYMISED: Final = "anonymised"
WITHDRAWN: Final = "withdrawn"

#: Adds a call's reference for every new call id (``call_ref`` is a SQL function the index
#: registers, :func:`callconsent.evidence.callref.call_ref` with the index's key).
INSERT_REF: Final = "INSERT OR IGNORE INTO call_refs VALUES (call_ref(?1), ?1)"

#: A ``calls`` row: ``subject_of(number, kid)`` (a SQL function the index registers) turns an
#: old entry's clear number, or a sealed caller's key id, into the lookup digest (or null: no
#: number, or the caller's key destroyed); the number itself is never stored.
INSERT_CALL: Final = (
    "INSERT OR REPLACE INTO calls VALUES "
    "(?1,?2,?3,?4,?5,subject_of(?6,?7),?7,?8,?9,?10,?11,?12,?13,0)"
)


class Connection(Protocol):
    """What :func:`apply_entry_rows` needs of a connection (SQLite's or the guarded one)."""

    def execute(self, sql: str, params: Any = ..., /) -> Any: ...
    def executemany(self, sql: str, rows: Any, /) -> Any: ...


Line = tuple[dict[str, Any], int | None, int | None, int | None]  # entry, line_no, offset, length


def call_ids(entry: dict[str, Any]) -> list[str]:
    """The call ids an entry is about: ``call.uniqueid`` and/or a ``calls`` list."""
    out: list[str] = []
    call = entry.get("call")
    if isinstance(call, dict) and isinstance(call.get("uniqueid"), str):
        out.append(call["uniqueid"])
    calls = entry.get("calls")
    if isinstance(calls, list):
        out.extend(c for c in calls if isinstance(c, str))
    return out


_INT64: Final = 1 << 63
_TEXT: Final = (str, type(None))


def _text_problem(obj: dict[str, Any], keys: tuple[str, ...], prefix: str = "") -> str | None:
    """The first of ``keys`` whose value is neither text nor null (fast when all are fine)."""
    for key in keys:
        value = obj.get(key)
        if type(value) not in _TEXT:
            return f"{prefix}{key} is a {type(value).__name__}, expected a string or null"
    return None


def _id_problem(key: str, value: Any) -> str | None:
    if is_asterisk_uniqueid(value):
        return None
    return f"{key} {str(value)[:40]!r} is not an Asterisk uniqueid"


_NEEDS_CALL: Final = frozenset({"call", "recording_final", "deleted", HOLD_SET})
_CALL_TEXT: Final = ("caller_number", "caller_name", "route")
_SEALED_TEXT: Final = ("kid", "sealed")
_CALL_FIELDS: Final = ("started_at", "status", "reason", "recording")


def entry_problem(entry: dict[str, Any]) -> str | None:
    """Why a chained ledger entry cannot go into the index (a field of the wrong type, a call
    id not in Asterisk's format, a huge number), or None. The line is reported and skipped."""
    seq, kind = entry["seq"], entry["type"]
    if not 1 <= seq < _INT64:
        return f"seq {seq!r} out of range"
    problem = _text_problem(entry, ("at", "actor"))
    call = entry.get("call")
    if problem is None and call is None and kind in _NEEDS_CALL:
        return f"a {kind} entry without its call"
    if problem is None and call is not None:
        if type(call) is not dict:
            return f"call is a {type(call).__name__}, expected an object"
        problem = _id_problem("call.uniqueid", call.get("uniqueid"))
        if problem is None and call.get("linkedid") is not None:
            problem = _id_problem("call.linkedid", call["linkedid"])
        problem = problem or _text_problem(call, _CALL_TEXT, "call.")
        caller = call.get("caller")
        if problem is None and caller is not None:
            if type(caller) is not dict:
                return f"call.caller is a {type(caller).__name__}, expected an object"
            problem = _text_problem(caller, _SEALED_TEXT, "call.caller.")
    calls = entry.get("calls")
    if problem is None and calls is not None:
        if type(calls) is not list:
            return f"calls is a {type(calls).__name__}, expected a list"
        problem = next((p for c in calls if (p := _id_problem("calls[]", c))), None)
    if problem is not None or kind not in (*_NEEDS_CALL, EXPORT, ANONYMISED, WITHDRAWN):
        return problem
    if kind == "call":
        return _call_problem(entry)
    if kind == EXPORT:
        return _export_problem(entry)
    return _text_problem(entry, ("reason",))


def _call_problem(entry: dict[str, Any]) -> str | None:
    problem = _text_problem(entry, _CALL_FIELDS)
    purposes = entry.get("purposes")
    if problem is not None or purposes is None:
        return problem
    if type(purposes) is not list:
        return f"purposes is a {type(purposes).__name__}, expected a list"
    for p in purposes:
        if type(p) is not dict:
            return "purposes[] is not an object"
        problem = _text_problem(p, ("purpose", "status"), "purposes[].")
        days = p.get("retention_days")
        if (
            problem is None
            and days is not None
            and (type(days) is not int or not -_INT64 <= days < _INT64)
        ):
            problem = f"purposes[].retention_days {str(days)[:40]} is not a day count"
        if problem is not None:
            return problem
    return None


def _export_problem(entry: dict[str, Any]) -> str | None:
    problem = _text_problem(entry, ("export_id", "archive_sha256"))
    files = entry.get("files")
    if problem is not None or files is None:
        return problem
    if type(files) is not list:
        return f"files is a {type(files).__name__}, expected a list"
    for f in files:
        if type(f) is dict:
            problem = _text_problem(f, ("sha256", "name"), "files[].")
            if problem is None and f.get("uniqueid") is not None:
                problem = _id_problem("files[].uniqueid", f["uniqueid"])
            if problem is not None:
                return problem
    return None


def _detail(entry: dict[str, Any]) -> str | None:
    if entry["type"] == EXPORT:
        return str(entry.get("export_id"))
    if entry["type"] == WITHDRAWN:
        outcome = entry.get("outcome")
        return outcome if isinstance(outcome, str) else None
    reason = entry.get("reason")
    return reason if isinstance(reason, str) else None


def _call_row(entry: dict[str, Any]) -> tuple[Any, ...] | None:
    call = entry.get("call")
    if not isinstance(call, dict) or not isinstance(call.get("uniqueid"), str):
        return None
    purposes = [p for p in entry.get("purposes") or () if isinstance(p, dict)]
    days = [p["retention_days"] for p in purposes if isinstance(p.get("retention_days"), int)]
    summary = ",".join(f"{p.get('purpose')}={p.get('status')}" for p in purposes)
    recording = entry.get("recording")
    return (
        call["uniqueid"],
        call.get("linkedid"),
        entry["seq"],
        entry.get("at"),
        entry.get("started_at"),
        call.get("caller_number"),  # old ledgers only: in clear
        callers.kid_of(call),
        call.get("route"),
        entry.get("status"),
        entry.get("reason"),
        summary,
        recording if isinstance(recording, str) else None,
        max(days, default=0),
    )


def apply_entry_rows(db: Connection, lines: Sequence[Line], *, refs: bool = True) -> None:
    """Insert ``lines`` (ledger order) into the index. Common types go in batches; the rare
    types this package writes are applied in order after flushing what came before them.
    ``refs=False`` leaves out the call references (a rebuild adds them all at the end)."""
    entries: list[tuple[Any, ...]] = []
    links: list[tuple[str, int]] = []
    calls: list[tuple[Any, ...]] = []

    def flush() -> None:
        db.executemany("INSERT OR REPLACE INTO entries VALUES (?,?,?,?,?,?,?)", entries)
        db.executemany("INSERT OR IGNORE INTO entry_calls VALUES (?,?)", links)
        db.executemany(INSERT_CALL, calls)
        if refs:
            db.executemany(INSERT_REF, [(c[0],) for c in calls])
        for target in (entries, links, calls):
            target.clear()

    for entry, line_no, offset, length in lines:
        seq, kind = entry["seq"], entry["type"]
        entries.append((seq, kind, entry.get("at"), line_no, offset, length, _detail(entry)))
        ids = call_ids(entry)
        links.extend((u, seq) for u in ids)
        if kind == "call":
            row = _call_row(entry)
            if row is not None:
                calls.append(row)
        elif kind in (HOLD_SET, HOLD_RELEASED, EXPORT, ANONYMISED) or (
            kind == WITHDRAWN and entry.get("outcome") == "deleted"
        ):
            flush()
            _apply_rare(db, entry, ids)
    flush()


def _apply_rare(db: Connection, entry: dict[str, Any], ids: list[str]) -> None:
    kind, seq, at = entry["type"], entry["seq"], entry.get("at")
    if kind == HOLD_SET:
        db.executemany(
            "INSERT OR REPLACE INTO holds VALUES (?,?,?,?,?,?,?)",
            [
                (
                    u,
                    str(entry.get("reason")),
                    str(entry.get("case_ref")),
                    str(entry.get("review_date")),
                    entry.get("actor"),
                    at,
                    seq,
                )
                for u in ids
            ],
        )
    elif kind == HOLD_RELEASED:
        db.executemany("DELETE FROM holds WHERE uniqueid=?", [(u,) for u in ids])
    elif kind == EXPORT:
        export_id = str(entry.get("export_id"))
        db.execute(
            "INSERT OR REPLACE INTO exports VALUES (?,?,?,?,?)",
            (export_id, seq, at, entry.get("actor"), entry.get("reason")),
        )
        db.execute("DELETE FROM export_files WHERE export_id=?", (export_id,))
        db.executemany(
            "INSERT INTO export_files VALUES (?,?,?,?)",
            [
                (f.get("sha256"), export_id, f.get("uniqueid"), f.get("name"))
                for f in entry.get("files") or ()
                if isinstance(f, dict)
            ],
        )
        if isinstance(entry.get("archive_sha256"), str):
            db.execute(
                "INSERT INTO export_files VALUES (?,?,NULL,?)",
                (entry["archive_sha256"], export_id, str(entry.get("archive"))),
            )
    elif kind == WITHDRAWN:  # the app destroys the caller's key with the recording: look again
        db.executemany(
            "UPDATE calls SET subject=subject_of(NULL, caller_kid) "
            "WHERE uniqueid=? AND caller_kid IS NOT NULL",
            [(u,) for u in ids],
        )
    elif kind == ANONYMISED:
        db.executemany(
            "INSERT OR REPLACE INTO anonymised VALUES (?,?,?,?)",
            [(u, seq, at, entry.get("reason")) for u in ids],
        )
        db.executemany(
            "UPDATE calls SET subject=NULL, anonymised=1 WHERE uniqueid=?",
            [(u,) for u in ids],
        )
