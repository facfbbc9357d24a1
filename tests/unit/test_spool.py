"""The private spool of encrypted recordings (R32, R33): MixMonitor writes the clear WAV to
``storage.spool_dir``, the app encrypts it into the recordings tree when the recording ends and
deletes the spooled file, ``reconcile`` finishes what a crash left, and check-config and serve
refuse a spool that others can read."""

from __future__ import annotations

import asyncio
import io
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml

from callconsent.cli.main import main
from callconsent.config import ConfigError, load_config
from callconsent.consent import CallOutcome, NoticeEvidence, Prompt, PurposeOutcome
from callconsent.evidence import paths as evidence_paths
from callconsent.evidence import sidecar
from callconsent.evidence.at_rest import AtRest, file_is_encrypted
from callconsent.evidence.crypto import decrypt_stream
from callconsent.evidence.documents import CallInfo
from callconsent.evidence.keystore import KeyStore, keys_dir
from callconsent.evidence.ledger import Ledger
from callconsent.lifecycle.reconcile import ReconcileReport, reconcile
from callconsent.lifecycle.verify import verify
from callconsent.store import EvidenceStore
from tests.support.lifecycle_fixtures import NUMBER, T0, make_store
from tests.support.stasis_fakes import pcm_wav, write_audio

REPO = Path(__file__).resolve().parents[2]
KEK = bytes(range(32))
ENV = {"CALLCONSENT_ARI_PASSWORD": "callconsent-lab", "CALLCONSENT_KEK": KEK.hex()}
UNIQUEID = "1764000000.9"
CRASHED = f"{int(T0.timestamp())}.5"  # find_recording looks in the uniqueid's day


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def config_file(tmp_path: Path, *, spool: Path | None, encrypted: bool = True) -> Path:
    data = yaml.safe_load((REPO / "config" / "demo.yaml").read_text("utf-8"))
    data["storage"] = {
        "recordings_dir": str(tmp_path / "recordings"),
        "ledger_path": str(tmp_path / "state" / "ledger.jsonl"),
        "notice_archive_dir": str(tmp_path / "state" / "notices"),
    }
    if spool is not None:
        data["storage"]["spool_dir"] = str(spool)
    if encrypted:
        data["encryption"] = {"key_id": "k1", "key_env": "CALLCONSENT_KEK"}
    path = tmp_path / "callconsent.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")
    return path


# -- config ----------------------------------------------------------------------------------


@pytest.mark.parametrize("inside", ["recordings/spool", "recordings", "state/spool"])
def test_a_spool_inside_the_evidence_folders_is_refused(tmp_path: Path, inside: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(config_file(tmp_path, spool=tmp_path / inside), env=ENV)
    assert any("storage.spool_dir:" in e and "overlaps" in e for e in caught.value.errors)


def test_a_spool_asterisk_serves_over_http_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(
            config_file(tmp_path, spool=Path("/var/lib/asterisk/static-http/spool")), env=ENV
        )
    assert any("HTTP server serves" in e for e in caught.value.errors)


def test_encryption_without_a_spool_warns_that_the_clear_wav_lies_in_the_tree(
    tmp_path: Path,
) -> None:
    config = load_config(config_file(tmp_path, spool=None), env=ENV)
    assert any("storage.spool_dir: not set" in w for w in config.warnings)


def test_a_spool_without_encryption_warns_that_it_is_unused(tmp_path: Path) -> None:
    config = load_config(config_file(tmp_path, spool=tmp_path / "spool", encrypted=False), env=ENV)
    assert any("used only with an `encryption` section" in w for w in config.warnings)
    assert config.storage.spool_dir == tmp_path / "spool"


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda p: p.mkdir() or p.chmod(0o755), "readable by every user"),
        (lambda p: p.mkdir() or p.chmod(0o703), "writable by every user"),
        (lambda p: None, "does not exist"),
        (lambda p: p.write_text(""), "is not a folder"),
    ],
)
@pytest.mark.parametrize("command", ["check-config", "serve"])
def test_check_config_and_serve_refuse_a_spool_others_can_reach(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    make: Any,
    words: str,
    command: str,
) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    spool = tmp_path / "spool"
    make(spool)
    path = config_file(tmp_path, spool=spool)
    argv = (
        ["check-config", str(path)]
        if command == "check-config"
        else ["serve", "--config", str(path)]
    )
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"storage.spool_dir {spool}" in err and words in err
    assert "Traceback" not in err


def test_check_config_accepts_a_private_spool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    spool = tmp_path / "spool"
    spool.mkdir()
    os.chmod(spool, 0o700)
    assert main(["check-config", str(config_file(tmp_path, spool=spool))]) == 0
    assert "spool" not in capsys.readouterr().err


# -- the live app ----------------------------------------------------------------------------


def spooling_store(tmp_path: Path) -> tuple[EvidenceStore, KeyStore, Path]:
    (tmp_path / "recordings").mkdir()
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    keys = KeyStore(keys_dir(tmp_path / "ledger.jsonl"), {"k1": KEK}, "k1")
    store = EvidenceStore(
        recordings_dir=tmp_path / "recordings",
        ledger_path=tmp_path / "ledger.jsonl",
        config_sha256="d" * 64,
        clock=lambda: T0,
        at_rest=AtRest(keys),
        spool_dir=spool,
    )
    return store, keys, spool


def docs_call() -> tuple[CallOutcome, CallInfo]:
    notice = Prompt("lab_docs_v1.notice", "sound:/p/da/lab-docs-v1", "da", "c" * 64)
    outcome = CallOutcome(
        route="docs",
        language="da",
        status="not_required",
        reason=None,
        notices=(NoticeEvidence(notice, T0, T0, played=True),),
        purposes=(
            PurposeOutcome("documentation", "6(1)(f)", 90, "not_required", None, None, None),
        ),
        recorded_purposes=("documentation",),
        entered_at=T0,
    )
    info = CallInfo(UNIQUEID, UNIQUEID, "PJSIP/trunk-1", "docs", NUMBER, None, None)
    return outcome, info


async def test_mixmonitor_writes_to_the_spool_and_only_the_encrypted_file_reaches_the_tree(
    tmp_path: Path,
) -> None:
    store, keys, spool = spooling_store(tmp_path)
    outcome, info = docs_call()
    audio = Path(await store.prepare_recording(outcome, info, T0))
    assert audio == spool / f"{UNIQUEID}.wav"
    tree = evidence_paths.recording_paths(tmp_path / "recordings", UNIQUEID, T0)
    assert tree.sidecar.is_file() and not tree.audio.exists()
    wav = pcm_wav(4000)
    write_audio(audio, wav)
    await store.recording_ended(info, T0 + timedelta(minutes=1))
    assert not await asyncio.to_thread(audio.exists)
    assert await asyncio.to_thread(lambda: list(spool.iterdir())) == []
    assert file_is_encrypted(tree.audio)
    doc = json.loads(tree.sidecar.read_text())
    assert doc["state"] == "final" and doc["recording"]["file"] == tree.relative
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(tree.audio.read_bytes()), out, keys.open(UNIQUEID))
    assert out.getvalue() == wav
    await store.aclose()
    assert verify(tmp_path / "recordings", tmp_path / "ledger.jsonl").ok


async def test_a_recording_withdrawn_during_the_call_leaves_nothing_in_the_spool(
    tmp_path: Path,
) -> None:
    store, _, spool = spooling_store(tmp_path)
    outcome, info = docs_call()
    audio = Path(await store.prepare_recording(outcome, info, T0))
    write_audio(audio, pcm_wav(4000))
    tree = evidence_paths.recording_paths(tmp_path / "recordings", UNIQUEID, T0)

    def delete(doc: dict[str, Any] | None) -> Any:
        class Done:
            outcome, doc, writes = "deleted", None, True

        return Done()

    await store.change_in_call(
        UNIQUEID,
        T0,
        change=delete,
        entry=lambda done, where: {"type": "test", "call": {"uniqueid": UNIQUEID}},
        tombstone_reason="withdrawn",
    )
    assert not await asyncio.to_thread(audio.exists)
    assert await asyncio.to_thread(lambda: list(spool.iterdir())) == []
    assert json.loads(tree.sidecar.read_text())["state"] == "tombstone"
    await store.aclose()


async def test_a_recording_tombstoned_by_the_cli_during_the_call_is_removed_from_the_spool(
    tmp_path: Path,
) -> None:
    store, _, spool = spooling_store(tmp_path)
    outcome, info = docs_call()
    audio = Path(await store.prepare_recording(outcome, info, T0))
    tree = evidence_paths.recording_paths(tmp_path / "recordings", UNIQUEID, T0)
    sidecar.tombstone(tree, reason="withdrawn", at=T0)  # another process: sees the tree only
    write_audio(audio, pcm_wav(4000))  # MixMonitor closes the spooled file at hangup
    await store.recording_ended(info, T0 + timedelta(minutes=1))
    assert list(spool.iterdir()) == [] and not tree.audio.exists()
    await store.aclose()


# -- reconcile -------------------------------------------------------------------------------


def run_reconcile(tmp_path: Path, spool: Path) -> ReconcileReport:
    keys = KeyStore(keys_dir(tmp_path / "state" / "ledger.jsonl"), {"k1": KEK}, "k1")
    return reconcile(
        tmp_path / "recordings",
        Ledger(tmp_path / "state" / "ledger.jsonl"),
        now=datetime.now(UTC),
        dry_run=False,
        stale_after=timedelta(0),
        at_rest=AtRest(keys),
        spool_dir=spool,
    )


@pytest.fixture
def crashed(tmp_path: Path) -> Iterator[tuple[Path, evidence_paths.RecordingPaths]]:
    """A recording sidecar in the tree whose clear WAV the crash left in the spool."""
    store = make_store(tmp_path)
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    tree = store.call(CRASHED, live=True)
    assert tree is not None
    tree.audio.unlink()  # MixMonitor wrote to the spool, not the tree
    yield spool, tree


def test_reconcile_finalises_and_encrypts_a_spooled_recording_a_crash_left(
    tmp_path: Path, crashed: tuple[Path, evidence_paths.RecordingPaths]
) -> None:
    spool, tree = crashed
    wav = pcm_wav(4000)
    unclosed = wav[:4] + b"\0\0\0\0" + wav[8:40] + b"\0\0\0\0" + wav[44:]  # sizes 0: crash
    (spool / f"{CRASHED}.wav").write_bytes(unclosed)
    report = run_reconcile(tmp_path, spool)
    kinds = [i.kind for i in report.fixed]
    assert kinds == ["header_repaired", "finalised", "encrypted"], report.summary()
    assert report.clean and list(spool.iterdir()) == []
    assert file_is_encrypted(tree.audio) and sidecar.load(tree)["state"] == "final"
    assert verify(tmp_path / "recordings", tmp_path / "state" / "ledger.jsonl").ok


def test_reconcile_tombstones_a_spooled_header_only_file(
    tmp_path: Path, crashed: tuple[Path, evidence_paths.RecordingPaths]
) -> None:
    spool, tree = crashed
    (spool / f"{CRASHED}.wav").write_bytes(pcm_wav(0))
    report = run_reconcile(tmp_path, spool)
    assert [i.kind for i in report.fixed] == ["tombstoned_no_audio"], report.summary()
    assert list(spool.iterdir()) == [] and sidecar.load(tree)["state"] == "tombstone"


def test_reconcile_deletes_a_spooled_copy_of_a_recording_already_encrypted(
    tmp_path: Path, crashed: tuple[Path, evidence_paths.RecordingPaths]
) -> None:
    spool, tree = crashed
    (spool / f"{CRASHED}.wav").write_bytes(pcm_wav(4000))
    run_reconcile(tmp_path, spool)
    (spool / f"{CRASHED}.wav").write_bytes(pcm_wav(4000))  # as if the crash came before the unlink
    report = run_reconcile(tmp_path, spool)
    assert [i.kind for i in report.fixed] == ["spool_removed"], report.summary()
    assert list(spool.iterdir()) == [] and file_is_encrypted(tree.audio)


def test_reconcile_deletes_the_spooled_audio_of_a_tombstone(
    tmp_path: Path, crashed: tuple[Path, evidence_paths.RecordingPaths]
) -> None:
    spool, tree = crashed
    sidecar.tombstone(tree, reason="withdrawn", at=T0)
    (spool / f"{CRASHED}.wav").write_bytes(pcm_wav(4000))
    report = run_reconcile(tmp_path, spool)
    assert [i.kind for i in report.fixed] == ["deletion_completed"], report.summary()
    assert list(spool.iterdir()) == []


def test_reconcile_reports_and_keeps_spooled_audio_without_a_sidecar(
    tmp_path: Path, crashed: tuple[Path, evidence_paths.RecordingPaths]
) -> None:
    spool, _ = crashed
    (spool / "7999.1.wav").write_bytes(pcm_wav(4000))
    report = run_reconcile(tmp_path, spool)
    assert [i.kind for i in report.reported] == ["orphan_audio"]
    assert (spool / "7999.1.wav").exists()


async def test_a_recording_adopted_after_a_restart_is_found_in_the_spool(tmp_path: Path) -> None:
    """The restarted app watches a live call again (parties.recover): its audio is in the spool,
    so a deletion during the call removes the spooled file."""
    first, _, spool = spooling_store(tmp_path)
    outcome, info = docs_call()
    audio = Path(await first.prepare_recording(outcome, info, T0))
    write_audio(audio, pcm_wav(4000))
    await first.aclose()
    keys = KeyStore(keys_dir(tmp_path / "ledger.jsonl"), {"k1": KEK}, "k1")
    again = EvidenceStore(
        recordings_dir=tmp_path / "recordings",
        ledger_path=tmp_path / "ledger.jsonl",
        config_sha256="d" * 64,
        clock=lambda: T0,
        at_rest=AtRest(keys),
        spool_dir=spool,
    )
    tree = evidence_paths.recording_paths(tmp_path / "recordings", UNIQUEID, T0)
    again.adopt(UNIQUEID, tree)
    await again.change_in_call(
        UNIQUEID,
        T0,
        change=lambda doc: _Deleted(),
        entry=lambda done, where: {"type": "test", "call": {"uniqueid": UNIQUEID}},
        tombstone_reason="withdrawn",
    )
    assert await asyncio.to_thread(lambda: list(spool.iterdir())) == []
    assert json.loads(await asyncio.to_thread(tree.sidecar.read_text))["state"] == "tombstone"
    await again.aclose()


class _Deleted:
    """What a mid-call rule decides when the recording must go."""

    outcome, doc, writes = "deleted", None, True


def test_a_dry_run_of_reconcile_leaves_the_spool_as_it_is(
    tmp_path: Path, crashed: tuple[Path, evidence_paths.RecordingPaths]
) -> None:
    spool, tree = crashed
    (spool / f"{CRASHED}.wav").write_bytes(pcm_wav(4000))
    keys = KeyStore(keys_dir(tmp_path / "state" / "ledger.jsonl"), {"k1": KEK}, "k1")
    report = reconcile(
        tmp_path / "recordings",
        Ledger(tmp_path / "state" / "ledger.jsonl"),
        now=datetime.now(UTC),
        dry_run=True,
        stale_after=timedelta(0),
        at_rest=AtRest(keys),
        spool_dir=spool,
    )
    kinds = [i.kind for i in report.fixed]
    assert kinds == ["finalised", "encrypted"] and report.clean, report.summary()
    assert (spool / f"{CRASHED}.wav").exists() and not tree.audio.exists()
    assert sidecar.load(tree)["state"] == "recording"
