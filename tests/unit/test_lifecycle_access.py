"""Subject access export, identify and erasure (R27, R29, R37)."""

from __future__ import annotations

import json
import zipfile
from datetime import date, timedelta
from pathlib import Path

import pytest

from callconsent.config import Config
from callconsent.evidence import sidecar
from callconsent.evidence.ledger import iter_entries, verify_chain
from callconsent.evidence.paths import recording_paths
from callconsent.lifecycle import audit
from callconsent.lifecycle.erase import EraseError, erase
from callconsent.lifecycle.export import export
from callconsent.lifecycle.hold import set_hold
from callconsent.lifecycle.identify import identify
from callconsent.lifecycle.query import Selector
from callconsent.sensitive import rules
from tests.support.lifecycle_fixtures import NUMBER, T0, Store, make_config, make_store

OTHER = "+4587654321"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = make_store(tmp_path)
    store.call("3000.1", when=T0)
    store.call("3000.2", when=T0 + timedelta(days=1), purposes=("training",), refused=True)
    store.call(
        "3000.3", when=T0 + timedelta(days=2), purposes=("documentation", "training"), agent="a17"
    )
    store.call("3000.4", OTHER, when=T0 + timedelta(days=2))
    return store


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path)


def test_export_for_a_number_with_three_calls_one_refused(
    store: Store, config: Config, tmp_path: Path
) -> None:
    with store.context(T0 + timedelta(days=5)) as ctx:
        result = export(
            ctx,
            config,
            Selector(number=NUMBER),
            reason="Art 15 request 2026-17",
            out_dir=tmp_path / "exports",
        )
    assert result.call_ids == ["3000.1", "3000.2", "3000.3"]
    with zipfile.ZipFile(result.archive) as zf:
        names = set(zf.namelist())
        audio_files = sorted(n for n in names if n.startswith("audio/"))
        assert audio_files == ["audio/3000.1.wav", "audio/3000.3.wav"]
        lines = [json.loads(x) for x in zf.read("ledger-entries.jsonl").splitlines()]
        sheet = zf.read("cover-sheet.md").decode()
    calls = [e for e in lines if e["type"] == "call"]
    assert [e["call"]["uniqueid"] for e in calls] == ["3000.1", "3000.2", "3000.3"]
    assert calls[1]["status"] == "refused"
    assert {"cover-sheet.md", "manifest.json", "sidecars/3000.1.json"} <= names
    assert "## Dansk" in sheet and "## English" in sheet and "Datatilsynet" in sheet
    assert "documentation" in sheet and "6(1)(f)" in sheet and "90" in sheet
    assert OTHER not in json.dumps(lines)
    [logged] = [
        e.entry for e in iter_entries(store.ledger_path) if e.entry and e.entry["type"] == "export"
    ]
    assert logged["export_id"] == result.export_id and logged["actor"] == "dpo-test"
    assert logged["reason"] == "Art 15 request 2026-17"
    assert logged["calls"] == ["3000.1", "3000.2", "3000.3"]
    assert NUMBER not in json.dumps(logged)
    assert {f["name"] for f in logged["files"]} >= {"audio/3000.1.wav", "cover-sheet.md"}
    [line] = [
        a for a in audit.read(store.ledger_path.parent / "audit.jsonl") if a["action"] == "export"
    ]
    assert line["export_id"] == result.export_id and NUMBER not in json.dumps(line)
    assert verify_chain(store.ledger_path, check_schema=True) == []
    assert result.archive.stat().st_mode & 0o077 == 0


def test_exported_ledger_lines_are_the_original_bytes(
    store: Store, config: Config, tmp_path: Path
) -> None:
    with store.context(T0 + timedelta(days=5)) as ctx:
        result = export(ctx, config, Selector(call_id="3000.1"), reason="r", out_dir=tmp_path)
    with zipfile.ZipFile(result.archive) as zf:
        exported = zf.read("ledger-entries.jsonl").splitlines()
    originals = {e.raw for e in iter_entries(store.ledger_path)}
    assert exported and all(line in originals for line in exported)


def test_identify_maps_an_exported_file_to_its_recording_and_export(
    store: Store, config: Config, tmp_path: Path
) -> None:
    with store.context(T0 + timedelta(days=5), actor="alice") as ctx:
        result = export(ctx, config, Selector(number=NUMBER), reason="r", out_dir=tmp_path)
    leaked = tmp_path / "leaked.wav"
    with zipfile.ZipFile(result.archive) as zf:
        leaked.write_bytes(zf.read("audio/3000.3.wav"))
    with store.context(T0 + timedelta(days=9)) as ctx:
        found = identify(ctx, leaked)
    assert [r["call_id"] for r in found.recordings] == ["3000.3"]
    assert [(e["export_id"], e["actor"]) for e in found.exports] == [(result.export_id, "alice")]


def test_identify_reports_an_unknown_file_as_not_found(store: Store, tmp_path: Path) -> None:
    stranger = tmp_path / "x.wav"
    stranger.write_bytes(b"not ours")
    with store.context(T0) as ctx:
        assert not identify(ctx, stranger).found


def test_export_withholds_held_recordings_and_lists_them(
    store: Store, config: Config, tmp_path: Path
) -> None:
    with store.context(T0 + timedelta(days=5)) as ctx:
        set_hold(ctx, "3000.3", reason="litigation", case_ref="L-1", review_date=date(2026, 6, 1))
        result = export(ctx, config, Selector(number=NUMBER), reason="r", out_dir=tmp_path)
    assert result.audio_files == 1
    assert [w["call_id"] for w in result.withheld] == ["3000.3"]


def test_erase_keeps_a_held_recording_and_reports_its_reason(store: Store) -> None:
    with store.context(T0 + timedelta(days=5)) as ctx:
        set_hold(ctx, "3000.3", reason="litigation", case_ref="L-1", review_date=date(2026, 6, 1))
        report = erase(ctx, Selector(number=NUMBER), reason="Art 17 request")
    assert not report.complete
    assert [(h["call_id"], h["reason"]) for h in report.held] == [("3000.3", "litigation")]
    root = store.root
    assert sidecar.load(root / "2026/01/05/3000.1.json")["reason"] == "erased"
    assert not (root / "2026/01/05/3000.1.wav").exists()
    assert (root / "2026/01/07/3000.3.wav").exists()
    assert (root / "2026/01/07/3000.4.wav").exists()  # another subject
    deleted = [
        e.entry for e in iter_entries(store.ledger_path) if e.entry and e.entry["type"] == "deleted"
    ]
    assert [(e["call"]["uniqueid"], e["reason"]) for e in deleted] == [("3000.1", "erased")]
    assert "held" in report.summary() or "kept" in report.summary()


def test_erase_rerun_is_idempotent(store: Store) -> None:
    with store.context(T0 + timedelta(days=5)) as ctx:
        first = erase(ctx, Selector(call_id="3000.1"), reason="r")
        second = erase(ctx, Selector(call_id="3000.1"), reason="r")
    assert [o.action for o in first.outcomes] == ["deleted"]
    assert [o.action for o in second.outcomes] == ["already_deleted"]
    assert first.complete and second.complete


def test_erase_with_evidence_anonymises_the_calls(store: Store) -> None:
    with store.context(T0 + timedelta(days=5)) as ctx:
        report = erase(ctx, Selector(number=NUMBER), reason="r", anonymise_evidence=True)
        assert report.anonymised_seqs
        with pytest.raises(EraseError, match="no calls found for the given number"):
            erase(ctx, Selector(number=NUMBER), reason="r")  # the number is gone with them


def test_erase_needs_a_subject_or_call(store: Store) -> None:
    with store.context(T0) as ctx, pytest.raises(EraseError):
        erase(ctx, Selector(agent="a17"), reason="r")


def test_export_marks_recordings_flagged_sensitive_as_restricted(
    store: Store, config: Config, tmp_path: Path
) -> None:
    where = recording_paths(store.root, "3000.3", T0 + timedelta(days=2))
    flagged = rules.flag(sidecar.load(where), at=T0 + timedelta(days=3))
    assert flagged.outcome == "restricted" and flagged.doc is not None
    sidecar.write(where, flagged.doc)
    with store.context(T0 + timedelta(days=5)) as ctx:
        result = export(
            ctx,
            config,
            Selector(number=NUMBER),
            reason="Art 15 request",
            out_dir=tmp_path / "exports",
        )
    assert result.restricted == ["3000.3"]
    with zipfile.ZipFile(result.archive) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        exported = json.loads(zf.read("sidecars/3000.3.json"))
    assert manifest["restricted"] == ["3000.3"]
    assert exported["restricted"] is True and "flag:sensitive" in exported["tags"]
    assert "restricted (health/CPR data, flagged by the agent): 3000.3" in result.summary()
