"""The append-only, hash-chained JSON-lines ledger.

Format: one JSON object per line, ``\\n``-terminated, written with ``ensure_ascii=True`` and no
whitespace, so every line is 7-bit ASCII and can never contain a raw newline (caller text with
CR/LF, U+2028 or lone surrogates is escaped and round-trips exactly). :meth:`Ledger.append` adds
``seq`` (1-based, consecutive) first and ``prev_sha256`` last: the sha256 hex of the previous
line's bytes without its newline, 64 zeros for the first line.

Concurrency: the app and the CLI may append at the same time. Each append takes an exclusive
``flock`` on the file, reads the previous line's hash from the file's tail if the file changed
since this process last appended, writes the line with one ``O_APPEND`` write and fsyncs.
``append`` blocks (lock + fsync); from asyncio call it through ``asyncio.to_thread``.

What the chain proves: a deleted, edited, inserted or reordered line breaks the link of the line
after it. The newest line is covered only by an anchor kept elsewhere: every append copies the
new head to ``anchor_path`` (:mod:`callconsent.evidence.anchor`; default ``<ledger>.anchor``),
and ``verify_chain(path, anchor=...)`` checks it (this also detects trailing lines cut off). An
append that finds the anchored head gone from the ledger leaves the anchor as it is (and logs
``ledger_anchor_mismatch``), so the evidence of a cut survives later appends.

Crash safety: an append that fails (disk full, I/O error) is truncated back to the last whole
line before the error is raised. A power loss mid-write can still leave a last line without its newline. The next append
terminates it first (it stays in the file and is reported, never silently dropped) and chains to
it; ``seq`` continues from the last readable entry.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import json
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import structlog

from callconsent.evidence.anchor import (
    HOLD_RELEASED,
    HOLD_SET,
    AnchorUnreadable,
    Head,
    default_anchor_path,
    holds_after,
    read_head,
    read_holds,
    write_head,
    write_holds,
)
from callconsent.evidence.fsio import FILE_MODE, dumps, schema_errors, schema_validator

GENESIS: Final = "0" * 64
SCHEMA_NAME: Final = "ledger-entry.schema.json"
_CHUNK: Final = 64 * 1024
_HEX: Final = frozenset("0123456789abcdef")
#: How far behind the head an anchor may be and still be moved on (an anchor write failed).
_BEHIND_MAX: Final = 10_000

log = structlog.get_logger("callconsent.ledger")


class LedgerEntryInvalid(ValueError):
    """A record that would make an entry not matching ``schemas/ledger-entry.schema.json``."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("ledger entry does not match the schema: " + "; ".join(errors[:5]))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class LedgerLine:
    path: Path
    line_no: int  # 1-based
    raw: bytes  # the line's bytes without its newline (what the next line's hash covers)
    entry: dict[str, Any] | None  # None when the line is malformed
    error: str | None  # why the line is malformed
    terminated: bool = True  # False: the last line lacks its newline (torn write)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class ChainProblem:
    path: Path
    line_no: int
    kind: str  # malformed | unterminated | chain_break | seq | anchor
    detail: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line_no}: {self.kind}: {self.detail}"


def line_sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


class Ledger:
    """Appends entries to the ledger at ``path`` (created with ``mode`` on first append)."""

    def __init__(
        self,
        path: Path,
        *,
        validate: bool = True,
        mode: int = FILE_MODE,
        anchor_path: Path | None = None,
    ) -> None:
        self.path = path
        #: where the head is copied after every append (:mod:`callconsent.evidence.anchor`)
        self.anchor_path = anchor_path if anchor_path is not None else default_anchor_path(path)
        self._validate = validate
        self._mode = mode
        self._lock = threading.Lock()
        # (st_dev, st_ino, size) after this object's last append, with that line's seq and hash
        self._head: tuple[tuple[int, int, int], int, str] | None = None

    def append(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Add ``seq`` and ``prev_sha256`` to ``record`` (which holds ``type``, ``at`` and the
        rest), validate, append durably, and return the entry as written."""
        return self.append_many([record])[0]

    def append_many(self, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Append ``records`` in order, chained, with one write and one fsync (group commit:
        :class:`GroupCommit`). All or none are validated; none is durable before the fsync."""
        for record in records:
            if "seq" in record or "prev_sha256" in record:
                raise ValueError("seq and prev_sha256 are set by the ledger, not by the caller")
        if not records:
            return []
        with self._lock:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, self._mode)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                st = os.fstat(fd)
                if st.st_size == 0:
                    os.fchmod(fd, self._mode)  # O_CREAT's mode is masked by the umask
                key = (st.st_dev, st.st_ino, st.st_size)
                if self._head is not None and self._head[0] == key:
                    seq, prev, torn = self._head[1], self._head[2], False
                else:
                    seq, prev, torn = _read_head(fd, st.st_size)
                previous = (seq, prev)
                entries: list[dict[str, Any]] = []
                lines: list[bytes] = []
                for record in records:
                    seq += 1
                    entry = {"seq": seq, **record, "prev_sha256": prev}
                    if self._validate:
                        errors = schema_errors(schema_validator(SCHEMA_NAME), entry)
                        if errors:
                            raise LedgerEntryInvalid(errors)
                    line = dumps(entry).encode("ascii")
                    prev = line_sha256(line)
                    entries.append(entry)
                    lines.append(line)
                data = (b"\n" if torn else b"") + b"\n".join(lines) + b"\n"
                try:
                    _write_all(fd, data)
                    os.fsync(fd)
                except OSError:  # disk full, I/O error: leave no torn line behind
                    _cut_back(fd, st.st_size)
                    raise
                size = st.st_size + len(data)
                self._head = ((st.st_dev, st.st_ino, size), seq, prev)
                self._anchor(fd, entries, previous, prev, size)
            finally:
                os.close(fd)  # releases the flock
        return entries

    def _anchor(
        self,
        fd: int,
        entries: Sequence[dict[str, Any]],
        previous: tuple[int, str],
        sha: str,
        size: int,
    ) -> None:
        """Copy the new head (the batch's last entry) to the anchor, and the holds when the
        batch changes them, unless the anchor shows the ledger was cut or edited before this
        append: then it is left as it is, for verify to report. A failure is logged, never
        raised: the entries are durable."""
        anchor = self.anchor_path
        last = entries[-1]
        holds_changed = [e for e in entries if e["type"] in (HOLD_SET, HOLD_RELEASED)]
        try:
            old = read_head(anchor)
            if old is None:  # a new ledger, or an existing one anchored for the first time
                if previous[0] or holds_changed:
                    holds = _holds_in(self.path) | _readable_holds(anchor)
                    write_holds(anchor, holds, seq=last["seq"])
            elif not _extends(fd, old, previous):
                log.error(
                    "ledger_anchor_mismatch",
                    anchor=str(anchor),
                    anchor_seq=old.seq,
                    ledger_seq=previous[0],
                    detail="the ledger no longer holds the anchored head: cut or edited? "
                    "The anchor is kept as it is; run callconsent verify",
                )
                return
            elif holds_changed:
                holds = read_holds(anchor)
                for entry in holds_changed:
                    holds = holds_after(holds, entry)
                write_holds(anchor, holds, seq=last["seq"])
            write_head(anchor, Head(last["seq"], sha, size))
        except (OSError, AnchorUnreadable) as exc:
            log.error("ledger_anchor_failed", anchor=str(anchor), error=str(exc))


def _readable_holds(anchor: Path) -> frozenset[str]:
    try:
        return read_holds(anchor)
    except (OSError, AnchorUnreadable):
        return frozenset()


def _extends(fd: int, anchor: Head, previous: tuple[int, str]) -> bool:
    """True when the ledger before this append still holds the anchored line: the anchor is at
    the previous head, or a little behind it (an anchor write failed) with that line intact."""
    seq, sha = previous
    if anchor.seq == seq and anchor.sha256 == sha:
        return True  # the usual case: one comparison
    if anchor.seq > seq or seq - anchor.seq > _BEHIND_MAX:
        return False
    size = os.fstat(fd).st_size
    for raw in itertools.islice(_reverse_lines(fd, size), 1, None):  # skip the new line
        parsed = _parse(raw)
        if isinstance(parsed, dict) and parsed["seq"] <= anchor.seq:
            return parsed["seq"] == anchor.seq and line_sha256(raw) == anchor.sha256
    return False


def _holds_in(path: Path) -> frozenset[str]:
    """The calls on hold per the whole ledger (to start an anchor for an existing ledger)."""
    holds: frozenset[str] = frozenset()
    for line in iter_entries(path):
        if line.entry is not None and line.entry["type"] in (HOLD_SET, HOLD_RELEASED):
            holds = holds_after(holds, line.entry)
    return holds


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _cut_back(fd: int, size: int) -> None:
    """Truncate a failed append back to ``size``, the last whole line (we hold the lock)."""
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    except OSError:
        return  # nothing more to do: the next append terminates a torn line (see above)


def _reverse_lines(fd: int, size: int) -> Iterator[bytes]:
    """The file's lines from the last to the first, without newlines, reading 64 KiB blocks."""
    end = size
    if end > 0 and os.pread(fd, 1, end - 1) == b"\n":
        end -= 1
    carry = b""
    pos = end
    while pos > 0:
        start = max(0, pos - _CHUNK)
        block = os.pread(fd, pos - start, start) + carry
        pos = start
        parts = block.split(b"\n")
        carry = parts[0]
        yield from reversed(parts[1:])
    if end > 0:
        yield carry


def _read_head(fd: int, size: int) -> tuple[int, str, bool]:
    """``(seq of the last readable entry, hash of the last line, last line torn?)``."""
    if size == 0:
        return 0, GENESIS, False
    torn = os.pread(fd, 1, size - 1) != b"\n"
    lines = _reverse_lines(fd, size)
    last = next(lines)
    found = _last_entry(itertools.chain((last,), lines))
    return (found[0] if found else 0), line_sha256(last), torn


def _last_entry(reversed_lines: Iterator[bytes]) -> tuple[int, bytes] | None:
    """``(seq, raw line)`` of the first readable entry among lines read from the end."""
    for raw in reversed_lines:
        parsed = _parse(raw)
        if isinstance(parsed, dict):
            return parsed["seq"], raw
    return None


def _parse(raw: bytes) -> dict[str, Any] | str:
    """The entry, or why the line is malformed. Checks only what the chain needs."""
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"not valid JSON: {exc}"
    if not isinstance(obj, dict):
        return f"expected a JSON object, found {type(obj).__name__}"
    seq, prev = obj.get("seq"), obj.get("prev_sha256")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        return f"bad or missing seq: {seq!r}"
    if not isinstance(prev, str) or len(prev) != 64 or not _HEX.issuperset(prev):
        return "bad or missing prev_sha256"
    if not isinstance(obj.get("type"), str):
        return "bad or missing type"
    return obj


def iter_entries(path: Path) -> Iterator[LedgerLine]:
    """Stream the ledger line by line (flat memory). Malformed lines are yielded with ``error``
    set (path and line number on the :class:`LedgerLine`), never raised."""
    with path.open("rb") as f:
        for line_no, line in enumerate(f, 1):
            terminated = line.endswith(b"\n")
            raw = line[:-1] if terminated else line
            parsed = _parse(raw)
            if isinstance(parsed, dict):
                yield LedgerLine(path, line_no, raw, parsed, None, terminated)
            else:
                yield LedgerLine(path, line_no, raw, None, parsed, terminated)


def head(path: Path) -> tuple[int, str] | None:
    """``(seq, sha256 of the line)`` of the newest readable entry, to keep as an external anchor;
    None for an empty ledger."""
    with path.open("rb") as f:
        found = _last_entry(_reverse_lines(f.fileno(), os.fstat(f.fileno()).st_size))
    return None if found is None else (found[0], line_sha256(found[1]))


def verify_chain(
    path: Path, *, anchor: tuple[int, str] | None = None, check_schema: bool = False
) -> list[ChainProblem]:
    """Every break in the ledger at ``path``, each with its line number.

    ``anchor`` is a ``(seq, sha256)`` from :func:`head` kept elsewhere: the line with that seq
    must still exist with that hash. ``check_schema`` also validates each entry (slower).
    """
    problems: list[ChainProblem] = []

    def report(line_no: int, kind: str, detail: str) -> None:
        problems.append(ChainProblem(path, line_no, kind, detail))

    prev_hash = GENESIS
    expected_seq: int | None = 1
    anchor_seen = False
    line_no = 0
    for line in iter_entries(path):
        line_no = line.line_no
        if not line.terminated:
            report(
                line_no,
                "unterminated",
                "last line has no newline (a torn write): `callconsent reconcile` moves it aside",
            )
        if line.entry is None:
            report(line_no, "malformed", line.error or "")
            expected_seq = None  # resynchronise on the next readable entry
        else:
            entry = line.entry
            if entry["prev_sha256"] != prev_hash:
                what = "64 zeros" if line_no == 1 else f"the hash of line {line_no - 1}"
                report(
                    line_no,
                    "chain_break",
                    f"prev_sha256 is not {what}: a line before this one was deleted, edited, "
                    "inserted or moved",
                )
            if expected_seq is not None and entry["seq"] != expected_seq:
                report(line_no, "seq", f"seq {entry['seq']}, expected {expected_seq}")
            expected_seq = entry["seq"] + 1
            if anchor is not None and entry["seq"] == anchor[0]:
                anchor_seen = True
                if line_sha256(line.raw) != anchor[1]:
                    report(line_no, "anchor", f"entry seq {anchor[0]} differs from the anchor")
            if check_schema:
                for error in schema_errors(schema_validator(SCHEMA_NAME), entry):
                    report(line_no, "schema", error)
        prev_hash = line_sha256(line.raw)
    if anchor is not None and not anchor_seen:
        report(line_no, "anchor", f"entry seq {anchor[0]} is missing (ledger cut short?)")
    return problems
