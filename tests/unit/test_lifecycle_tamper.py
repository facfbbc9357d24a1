"""Evidence that never lies (issue 12): export and erase under tampered ledgers and files.

A chain-valid ledger line can still lie, and a file in the tree can be a symlink: export and
erase act only on a call's own recording whose sha256 the evidence confirms."""

from __future__ import annotations

import json
import zipfile
from datetime import date, timedelta
from pathlib import Path

import pytest

from callconsent.config import Config
from callconsent.evidence import sidecar
from callconsent.evidence.ledger import verify_chain
from callconsent.evidence.wav import pcm_header
from callconsent.lifecycle import query
from callconsent.lifecycle.erase import EraseError, erase
from callconsent.lifecycle.export import ExportError, export
from callconsent.lifecycle.hold import set_hold
from callconsent.lifecycle.purge import purge
from callconsent.lifecycle.query import Selector
from callconsent.lifecycle.withdraw import Scope, withdraw
from tests.support.lifecycle_fixtures import NUMBER, T0, Store, make_config, make_store
from tests.support.tamper import forged_call, symlink_audio

OTHER = "+4587654321"
ATTACKER = "+4511112222"
NOW = T0 + timedelta(days=5)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = make_store(tmp_path)
    store.call("3000.1", when=T0)
    store.call("3000.4", OTHER, when=T0)
    return store


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path)


def _audio(store: Store, uniqueid: str) -> Path:
    return store.root / "2026/01/05" / f"{uniqueid}.wav"


def test_export_never_hands_out_another_calls_audio_named_by_a_ledger_pointer(
    store: Store, config: Config, tmp_path: Path
) -> None:
    forged_call(store.ledger_path, "3000.9", number=ATTACKER, recording="2026/01/05/3000.4.wav")
    assert verify_chain(store.ledger_path) == []  # the chain is intact: only the pointer lies
    with store.context(NOW) as ctx:
        result = export(ctx, config, Selector(number=ATTACKER), reason="r", out_dir=tmp_path)
    with zipfile.ZipFile(result.archive) as zf:
        names = zf.namelist()
    assert result.call_ids == ["3000.9"]
    assert result.audio_files == 0 and not [n for n in names if n.startswith(("audio/", "sid"))]
    assert any("another call's file" in p for p in result.problems)


def test_erase_never_deletes_another_calls_audio_named_by_a_ledger_pointer(store: Store) -> None:
    forged_call(store.ledger_path, "3000.9", number=ATTACKER, recording="2026/01/05/3000.4.wav")
    with store.context(NOW) as ctx:
        report = erase(ctx, Selector(number=ATTACKER), reason="Art 17")
    assert [o.action for o in report.outcomes] == ["skipped"]
    assert "another call's file" in report.outcomes[0].detail
    assert not report.complete
    assert _audio(store, "3000.4").exists()
    assert sidecar.load(store.root / "2026/01/05/3000.4.json")["state"] == "final"


def test_export_skips_a_symlinked_wav_and_reports_it(
    store: Store, config: Config, tmp_path: Path
) -> None:
    symlink_audio(_audio(store, "3000.1"), _audio(store, "3000.4"))
    with store.context(NOW) as ctx:
        result = export(ctx, config, Selector(number=NUMBER), reason="r", out_dir=tmp_path)
    with zipfile.ZipFile(result.archive) as zf:
        assert "audio/3000.1.wav" not in zf.namelist()
    assert result.audio_files == 0
    assert any("symlink" in p for p in result.problems)


def test_erase_skips_a_symlinked_wav_and_leaves_both_files(store: Store) -> None:
    symlink_audio(_audio(store, "3000.1"), _audio(store, "3000.4"))
    with store.context(NOW) as ctx:
        report = erase(ctx, Selector(number=NUMBER), reason="Art 17")
    assert [(o.action, "symlink" in o.detail) for o in report.outcomes] == [("skipped", True)]
    assert _audio(store, "3000.1").is_symlink() and _audio(store, "3000.4").is_file()


def test_export_and_erase_skip_audio_whose_sha256_is_not_the_evidences(
    store: Store, config: Config, tmp_path: Path
) -> None:
    swapped = b"someone else entirely" * 50
    _audio(store, "3000.1").write_bytes(pcm_header(len(swapped)) + swapped)
    with store.context(NOW) as ctx:
        result = export(ctx, config, Selector(number=NUMBER), reason="r", out_dir=tmp_path)
        report = erase(ctx, Selector(number=NUMBER), reason="Art 17")
    assert result.audio_files == 0 and any("sha256" in p for p in result.problems)
    assert [o.action for o in report.outcomes] == ["skipped"]
    assert "sha256" in report.outcomes[0].detail
    assert _audio(store, "3000.1").exists()


def test_erase_of_a_recording_without_sidecar_needs_the_ledger_hash(store: Store) -> None:
    """The sidecar is gone: the ledger's recording_final hash still proves whose audio it is."""
    (store.root / "2026/01/05/3000.1.json").unlink()
    with store.context(NOW) as ctx:
        report = erase(ctx, Selector(call_id="3000.1"), reason="Art 17")
    assert [o.action for o in report.outcomes] == ["deleted"]
    assert not _audio(store, "3000.1").exists()


def test_untampered_export_and_erase_still_act(
    store: Store, config: Config, tmp_path: Path
) -> None:
    with store.context(NOW) as ctx:
        result = export(ctx, config, Selector(number=NUMBER), reason="r", out_dir=tmp_path)
        report = erase(ctx, Selector(number=NUMBER), reason="Art 17")
    assert result.audio_files == 1 and result.problems == []
    assert [o.action for o in report.outcomes] == ["deleted"] and report.complete


@pytest.mark.parametrize("bad", ["../../etc/passwd", "3000.1/../../x", "..", "a b", ""])
def test_an_unsafe_call_id_in_a_chained_line_never_names_a_path_or_zip_member(
    store: Store, config: Config, tmp_path: Path, bad: str
) -> None:
    forged_call(store.ledger_path, bad, number=NUMBER, recording="2026/01/05/3000.4.wav")
    with store.context(NOW) as ctx:
        result = export(ctx, config, Selector(number=NUMBER), reason="r", out_dir=tmp_path)
        report = erase(ctx, Selector(number=NUMBER), reason="Art 17")
    with zipfile.ZipFile(result.archive) as zf:
        assert all(".." not in n and " " not in n for n in zf.namelist())
    assert result.call_ids == ["3000.1"] and [o.call_id for o in report.outcomes] == ["3000.1"]
    assert _audio(store, "3000.4").exists()


@pytest.mark.parametrize("bad", ["../3000.1", "3000.1/..", "abc"])
def test_a_call_id_not_in_asterisk_format_is_refused_with_a_clear_error(
    store: Store, config: Config, tmp_path: Path, bad: str
) -> None:
    with store.context(NOW) as ctx:
        with pytest.raises(ExportError, match="not an Asterisk uniqueid"):
            export(ctx, config, Selector(call_id=bad), reason="r", out_dir=tmp_path)
        with pytest.raises(EraseError, match="not an Asterisk uniqueid"):
            erase(ctx, Selector(call_id=bad), reason="r")


BAD_LINES = {
    "a dict where a string belongs": lambda e: e.update(at={"x": 1}),
    "a dict as the call id": lambda e: e["call"].update(uniqueid={"u": "3000.1"}),
    "a list as the caller number": lambda e: e["call"].update(caller_number=["+45"]),
    "purposes as a string": lambda e: e.update(purposes="documentation"),
    "a huge retention": lambda e: e["purposes"][0].update(retention_days=10**30),
    "the call object missing": lambda e: e.pop("call"),
    "a recording pointer that is a number": lambda e: e.update(recording=7),
}


@pytest.mark.parametrize("edit", BAD_LINES.values(), ids=BAD_LINES.keys())
def test_a_chain_valid_line_of_the_wrong_shape_is_reported_and_skipped_never_fatal(
    store: Store, config: Config, tmp_path: Path, edit: object
) -> None:
    forged_call(store.ledger_path, "3000.8", number=ATTACKER, recording=None, edit=edit)  # type: ignore[arg-type]
    store.call("3000.5", when=T0)  # a good line after the bad one is still indexed
    assert verify_chain(store.ledger_path) == []
    with store.context(NOW) as ctx:
        ctx.index.update()
        [problem] = ctx.index.problems()
        hold = set_hold(ctx, "3000.5", reason="case", case_ref="C-1", review_date=date(2027, 1, 1))
        result = export(ctx, config, Selector(number=NUMBER), reason="r", out_dir=tmp_path)
    with store.context(T0 + timedelta(days=200)) as ctx:
        report = purge(ctx, dry_run=False)
    assert problem.line_no == 5 and "malformed ledger line" in problem.detail
    assert hold.uniqueid == "3000.5"
    assert result.call_ids == ["3000.1", "3000.5"] and result.audio_files == 1  # 3000.5 held
    assert report.counts == {"deleted": 2, "held": 1}
    assert any(":5: malformed ledger line" in p for p in report.problems)


def test_a_sidecar_with_a_field_of_the_wrong_type_is_reported_and_its_day_still_indexed(
    store: Store,
) -> None:
    path = store.root / "2026/01/05/3000.4.json"
    doc = json.loads(path.read_text())
    doc["call"]["caller_number"] = {"n": OTHER}
    path.write_text(json.dumps(doc))
    with store.context(NOW) as ctx:
        ctx.index.update()
        problems = ctx.index.problems()
        known = query.recording(ctx.index, "3000.1")
    assert [p.path.name for p in problems] == ["3000.4.json"]
    assert known is not None and known.state == "final"


def test_a_forged_line_claiming_another_subjects_call_hands_out_and_erases_nothing_of_it(
    store: Store, config: Config, tmp_path: Path
) -> None:
    """A chain-valid copy of 3000.4's call line with the attacker's number: the sidecar and the
    genuine line still name the other caller, so the call is contested and left alone."""
    forged_call(store.ledger_path, "3000.4", number=ATTACKER, recording="2026/01/05/3000.4.wav")
    with store.context(NOW) as ctx:
        result = export(ctx, config, Selector(number=ATTACKER), reason="r", out_dir=tmp_path)
        report = erase(ctx, Selector(number=ATTACKER), reason="Art 17")
    with zipfile.ZipFile(result.archive) as zf:
        assert OTHER.encode() not in zf.read("ledger-entries.jsonl")
        assert not [n for n in zf.namelist() if "3000.4" in n]
    assert result.call_ids == [] and any("more than one caller" in p for p in result.problems)
    assert report.outcomes == [] and not report.complete
    assert _audio(store, "3000.4").exists()


def test_withdraw_never_deletes_another_subjects_recording_named_by_a_ledger_pointer(
    store: Store,
) -> None:
    store.call("3000.6", OTHER, when=T0, purposes=("training",))
    forged_call(store.ledger_path, "3000.9", number=ATTACKER, recording="2026/01/05/3000.6.wav")
    with store.context(NOW) as ctx:
        report = withdraw(ctx, Scope(number=ATTACKER), reason="letter")
    assert [(i.call_id, i.action) for i in report.items] == [("3000.9", "skipped")]
    assert "another call's file" in report.items[0].detail
    assert _audio(store, "3000.6").exists()
