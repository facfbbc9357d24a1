"""The ledger: append-only JSON lines, hash-chained, safe for concurrent appenders."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import callconsent
from callconsent.evidence.ledger import (
    GENESIS,
    Ledger,
    LedgerEntryInvalid,
    head,
    iter_entries,
    verify_chain,
)

SHA = "cd" * 32
HOSTILE = 'x"\r\n{"seq":99}\n\u2028\u2029\ud800\x00' + "7" * 200


def call_record(n: int = 0, **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "type": "call",
        "at": "2026-11-24T12:00:00.123Z",
        "call": {
            "uniqueid": f"1732451234.{n}",
            "linkedid": f"1732451234.{n}",
            "channel": "PJSIP/lab-caller-00000001",
            "route": "support",
            "caller_number": "+4512345678",
            "caller_name": None,
            "dialled_number": "support",
        },
        "started_at": "2026-11-24T11:59:50.000Z",
        "status": "refused",
        "reason": "timeout",
        "language": "da",
        "notices": [],
        "purposes": [
            {
                "purpose": "training",
                "lawful_basis": "6(1)(a)",
                "retention_days": 30,
                "status": "refused",
                "reason": "timeout",
                "consent": None,
            }
        ],
        "recorded_purposes": [],
        "recording": None,
        "software": {"name": "callconsent", "version": "0.1.0"},
        "config_sha256": SHA,
    }
    record.update(overrides)
    return record


def note(n: int) -> dict[str, Any]:
    return {"type": "note", "at": "2026-11-24T12:00:00.123Z", "n": n}


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]


def write_lines(path: Path, raw: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in raw))


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.jsonl"


def filled(path: Path, n: int) -> Path:
    ledger = Ledger(path)
    for i in range(n):
        ledger.append(note(i))
    return path


def kinds_at(problems: list[Any]) -> list[tuple[int, str]]:
    return [(p.line_no, p.kind) for p in problems]


def test_first_entry_gets_seq_1_and_chains_to_zeros(ledger_path: Path) -> None:
    entry = Ledger(ledger_path).append(call_record())
    assert entry["seq"] == 1 and entry["prev_sha256"] == GENESIS
    assert list(entry) == ["seq", *call_record(), "prev_sha256"]
    assert json.loads(ledger_path.read_bytes()) == entry
    assert stat.S_IMODE(ledger_path.stat().st_mode) == 0o640


def test_each_entry_links_to_the_previous_lines_bytes(ledger_path: Path) -> None:
    filled(ledger_path, 5)
    raw = lines(ledger_path)
    for i, line in enumerate(raw):
        entry = json.loads(line)
        assert entry["seq"] == i + 1
        expected = GENESIS if i == 0 else hashlib.sha256(raw[i - 1]).hexdigest()
        assert entry["prev_sha256"] == expected
    assert verify_chain(ledger_path) == []


def test_hostile_text_never_breaks_a_line_and_round_trips(ledger_path: Path) -> None:
    ledger = Ledger(ledger_path)
    record = call_record()
    record["call"]["caller_name"] = HOSTILE
    ledger.append(record)
    ledger.append(note(1))
    raw = ledger_path.read_bytes()
    assert raw.isascii() and raw.count(b"\n") == 2 and b"\r" not in raw
    entries = list(iter_entries(ledger_path))
    assert entries[0].entry is not None and entries[0].entry["call"]["caller_name"] == HOSTILE
    assert verify_chain(ledger_path) == []


def test_caller_cannot_choose_seq_or_prev_hash(ledger_path: Path) -> None:
    with pytest.raises(ValueError, match="set by the ledger"):
        Ledger(ledger_path).append(note(0) | {"seq": 7})
    with pytest.raises(ValueError, match="set by the ledger"):
        Ledger(ledger_path).append(note(0) | {"prev_sha256": GENESIS})


def test_invalid_call_entry_is_rejected_and_nothing_is_written(ledger_path: Path) -> None:
    ledger = Ledger(ledger_path)
    ledger.append(call_record())
    before = ledger_path.read_bytes()
    with pytest.raises(LedgerEntryInvalid, match="maybe"):
        ledger.append(call_record(status="maybe"))
    with pytest.raises(LedgerEntryInvalid, match="audio"):
        ledger.append(call_record(audio="base64..."))
    assert ledger_path.read_bytes() == before
    assert ledger.append(call_record(1))["seq"] == 2


def test_ledger_detects_deleted_line(ledger_path: Path) -> None:
    raw = lines(filled(ledger_path, 6))
    write_lines(ledger_path, raw[:2] + raw[3:])  # line 3 deleted
    assert kinds_at(verify_chain(ledger_path)) == [(3, "chain_break"), (3, "seq")]


def test_ledger_detects_deleted_first_line(ledger_path: Path) -> None:
    raw = lines(filled(ledger_path, 3))
    write_lines(ledger_path, raw[1:])
    assert kinds_at(verify_chain(ledger_path)) == [(1, "chain_break"), (1, "seq")]


def test_ledger_detects_edited_line(ledger_path: Path) -> None:
    raw = lines(filled(ledger_path, 5))
    raw[1] = raw[1].replace(b'"n":1', b'"n":9')
    write_lines(ledger_path, raw)
    problems = verify_chain(ledger_path)
    assert kinds_at(problems) == [(3, "chain_break")]
    assert "line 2" in problems[0].detail and problems[0].path == ledger_path


def test_ledger_detects_reordered_lines(ledger_path: Path) -> None:
    raw = lines(filled(ledger_path, 5))
    raw[1], raw[2] = raw[2], raw[1]
    write_lines(ledger_path, raw)
    assert {line for line, _ in kinds_at(verify_chain(ledger_path))} == {2, 3, 4}


def test_ledger_detects_inserted_line(ledger_path: Path) -> None:
    raw = lines(filled(ledger_path, 4))
    forged = json.dumps(
        {
            "seq": 3,
            "type": "note",
            "at": "2026-11-24T12:00:00.123Z",
            "prev_sha256": hashlib.sha256(raw[1]).hexdigest(),
        }
    ).encode()
    write_lines(ledger_path, [*raw[:2], forged, *raw[2:]])
    assert kinds_at(verify_chain(ledger_path)) == [(4, "chain_break"), (4, "seq")]


def test_malformed_lines_are_reported_with_path_and_line_number(ledger_path: Path) -> None:
    raw = lines(filled(ledger_path, 3))
    write_lines(ledger_path, [raw[0], b"{not json", b"[1,2]", b"\xff", *raw[1:]])
    bad = [(e.line_no, e.path) for e in iter_entries(ledger_path) if not e.ok]
    assert bad == [(2, ledger_path), (3, ledger_path), (4, ledger_path)]
    assert kinds_at(verify_chain(ledger_path)) == [
        (2, "malformed"),
        (3, "malformed"),
        (4, "malformed"),
        (5, "chain_break"),
    ]


def test_anchor_detects_a_cut_off_tail_and_an_edited_last_line(ledger_path: Path) -> None:
    filled(ledger_path, 4)
    anchor = head(ledger_path)
    assert anchor is not None and anchor[0] == 4
    assert verify_chain(ledger_path, anchor=anchor) == []
    raw = lines(ledger_path)
    write_lines(ledger_path, [*raw[:3], raw[3].replace(b'"n":3', b'"n":4')])
    assert kinds_at(verify_chain(ledger_path)) == []  # the chain alone cannot see this
    assert kinds_at(verify_chain(ledger_path, anchor=anchor)) == [(4, "anchor")]
    write_lines(ledger_path, raw[:3])
    assert kinds_at(verify_chain(ledger_path, anchor=anchor)) == [(3, "anchor")]


def test_check_schema_reports_entries_that_do_not_match(ledger_path: Path) -> None:
    Ledger(ledger_path, validate=False).append(call_record(status="maybe"))
    assert kinds_at(verify_chain(ledger_path)) == []
    assert kinds_at(verify_chain(ledger_path, check_schema=True)) == [(1, "schema")]


def test_appenders_sharing_a_file_continue_each_others_chain(ledger_path: Path) -> None:
    app, cli = Ledger(ledger_path), Ledger(ledger_path)
    for i in range(6):
        (app if i % 2 else cli).append(note(i))
    assert [e.entry["seq"] for e in iter_entries(ledger_path) if e.entry] == [1, 2, 3, 4, 5, 6]
    assert verify_chain(ledger_path) == []


def test_tail_longer_than_the_read_block_is_hashed_whole(ledger_path: Path) -> None:
    record = call_record()
    record["call"]["caller_name"] = "n" * 200_000
    Ledger(ledger_path).append(record)
    Ledger(ledger_path).append(note(1))  # a fresh appender must read the 200 kB line back
    assert verify_chain(ledger_path) == []


def test_torn_last_line_is_kept_reported_and_chained_over(ledger_path: Path) -> None:
    """Power loss mid-write leaves a line without newline; the next append terminates it."""
    filled(ledger_path, 2)
    with ledger_path.open("ab") as f:
        f.write(b'{"seq":3,"type":"no')
    assert kinds_at(verify_chain(ledger_path)) == [(3, "unterminated"), (3, "malformed")]
    entry = Ledger(ledger_path).append(note(3))
    assert entry["seq"] == 3  # continues from the last readable entry
    assert kinds_at(verify_chain(ledger_path)) == [(3, "malformed")]
    assert lines(ledger_path)[2] == b'{"seq":3,"type":"no'


def test_concurrent_appenders_from_two_processes_keep_a_valid_chain(ledger_path: Path) -> None:
    src = str(Path(callconsent.__file__).parents[1])
    script = (
        "import sys; from pathlib import Path; from callconsent.evidence.ledger import Ledger\n"
        "ledger = Ledger(Path(sys.argv[1]))\n"
        "for i in range(150):\n"
        "    ledger.append({'type': 'note', 'at': '2026-11-24T12:00:00.123Z', 'who': sys.argv[2]})\n"
    )
    env = {**os.environ, "PYTHONPATH": src}
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(ledger_path), who], env=env)
        for who in ("app", "cli")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    entries = [e.entry for e in iter_entries(ledger_path)]
    assert [e["seq"] for e in entries if e] == list(range(1, 301))
    assert {e["who"] for e in entries if e} == {"app", "cli"}
    assert verify_chain(ledger_path) == []
