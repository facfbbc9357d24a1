"""The ledger's callers sealed under per-call keys (issue 16): the pure sealing rules, the key
store, and the group commit that stores a key before the line naming it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from callconsent.evidence import callers
from callconsent.evidence.caller_keys import CallerKeys, KeyStoreError, store_path, subject_key
from callconsent.evidence.group_commit import GroupCommit
from callconsent.evidence.ledger import Ledger, verify_chain
from tests.support.memory import sqlite_heap_bytes

SECRET = b"k" * 32
NUMBER = "+4522334455"


def sealed_entry(
    uniqueid: str, number: str | None, name: str | None
) -> tuple[dict[str, Any], callers.KeyRow]:
    """A ``call`` record's start with its caller sealed, and the key to store first."""
    caller, key = callers.seal(uniqueid, number, name, SECRET)
    assert key is not None
    clear = {
        "uniqueid": uniqueid,
        "linkedid": uniqueid,
        "channel": "PJSIP/trunk-00000001",
        "route": "support",
        "caller_number": number,
        "caller_name": name,
        "dialled_number": "4570000000",
    }
    call = callers.ledger_call(clear, caller)
    return {"type": "call", "at": "2026-12-05T10:00:00.000Z", "call": call}, key


@pytest.mark.parametrize(
    "written",
    ["+45 22 33 44 55", "+45-2233-4455", "004522334455", "+4522334455", " +45 (22) 334455 "],
)
def test_every_spelling_of_a_number_gives_the_same_lookup_digest(written: str) -> None:
    assert callers.normalise(written) == NUMBER
    assert callers.lookup_digest(SECRET, written) == callers.lookup_digest(SECRET, NUMBER)


def test_lookup_digest_depends_on_the_installation_secret_and_never_shows_the_number() -> None:
    digest = callers.lookup_digest(SECRET, NUMBER)
    assert digest is not None and "22334455" not in digest
    assert digest != callers.lookup_digest(b"x" * 32, NUMBER)
    assert callers.lookup_digest(SECRET, "anonymous") is None
    assert callers.lookup_digest(SECRET, None) is None


def test_a_sealed_caller_opens_with_its_key_and_reads_erased_without_it() -> None:
    entry, key = sealed_entry("1764000000.1", NUMBER, "Anna Hansen")
    text = json.dumps(entry)
    assert "22334455" not in text and "Anna" not in text
    assert "caller_number" not in entry["call"] and "caller_name" not in entry["call"]
    assert callers.open_caller(entry["call"], {key.kid: key.key}.get) == callers.Caller(
        NUMBER, "Anna Hansen"
    )
    gone = callers.open_caller(entry["call"], {}.get)
    assert gone.erased and gone.shown() == (callers.ERASED, callers.ERASED)
    wrong = callers.open_caller(entry["call"], {key.kid: b"w" * 32}.get)
    assert wrong.erased


def test_a_call_without_number_or_name_stores_no_key() -> None:
    assert callers.seal("1764000000.1", None, "", SECRET) == (None, None)


def test_a_name_without_a_number_is_sealed_with_no_lookup_digest() -> None:
    _, key = callers.seal("1764000000.1", None, "Anna", SECRET)
    assert key is not None and key.lookup is None


def test_an_old_entry_with_the_number_in_clear_reads_as_it_is() -> None:
    call = {"uniqueid": "1.1", "caller_number": NUMBER, "caller_name": "Bo"}
    assert callers.open_caller(call, {}.get) == callers.Caller(NUMBER, "Bo")


def test_destroyed_keys_leave_no_copy_in_the_key_store_files(tmp_path: Path) -> None:
    keys = CallerKeys(tmp_path / "keys.sqlite3")
    _, mine = sealed_entry("1764000000.1", NUMBER, "Anna")
    _, other = sealed_entry("1764000000.2", "+4599887766", "Bo")
    keys.put([mine, other])
    assert keys.key(mine.kid) == mine.key and keys.lookup(mine.kid) == mine.lookup
    assert mine.lookup is not None and keys.calls_of(mine.lookup) == ["1764000000.1"]

    assert keys.destroy_calls(["1764000000.1"]) == 1
    keys.close()

    keys = CallerKeys(tmp_path / "keys.sqlite3")
    assert keys.key(mine.kid) is None and keys.calls_of(mine.lookup) == []
    assert keys.key(other.kid) == other.key  # only that call's key
    keys.close()
    on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert mine.key not in on_disk and mine.lookup.encode() not in on_disk
    assert other.key in on_disk


def test_the_chain_and_the_ledger_bytes_hold_after_the_keys_are_destroyed(
    tmp_path: Path,
) -> None:
    ledger_path = tmp_path / "ledger.jsonl"
    keys = CallerKeys.beside(ledger_path)
    writer = GroupCommit(Ledger(ledger_path), keys)
    written = []
    for n in range(3):
        entry, key = sealed_entry(f"1764000000.{n}", NUMBER, "Anna")
        written.append(writer.append({**entry, **_CALL_REST}, (key,)))
    writer.close()
    before = ledger_path.read_bytes()
    assert b"22334455" not in before

    assert keys.destroy_calls(["1764000000.0", "1764000000.1"]) == 2

    assert ledger_path.read_bytes() == before
    assert verify_chain(ledger_path, check_schema=True) == []
    readable = [callers.open_caller(e["call"], keys.key) for e in written]
    assert [c.erased for c in readable] == [True, True, False]
    assert readable[2].number == NUMBER
    keys.close()


def test_a_line_is_never_written_when_its_key_cannot_be_stored(tmp_path: Path) -> None:
    ledger_path = tmp_path / "ledger.jsonl"
    store_path(ledger_path).mkdir()  # the key store cannot be opened
    writer = GroupCommit(Ledger(ledger_path), CallerKeys.beside(ledger_path))
    entry, key = sealed_entry("1764000000.1", NUMBER, "Anna")
    with pytest.raises(KeyStoreError, match="unable to open"):
        writer.append({**entry, **_CALL_REST}, (key,))
    writer.close()
    assert not ledger_path.exists() or ledger_path.read_bytes() == b""


def test_the_subject_key_is_made_once_and_kept(tmp_path: Path) -> None:
    ledger_path = tmp_path / "state" / "ledger.jsonl"
    first = subject_key(ledger_path)
    assert len(first) == 32 and subject_key(ledger_path) == first
    assert (tmp_path / "state" / "subject.key").stat().st_mode & 0o777 == 0o640


_CALL_REST = {
    "started_at": None,
    "status": "refused",
    "reason": "digit",
    "language": "da",
    "notices": [],
    "purposes": [],
    "recorded_purposes": [],
    "recording": None,
    "software": {"name": "callconsent", "version": "0.1.0"},
    "config_sha256": "ab" * 32,
}


def test_the_key_store_memory_stays_bounded_however_many_keys_it_takes(tmp_path: Path) -> None:
    keys = CallerKeys(tmp_path / "caller-keys.sqlite3")
    rows = [callers.seal(f"1796474519.{n}", NUMBER, "A Caller", SECRET)[1] for n in range(8000)]
    keys.put([r for r in rows[:10] if r is not None])  # the connection, schema and statements
    before = sqlite_heap_bytes()
    for i in range(10, len(rows), 100):  # ~2.4 MB of rows and indexes: past a 2 MiB cache
        keys.put([r for r in rows[i : i + 100] if r is not None])
    grown = sqlite_heap_bytes() - before
    keys.close()
    assert grown < 700 * 1024, f"SQLite's heap grew by {grown // 1024} KiB"
