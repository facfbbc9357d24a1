"""reconcile: after a crash every recording ends with a final sidecar, a tombstone or a report."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import pytest

from callconsent.evidence import sidecar
from callconsent.evidence.ledger import Ledger, iter_entries, verify_chain
from callconsent.evidence.paths import RecordingPaths, ensure_directory, recording_paths
from callconsent.evidence.wav import inspect, pcm_header
from callconsent.lifecycle.reconcile import ReconcileReport, reconcile
from callconsent.lifecycle.verify import verify
from callconsent.store import EvidenceStore
from tests.support.bridge import CALLER, call, outcome
from tests.support.cli import run

if TYPE_CHECKING:
    from callconsent.config import Config

T0 = datetime(2026, 11, 24, 12, tzinfo=UTC)
LATER = datetime.now(UTC) + timedelta(days=1)  # every file written by a test is settled by then
AUDIO = bytes(range(256)) * 40


def start(root: Path, uniqueid: str) -> RecordingPaths:
    paths = recording_paths(root, uniqueid, T0)
    ensure_directory(paths)
    sidecar.create(
        paths,
        sidecar.recording_document(
            paths,
            call={
                "uniqueid": uniqueid,
                "linkedid": uniqueid,
                "channel": "PJSIP/x-1",
                "route": "r",
                "caller_number": "+4512345678",
                "caller_name": "Test",
                "dialled_number": None,
            },
            started_at=T0,
            language="da",
            notices=[],
            purposes=[],
            delete_after=T0 + timedelta(days=90),
            tags=[],
            software={"name": "callconsent", "version": "0.1.0"},
            config_sha256="0" * 64,
        ),
    )
    return paths


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "rec"


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "ledger.jsonl")


def entries(ledger: Ledger) -> list[dict[str, Any]]:
    if not ledger.path.exists():
        return []
    return [e.entry for e in iter_entries(ledger.path) if e.entry is not None]


def summary(report: ReconcileReport) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    return (
        [(i.path.name, i.kind) for i in report.fixed],
        [(i.path.name, i.kind) for i in report.reported],
    )


def snapshot(*folders: Path) -> dict[str, bytes]:
    return {
        str(p): p.read_bytes()
        for f in folders
        if f.exists()
        for p in sorted(f.rglob("*"))
        if p.is_file()
    }


def test_stuck_recording_with_unfinalised_header_is_repaired_and_finalised(
    root: Path, ledger: Ledger
) -> None:
    paths = start(root, "1.1")
    paths.audio.write_bytes(pcm_header(None) + AUDIO)  # Asterisk died while recording
    report = reconcile(root, ledger, now=LATER, dry_run=False)
    assert summary(report) == ([("1.1.wav", "header_repaired"), ("1.1.json", "finalised")], [])
    doc = sidecar.load(paths)
    assert doc["state"] == "final" and doc["recording"]["has_audio"] is True
    assert doc["recording"]["sha256"] == hashlib.sha256(paths.audio.read_bytes()).hexdigest()
    assert inspect(paths.audio).data_bytes == len(AUDIO)
    [entry] = entries(ledger)
    assert entry["type"] == "recording_final" and entry["header_repaired"] is True
    assert entry["recording"] == doc["recording"] and entry["source"] == "reconcile"
    assert verify(root, ledger.path).ok


def test_stuck_recording_with_closed_header_is_finalised(root: Path, ledger: Ledger) -> None:
    """The app stopped before it finalised, but MixMonitor closed the file normally."""
    paths = start(root, "1.1")
    paths.audio.write_bytes(pcm_header(len(AUDIO)) + AUDIO)
    report = reconcile(root, ledger, now=LATER, dry_run=False)
    assert summary(report) == ([("1.1.json", "finalised")], [])
    assert "header_repaired" not in entries(ledger)[0]


@pytest.mark.parametrize("closed", [True, False])
def test_header_only_wav_is_tombstoned_as_no_audio_with_a_ledger_entry(
    root: Path, ledger: Ledger, closed: bool
) -> None:
    paths = start(root, "1.1")
    paths.audio.write_bytes(pcm_header(0 if closed else None))
    report = reconcile(root, ledger, now=LATER, dry_run=False)
    assert summary(report) == ([("1.1.wav", "tombstoned_no_audio")], [])
    assert not paths.audio.exists()
    tomb = sidecar.load(paths)
    assert tomb["state"] == "tombstone" and tomb["reason"] == "no_audio"
    [entry] = entries(ledger)
    assert (entry["type"], entry["reason"], entry["call"]) == (
        "deleted",
        "no_audio",
        {"uniqueid": "1.1"},
    )


def test_final_sidecar_without_audio_data_is_tombstoned(root: Path, ledger: Ledger) -> None:
    paths = start(root, "1.1")
    paths.audio.write_bytes(pcm_header(0))
    sidecar.finalise(paths, ended_at=T0)  # the app crashed before it tombstoned
    assert summary(reconcile(root, ledger, now=LATER, dry_run=False)) == (
        [("1.1.wav", "tombstoned_no_audio")],
        [],
    )
    assert not paths.audio.exists()


def test_header_only_wav_without_sidecar_is_tombstoned(root: Path, ledger: Ledger) -> None:
    paths = recording_paths(root, "1.1", T0)
    ensure_directory(paths)
    paths.audio.write_bytes(pcm_header(0))
    assert summary(reconcile(root, ledger, now=LATER, dry_run=False)) == (
        [("1.1.wav", "tombstoned_no_audio")],
        [],
    )
    assert sidecar.load(paths)["recording"]["sha256"] == hashlib.sha256(pcm_header(0)).hexdigest()


def test_recording_without_sidecar_is_reported_and_never_deleted(
    root: Path, ledger: Ledger
) -> None:
    paths = recording_paths(root, "1.1", T0)
    ensure_directory(paths)
    paths.audio.write_bytes(pcm_header(None) + AUDIO)
    report = reconcile(root, ledger, now=LATER, dry_run=False)
    assert summary(report) == ([("1.1.wav", "header_repaired")], [("1.1.wav", "orphan_audio")])
    assert paths.audio.read_bytes()[44:] == AUDIO and inspect(paths.audio).finalised
    assert not paths.sidecar.exists()
    assert [e["type"] for e in entries(ledger)] == ["header_repaired"]


def lost_audio(root: Path, uniqueid: str) -> RecordingPaths:
    """A final sidecar whose audio file has gone since."""
    paths = start(root, uniqueid)
    paths.audio.write_bytes(pcm_header(len(AUDIO)) + AUDIO)
    sidecar.finalise(paths, ended_at=T0)
    paths.audio.unlink()
    return paths


def test_final_sidecar_whose_recording_is_missing_is_reported(root: Path, ledger: Ledger) -> None:
    lost_audio(root, "1.1")
    report = reconcile(root, ledger, now=LATER, dry_run=False)
    assert summary(report) == ([], [("1.1.json", "recording_missing")])
    assert entries(ledger) == []


def test_recording_sidecar_whose_recording_never_started_is_tombstoned(
    root: Path, ledger: Ledger
) -> None:
    """The app died (or MixMonitor could not open the file) between the sidecar and the start
    of MixMonitor: nothing was recorded, so the sidecar becomes a tombstone, as at hangup."""
    paths = start(root, "1.1")
    report = reconcile(root, ledger, now=LATER, dry_run=False)
    assert summary(report) == ([("1.1.wav", "tombstoned_never_started")], [])
    doc = sidecar.load(paths)
    assert (doc["state"], doc["reason"]) == ("tombstone", "no_audio")
    assert [(e["type"], e["reason"]) for e in entries(ledger)] == [("deleted", "no_audio")]


def test_malformed_sidecar_is_reported_with_its_path_and_never_deleted(
    root: Path, ledger: Ledger
) -> None:
    paths = start(root, "1.1")
    paths.audio.write_bytes(pcm_header(0))
    paths.sidecar.write_text('{"schema_version": 1, "state": "recor')
    report = reconcile(root, ledger, now=LATER, dry_run=False)
    assert [(i.path, i.kind) for i in report.reported] == [(paths.sidecar, "malformed_sidecar")]
    assert paths.sidecar.exists() and paths.audio.exists() and entries(ledger) == []


def test_unreadable_wav_is_reported_and_left_alone(root: Path, ledger: Ledger) -> None:
    paths = start(root, "1.1")
    paths.audio.write_bytes(b"not a wav at all")
    assert summary(reconcile(root, ledger, now=LATER, dry_run=False)) == (
        [],
        [("1.1.wav", "unreadable_audio")],
    )
    assert paths.audio.read_bytes() == b"not a wav at all"


def test_tombstone_with_leftover_audio_completes_the_deletion(root: Path, ledger: Ledger) -> None:
    paths = start(root, "1.1")
    paths.audio.write_bytes(pcm_header(len(AUDIO)) + AUDIO)
    sidecar.finalise(paths, ended_at=T0)
    tomb = sidecar.prepare_tombstone(paths, reason="retention", at=T0 + timedelta(days=91))
    (paths.sidecar).write_text(json.dumps(tomb))  # crashed after the tombstone, before unlink
    report = reconcile(root, ledger, now=LATER, dry_run=False)
    assert summary(report) == ([("1.1.wav", "deletion_completed")], [])
    assert not paths.audio.exists()
    assert [(e["type"], e["reason"]) for e in entries(ledger)] == [("deleted", "retention")]


def test_dry_run_changes_nothing_and_reports_what_it_would_do(root: Path, ledger: Ledger) -> None:
    start(root, "1.1").audio.write_bytes(pcm_header(None) + AUDIO)
    start(root, "1.2").audio.write_bytes(pcm_header(0))
    before = snapshot(root)
    report = reconcile(root, ledger, now=LATER, dry_run=True)
    assert report.dry_run and summary(report) == (
        [
            ("1.1.wav", "header_repaired"),
            ("1.1.json", "finalised"),
            ("1.2.wav", "tombstoned_no_audio"),
        ],
        [],
    )
    assert snapshot(root) == before and not ledger.path.exists()


def test_reconcile_is_idempotent(root: Path, ledger: Ledger) -> None:
    start(root, "1.1").audio.write_bytes(pcm_header(None) + AUDIO)
    start(root, "1.2").audio.write_bytes(pcm_header(0))
    lost_audio(root, "1.3")
    first = reconcile(root, ledger, now=LATER, dry_run=False)
    assert len(first.fixed) == 3
    ledger_after_first, files_after_first = ledger.path.read_bytes(), snapshot(root)
    second = reconcile(root, ledger, now=LATER, dry_run=False)
    assert summary(second) == ([], [("1.3.json", "recording_missing")])
    assert ledger.path.read_bytes() == ledger_after_first and snapshot(root) == files_after_first


def test_interrupted_run_can_be_rerun_without_losing_a_ledger_entry(
    root: Path, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = start(root, "1.1")
    paths.audio.write_bytes(pcm_header(None) + AUDIO)

    def killed(*_: object) -> None:
        raise OSError("killed")

    with monkeypatch.context() as m:
        m.setattr(os, "replace", killed)  # dies after the ledger entry, before the sidecar
        first = reconcile(root, ledger, now=LATER, dry_run=False)
    assert ("1.1.wav", "fix_failed") in summary(first)[1]
    assert sidecar.load(paths)["state"] == "recording"
    second = reconcile(root, ledger, now=LATER, dry_run=False)
    assert summary(second) == ([("1.1.json", "finalised")], [])
    assert [e["type"] for e in entries(ledger)] == ["recording_final", "recording_final"]
    assert verify_chain(ledger.path) == [] and verify(root, ledger.path).ok


def test_files_of_calls_in_progress_are_left_alone(root: Path, ledger: Ledger) -> None:
    paths = start(root, "1.1")
    paths.audio.write_bytes(pcm_header(None))  # in a queue: MixMonitor b writes nothing yet
    now = datetime.now(UTC)
    report = reconcile(root, ledger, now=now, dry_run=False)
    assert report.in_progress == 1 and summary(report) == ([], [])
    report = reconcile(root, ledger, now=LATER, dry_run=False, is_active={"1.1"}.__contains__)
    assert report.in_progress == 1 and paths.audio.exists()
    report = reconcile(
        root,
        ledger,
        now=now,
        dry_run=False,
        stale_after=timedelta(0),
        is_active=set[str]().__contains__,
    )  # Asterisk known to be down
    assert summary(report) == ([("1.1.wav", "tombstoned_no_audio")], [])


def test_stale_temp_files_of_interrupted_writes_are_removed(root: Path, ledger: Ledger) -> None:
    paths = start(root, "1.1")
    paths.audio.write_bytes(pcm_header(len(AUDIO)) + AUDIO)
    sidecar.finalise(paths, ended_at=T0)
    temp = paths.directory / ".1.1.json.k2j_3x.tmp"
    temp.write_text('{"half": ')
    foreign = paths.directory / "notes.txt"
    foreign.write_text("not ours")
    audio_like = paths.directory / ".1.1.wav.abc123.tmp"  # never ours to delete
    audio_like.write_bytes(pcm_header(0))
    assert reconcile(root, ledger, now=datetime.now(UTC), dry_run=False).fixed == []
    report = reconcile(root, ledger, now=LATER, dry_run=False)
    assert summary(report) == ([(temp.name, "temp_removed")], [])
    assert not temp.exists() and foreign.exists() and audio_like.exists()


def test_reconcile_command_prints_the_report_and_exits_1_when_something_is_left(
    root: Path, ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    lost_audio(root, "1.1")  # final sidecar without recording: reported
    config = cast(
        "Config",
        SimpleNamespace(
            path=root / "callconsent.yaml",
            storage=SimpleNamespace(
                recordings_dir=root, ledger_path=ledger.path, anchor_path=None, spool_dir=None
            ),
            encryption=None,
        ),
    )
    assert run(config, "reconcile", "--dry-run", "--json", "--stale-after-minutes", "0") == 1
    out = json.loads(capsys.readouterr().out)
    assert out["dry_run"] is True and [r["kind"] for r in out["reported"]] == ["recording_missing"]
    assert run(config, "reconcile", "--stale-after-minutes", "0") == 1
    assert capsys.readouterr().out.splitlines()[-1].startswith("reconcile: 1 checked")


async def _waiting_for_agent(tmp_path: Path, *purposes: str) -> RecordingPaths:
    """A sidecar as the app leaves it when it crashes while the call waits for the answering
    agent's consent (training pending in agent_purposes)."""
    store = EvidenceStore(
        recordings_dir=tmp_path / "rec", ledger_path=tmp_path / "app.jsonl", config_sha256="d" * 64
    )
    (tmp_path / "rec").mkdir()
    audio = Path(await store.prepare_recording(outcome(*purposes), call(), T0))
    found = recording_paths(tmp_path / "rec", CALLER, T0)
    assert found.audio == audio
    assert sidecar.load(found)["agent_purposes"][0]["agent_consent"]["status"] == "pending"
    return found


async def test_a_decision_the_agent_never_gave_is_refused_and_documentation_finalised(
    tmp_path: Path, root: Path, ledger: Ledger
) -> None:
    paths = await _waiting_for_agent(tmp_path, "documentation", "training")
    paths.audio.write_bytes(pcm_header(len(AUDIO)) + AUDIO)
    report = reconcile(root, ledger, now=LATER, dry_run=False)
    assert summary(report)[0] == [
        (paths.sidecar.name, "agent_unknown"),
        (paths.sidecar.name, "finalised"),
    ]
    doc = sidecar.load(paths)
    assert doc["state"] == "final" and [p["purpose"] for p in doc["purposes"]] == ["documentation"]
    (training,) = doc["agent_purposes"]
    assert training["agent_consent"]["status"] == "refused"
    assert training["agent_consent"]["reason"] == "agent_unknown"
    decision, final = entries(ledger)
    assert (decision["type"], decision["status"], decision["purposes"]) == (
        "agent_decision",
        "refused",
        ["training"],
    )
    assert final["type"] == "recording_final"
    assert summary(reconcile(root, ledger, now=LATER, dry_run=False)) == ([], [])  # idempotent


async def test_a_training_only_call_whose_agent_never_decided_is_tombstoned(
    tmp_path: Path, root: Path, ledger: Ledger
) -> None:
    paths = await _waiting_for_agent(tmp_path, "training")
    dry = reconcile(root, ledger, now=LATER, dry_run=True)
    assert summary(dry)[0] == [(paths.sidecar.name, "agent_unknown")] and entries(ledger) == []
    report = reconcile(root, ledger, now=LATER, dry_run=False)
    assert (paths.audio.name, "tombstoned_agent_unknown") in summary(report)[0]
    tomb = sidecar.load(paths)
    assert (tomb["state"], tomb["reason"]) == ("tombstone", "agent_unknown")
    assert [e["type"] for e in entries(ledger)] == ["agent_decision", "deleted"]
