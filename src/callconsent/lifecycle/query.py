"""Lookups on the index: subjects (by number, call id, date range, agent), holds, expiry."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from callconsent.lifecycle.errors import LifecycleError
from callconsent.lifecycle.index import Index


@dataclass(frozen=True, slots=True)
class Selector:
    """Which calls a request is about. Criteria given together must all match."""

    number: str | None = None
    call_id: str | None = None  # uniqueid or linkedid
    date_from: str | None = None  # UTC stamp, inclusive
    date_to: str | None = None  # UTC stamp, exclusive
    agent: str | None = None

    @property
    def empty(self) -> bool:
        return not any((self.number, self.call_id, self.date_from, self.date_to, self.agent))

    def said(self) -> str:
        """The criteria in words, for messages: never the caller number itself."""
        parts = ["the given number"] if self.number is not None else []
        parts += [f"call id {self.call_id!r}"] if self.call_id is not None else []
        parts += [f"from {self.date_from}"] if self.date_from is not None else []
        parts += [f"before {self.date_to}"] if self.date_to is not None else []
        parts += [f"agent {self.agent!r}"] if self.agent is not None else []
        return ", ".join(parts) or "no criteria"

    def describe(self) -> dict[str, Any]:
        """For logs: which criteria were used, never the caller number itself."""
        return {
            "by_number": self.number is not None,
            "call_id": self.call_id,
            "from": self.date_from,
            "to": self.date_to,
            "agent": self.agent,
        }


def bound(text: str | None, *, end: bool) -> str | None:
    """``--from``/``--to`` as a UTC stamp: a date (``YYYY-MM-DD``) means that whole day, so a
    ``--to`` date is the start of the next day (exclusive); an ISO time must carry a zone.
    ``--to 9999-12-31`` is the end of time, not an overflow. :class:`LifecycleError` for
    anything else, naming the option."""
    if text is None:
        return None
    option = "--to" if end else "--from"
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
            if end:
                if moment.date() == date.max:
                    return "9999-12-31T23:59:59.999Z"
                moment += timedelta(days=1)
        else:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                raise ValueError("an ISO time needs a zone, e.g. 2026-04-06T03:00:00Z")
            moment = moment.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise LifecycleError(f"{option} {text!r}: not a date or ISO time ({exc})") from exc
    m = moment  # four-digit year always (strftime's %Y drops leading zeros): stamps sort as text
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}."
        f"{m.microsecond // 1000:03d}Z"
    )


@dataclass(frozen=True, slots=True)
class Recording:
    uniqueid: str
    file: str
    state: str
    started_at: str | None
    delete_after: str | None
    sha256: str | None
    has_audio: bool | None
    deleted_reason: str | None


@dataclass(frozen=True, slots=True)
class Hold:
    uniqueid: str
    reason: str
    case_ref: str
    review_date: str  # YYYY-MM-DD
    actor: str | None
    set_at: str
    seq: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "call_id": self.uniqueid,
            "reason": self.reason,
            "case_ref": self.case_ref,
            "review_date": self.review_date,
            "actor": self.actor,
            "set_at": self.set_at,
            "ledger_seq": self.seq,
        }


_REC_COLS = "uniqueid, file, state, started_at, delete_after, sha256, has_audio, deleted_reason"


def _recording(row: tuple[Any, ...]) -> Recording:
    u, file, state, started, delete_after, sha, has_audio, reason = row
    return Recording(
        u,
        file,
        state,
        started,
        delete_after,
        sha,
        None if has_audio is None else bool(has_audio),
        reason,
    )


def find_calls(index: Index, sel: Selector) -> list[str]:
    """Every call id matching ``sel``, from the ledger's call entries and from the sidecars."""
    found: set[str] = set()
    for table, when, has_agent in (
        ("calls", "COALESCE(started_at, at)", False),
        ("recordings", "started_at", True),
    ):
        where: list[str] = []
        args: list[Any] = []
        if sel.number is not None:  # by its lookup digest: the index holds no number
            where.append("subject = ?")
            args.append(index.subjects.digest(sel.number))
        if sel.call_id is not None:
            where.append("(uniqueid = ? OR linkedid = ?)")
            args += [sel.call_id, sel.call_id]
        if sel.date_from is not None:
            where.append(f"{when} >= ?")
            args.append(sel.date_from)
        if sel.date_to is not None:
            where.append(f"{when} < ?")
            args.append(sel.date_to)
        if sel.agent is not None:
            if not has_agent:
                continue  # the ledger's call entries carry no agent
            where.append("agent = ?")
            args.append(sel.agent)
        if not where:
            continue
        sql = f"SELECT uniqueid FROM {table} WHERE " + " AND ".join(where)  # noqa: S608  # fixed column names, values bound
        found.update(u for (u,) in index.db.execute(sql, args))
    return sorted(found)


def recordings(index: Index, call_ids: list[str]) -> list[Recording]:
    """The recordings of ``call_ids`` that the index knows (sidecars), plus files named only
    by a ledger call entry (sidecar missing)."""
    out: dict[str, Recording] = {}
    for u in call_ids:
        row = index.db.execute(
            f"SELECT {_REC_COLS} FROM recordings WHERE uniqueid=?",  # noqa: S608
            (u,),
        ).fetchone()
        if row is not None:
            out[u] = _recording(row)
            continue
        call = index.db.execute("SELECT recording FROM calls WHERE uniqueid=?", (u,)).fetchone()
        if call is not None and call[0]:
            out[u] = Recording(u, call[0], "unknown", None, None, None, None, None)
    return list(out.values())


def recording(index: Index, call_id: str) -> Recording | None:
    found = recordings(index, [call_id])
    return found[0] if found else None


def known_call(index: Index, call_id: str) -> bool:
    for table in ("calls", "recordings"):
        row = index.db.execute(
            f"SELECT 1 FROM {table} WHERE uniqueid=?",  # noqa: S608
            (call_id,),
        ).fetchone()
        if row is not None:
            return True
    return False


def holds(index: Index) -> dict[str, Hold]:
    rows = index.db.execute(
        "SELECT uniqueid, reason, case_ref, review_date, actor, set_at, seq "
        "FROM holds ORDER BY review_date, uniqueid"
    )
    return {r[0]: Hold(*r) for r in rows}


def expired(index: Index, now_stamp: str, *, page: int = 1000) -> Iterator[Recording]:
    """Recordings (not yet tombstoned) whose ``delete_after`` is at or before ``now_stamp``, in
    expiry order, fetched a page at a time (flat memory; safe while rows change)."""
    last: tuple[str, str] = ("", "")
    while True:
        rows = index.db.execute(
            f"SELECT {_REC_COLS} FROM recordings WHERE delete_after <= ? "  # noqa: S608
            "AND (delete_after, uniqueid) > (?, ?) AND state != 'tombstone' "
            "ORDER BY delete_after, uniqueid LIMIT ?",
            (now_stamp, last[0], last[1], page),
        ).fetchall()
        if not rows:
            return
        for row in rows:
            yield _recording(row)
        last = (rows[-1][4], rows[-1][0])


def interrupted_deletions(index: Index) -> list[Recording]:
    """Tombstones whose audio is still there: a deletion interrupted after the tombstone."""
    rows = index.db.execute(
        f"SELECT {_REC_COLS} FROM recordings "  # noqa: S608
        "WHERE state = 'tombstone' AND has_audio = 1"
    ).fetchall()
    return [_recording(r) for r in rows]


def entry_positions(index: Index, call_ids: list[str]) -> list[tuple[int, int | None, int | None]]:
    """``(seq, offset, length)`` of every ledger entry about ``call_ids``, in ledger order."""
    seqs: set[int] = set()
    for u in call_ids:
        seqs.update(
            s for (s,) in index.db.execute("SELECT seq FROM entry_calls WHERE uniqueid=?", (u,))
        )
    out = []
    for seq in sorted(seqs):
        row = index.db.execute("SELECT offset, length FROM entries WHERE seq=?", (seq,)).fetchone()
        if row is not None:
            out.append((seq, row[0], row[1]))
    return out


def is_anonymised(index: Index, call_id: str) -> bool:
    row = index.db.execute("SELECT 1 FROM anonymised WHERE uniqueid=?", (call_id,)).fetchone()
    return row is not None


def calls_by_ref(index: Index, ref: str) -> list[tuple[str, str | None]]:
    """``(call id, start time)`` of every known call whose reference is ``ref`` (normalised, see
    :mod:`callconsent.evidence.callref`), oldest first. More than one is a collision: never guess."""
    rows = index.db.execute(
        "SELECT r.uniqueid, COALESCE(c.started_at, c.at, s.started_at) FROM call_refs r "
        "LEFT JOIN calls c ON c.uniqueid = r.uniqueid "
        "LEFT JOIN recordings s ON s.uniqueid = r.uniqueid "
        "WHERE r.ref = ? AND (c.uniqueid IS NOT NULL OR s.uniqueid IS NOT NULL)",
        (ref,),
    ).fetchall()
    return sorted(((u, at) for u, at in rows), key=lambda r: (r[1] or "", r[0]))
