"""A ledger that forgets (issue 16): erasure, withdrawal with deletion and the end of the
evidence period destroy the callers' keys; the ledger bytes, the chain and lookups of live
entries by number keep working; nothing beside the ledger holds the number."""

from __future__ import annotations

import json
import sqlite3
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest

from callconsent.config import Config
from callconsent.evidence import callers
from callconsent.evidence.caller_keys import CallerKeys
from callconsent.evidence.ledger import iter_entries, verify_chain
from callconsent.lifecycle import audit, query
from callconsent.lifecycle.anonymise import anonymise
from callconsent.lifecycle.erase import erase
from callconsent.lifecycle.export import export
from callconsent.lifecycle.purge import purge
from callconsent.lifecycle.withdraw import Scope, withdraw
from tests.support.lifecycle_fixtures import NUMBER, T0, Store, make_config, make_store

OTHER = "+4587654321"
NOW = T0 + timedelta(days=5)
DIGITS = NUMBER.lstrip("+").encode()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = make_store(tmp_path)
    store.call("6000.1")  # documentation: kept on a withdrawal
    store.call("6000.2", purposes=("training",))  # consent only: deleted on a withdrawal
    store.call("6000.3", purposes=("training",), refused=True)  # a refusal: no recording
    store.call("6000.4", OTHER)
    return store


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path)


def _readable(store: Store) -> dict[str, str | None]:
    """Each call entry's caller number as the key store lets it be read (None: erased)."""
    keys = CallerKeys.beside(store.ledger_path)
    out: dict[str, str | None] = {}
    for line in iter_entries(store.ledger_path):
        entry = line.entry
        if entry and entry["type"] == "call":
            caller = callers.open_caller(entry["call"], keys.key)
            out[entry["call"]["uniqueid"]] = None if caller.erased else caller.number
    keys.close()
    return out


def _state_bytes(store: Store) -> bytes:
    """Every file beside the ledger (ledger, anchor, key store, index, audit log, ...) but
    the subject key, and every file of the recordings tree."""
    files = [p for p in store.ledger_path.parent.rglob("*") if p.is_file()]
    files += [p for p in store.root.rglob("*") if p.is_file()]
    return b"".join(p.read_bytes() for p in files if p.name != "subject.key")


def test_the_ledger_and_the_index_never_hold_the_number_in_clear(store: Store) -> None:
    with store.context(NOW) as ctx:
        ctx.index.update()
    assert DIGITS not in store.ledger_path.read_bytes()
    index = b"".join(p.read_bytes() for p in store.ledger_path.parent.glob("index.sqlite3*"))
    assert DIGITS not in index
    assert _readable(store)["6000.1"] == NUMBER


def test_a_lookup_finds_live_calls_whatever_the_spelling_of_the_number(store: Store) -> None:
    with store.context(NOW) as ctx:
        ctx.index.update()
        for spelled in (NUMBER, "+45 12 34 56 78", "004512345678"):
            found = query.find_calls(ctx.index, query.Selector(number=spelled))
            assert found == ["6000.1", "6000.2", "6000.3"], spelled


def test_erase_by_number_destroys_the_keys_and_the_chain_still_holds(
    store: Store, config: Config, tmp_path: Path
) -> None:
    before = store.ledger_path.read_bytes()
    with store.context(NOW) as ctx:
        report = erase(ctx, query.Selector(number=NUMBER), reason="Art 17 letter 12")
    assert report.keys_destroyed == 3
    assert store.ledger_path.read_bytes().startswith(before)  # appended to, never rewritten
    assert verify_chain(store.ledger_path, check_schema=True) == []
    assert _readable(store) == {"6000.1": None, "6000.2": None, "6000.3": None, "6000.4": OTHER}
    with store.context(NOW) as ctx:
        assert query.find_calls(ctx.index, query.Selector(number=NUMBER)) == []
        result = export(ctx, config, query.Selector(call_id="6000.3"), reason="r", out_dir=tmp_path)
    with zipfile.ZipFile(result.archive) as zf:
        shown = json.loads(zf.read("callers.json"))
    assert shown == {"6000.3": {"caller_number": "erased", "caller_name": "erased"}}
    [line] = [
        a for a in audit.read(store.ledger_path.parent / "audit.jsonl") if a["action"] == "erase"
    ]
    assert line["caller_keys_destroyed"] == 3 and DIGITS not in json.dumps(line).encode()
    assert DIGITS not in _state_bytes(store)


def test_export_by_number_decrypts_the_live_callers_on_the_fly(
    store: Store, config: Config, tmp_path: Path
) -> None:
    with store.context(NOW) as ctx:
        result = export(ctx, config, query.Selector(number=NUMBER), reason="r", out_dir=tmp_path)
    with zipfile.ZipFile(result.archive) as zf:
        shown = json.loads(zf.read("callers.json"))
        lines = zf.read("ledger-entries.jsonl")
    assert result.call_ids == ["6000.1", "6000.2", "6000.3"]
    assert {c["caller_number"] for c in shown.values()} == {NUMBER}
    assert DIGITS not in lines  # the ledger lines go out byte for byte, sealed


def test_withdrawal_forgets_the_caller_of_a_deleted_recording_only(store: Store) -> None:
    with store.context(NOW) as ctx:
        report = withdraw(ctx, Scope(number=NUMBER), reason="letter")
    assert {(i.call_id, i.action) for i in report.items} == {
        ("6000.1", "not_consent_based"),
        ("6000.2", "deleted"),
    }
    assert report.keys_destroyed == 1
    readable = _readable(store)
    assert readable["6000.2"] is None
    assert readable["6000.1"] == NUMBER and readable["6000.3"] == NUMBER
    assert verify_chain(store.ledger_path) == []


def test_the_end_of_the_evidence_period_destroys_the_keys(store: Store) -> None:
    with store.context(T0 + timedelta(days=91)) as ctx:
        purge(ctx, dry_run=False)
    with store.context(T0 + timedelta(days=90 + 366)) as ctx:
        report = anonymise(ctx, claims_days=365)
    assert report.calls == 4
    assert set(_readable(store).values()) == {None}
    assert verify_chain(store.ledger_path, check_schema=True) == []
    [line] = [
        a
        for a in audit.read(store.ledger_path.parent / "audit.jsonl")
        if a["action"] == "anonymise"
    ]
    assert line["caller_keys_destroyed"] == 4
    assert DIGITS not in _state_bytes(store)
    assert OTHER.lstrip("+").encode() not in _state_bytes(store)


def test_an_old_ledger_with_numbers_in_clear_still_verifies_and_is_marked_anonymised(
    tmp_path: Path,
) -> None:
    store = make_store(tmp_path)
    store.sealed = False  # written before callers were sealed
    store.call("7000.1")
    assert DIGITS in store.ledger_path.read_bytes()
    with store.context(NOW) as ctx:
        ctx.index.update()
        assert query.find_calls(ctx.index, query.Selector(number="+45 1234 5678")) == ["7000.1"]
    with store.context(T0 + timedelta(days=91)) as ctx:
        purge(ctx, dry_run=False)
    with store.context(T0 + timedelta(days=90 + 366)) as ctx:
        assert anonymise(ctx, claims_days=365).calls == 1
        assert query.find_calls(ctx.index, query.Selector(number=NUMBER)) == []
    assert verify_chain(store.ledger_path, check_schema=True) == []
    index = b"".join(p.read_bytes() for p in store.ledger_path.parent.glob("index.sqlite3*"))
    assert DIGITS not in index


def test_a_rebuilt_index_finds_the_live_calls_by_number_and_not_the_forgotten_ones(
    store: Store,
) -> None:
    with store.context(NOW) as ctx:
        withdraw(ctx, Scope(number=NUMBER), reason="letter")  # forgets 6000.2
        ctx.index.rebuild()
        assert query.find_calls(ctx.index, query.Selector(number=NUMBER)) == ["6000.1", "6000.3"]
        assert query.find_calls(ctx.index, query.Selector(number=OTHER)) == ["6000.4"]


def test_a_number_signalled_with_spaces_is_withdrawn_by_the_routes_filtered_number(
    tmp_path: Path,
) -> None:
    store = make_store(tmp_path)
    store.call("6100.1", "+45 12 34-56 78", purposes=("training",))  # raw, as the caller sent it
    with store.context(NOW) as ctx:
        report = withdraw(ctx, Scope(number="+4512345678"), reason="route")  # FILTER(0-9+)
    assert [(i.call_id, i.action) for i in report.items] == [("6100.1", "deleted")]


def test_an_index_from_before_subjects_is_emptied_and_read_again(store: Store) -> None:
    old = store.ledger_path.parent / "index.sqlite3"
    db = sqlite3.connect(old)
    db.execute("CREATE TABLE calls (uniqueid TEXT PRIMARY KEY, caller_number TEXT)")
    db.execute("INSERT INTO calls VALUES ('6000.1', ?)", (NUMBER,))
    db.commit()
    db.close()
    with store.context(NOW) as ctx:
        ctx.index.update()
        assert query.find_calls(ctx.index, query.Selector(number=NUMBER)) == [
            "6000.1",
            "6000.2",
            "6000.3",
        ]
    index = b"".join(p.read_bytes() for p in store.ledger_path.parent.glob("index.sqlite3*"))
    assert DIGITS not in index


def test_erase_deletes_the_kept_exports_of_the_calls_and_nothing_elsewhere(
    store: Store, config: Config, tmp_path: Path
) -> None:
    kept = store.ledger_path.parent / "exports"
    elsewhere = tmp_path / "handed-out"
    with store.context(NOW) as ctx:
        mine = export(ctx, config, query.Selector(number=NUMBER), reason="r", out_dir=kept)
        other = export(ctx, config, query.Selector(number=OTHER), reason="r", out_dir=kept)
        copy = export(ctx, config, query.Selector(number=NUMBER), reason="r", out_dir=elsewhere)
    with store.context(NOW) as ctx:
        report = erase(ctx, query.Selector(number=NUMBER), reason="Art 17")
    assert report.exports_deleted == [mine.archive.name]
    assert not mine.archive.exists()
    assert other.archive.exists() and copy.archive.exists()
    [line] = [
        a for a in audit.read(store.ledger_path.parent / "audit.jsonl") if a["action"] == "erase"
    ]
    assert line["exports_deleted"] == [mine.archive.name]
    assert DIGITS not in b"".join(p.read_bytes() for p in kept.iterdir())


def test_a_withdrawal_that_deletes_a_recording_deletes_the_kept_exports_of_that_call(
    store: Store, config: Config
) -> None:
    kept = store.ledger_path.parent / "exports"
    with store.context(NOW) as ctx:
        training = export(ctx, config, query.Selector(call_id="6000.2"), reason="r", out_dir=kept)
        documentation = export(
            ctx, config, query.Selector(call_id="6000.1"), reason="r", out_dir=kept
        )
    with store.context(NOW) as ctx:
        report = withdraw(ctx, Scope(number=NUMBER), reason="letter")  # deletes 6000.2 only
    assert report.exports_deleted == [training.archive.name]
    assert not training.archive.exists()
    assert documentation.archive.exists()  # its recording is kept for documentation
    [line] = [
        a for a in audit.read(store.ledger_path.parent / "audit.jsonl") if a["action"] == "withdraw"
    ]
    assert line["exports_deleted"] == [training.archive.name]


def test_the_end_of_the_evidence_period_deletes_the_kept_exports_of_the_calls_it_forgets(
    store: Store, config: Config
) -> None:
    kept = store.ledger_path.parent / "exports"
    with store.context(NOW) as ctx:
        refusal = export(ctx, config, query.Selector(call_id="6000.3"), reason="r", out_dir=kept)
    with store.context(T0 + timedelta(days=91)) as ctx:
        purge(ctx, dry_run=False)  # the recordings go at the end of their retention
    with store.context(T0 + timedelta(days=90 + 366)) as ctx:
        report = anonymise(ctx, claims_days=365)
    assert refusal.archive.name in report.exports_deleted
    assert not refusal.archive.exists()
    assert DIGITS not in b"".join(p.read_bytes() for p in kept.iterdir())
