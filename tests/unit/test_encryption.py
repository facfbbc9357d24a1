"""Encryption at rest (R33): the chunked AES-GCM format, wrapped data keys, rotation,
crypto-shredding on deletion, and every reader of the audio (verify, export, decrypt,
reconcile) seeing the WAV the caller's call produced."""

from __future__ import annotations

import asyncio
import io
import json
import os
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml

from callconsent.cli.main import main
from callconsent.config import Config, ConfigError, load_config
from callconsent.consent import CallOutcome, NoticeEvidence, Prompt, PurposeOutcome
from callconsent.evidence import sidecar
from callconsent.evidence.at_rest import AtRest, file_is_encrypted
from callconsent.evidence.crypto import (
    DecryptionError,
    decrypt_stream,
    encrypt_stream,
    new_data_key,
    unwrap_key,
    wrap_key,
)
from callconsent.evidence.documents import CallInfo
from callconsent.evidence.keystore import KeyStore, key_path, keys_dir
from callconsent.evidence.ledger import Ledger
from callconsent.lifecycle.purge import purge
from callconsent.lifecycle.reconcile import reconcile
from callconsent.lifecycle.verify import verify
from callconsent.store import EvidenceStore
from tests.support.cli import run
from tests.support.lifecycle_fixtures import NUMBER, T0, Store, make_store
from tests.support.stasis_fakes import pcm_wav, write_audio

REPO = Path(__file__).resolve().parents[2]
KEK1, KEK2 = bytes(range(32)), bytes(range(32, 64))
ENV = {"CALLCONSENT_ARI_PASSWORD": "callconsent-lab", "CALLCONSENT_KEK": KEK1.hex()}


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    """The commands configure structlog for the process, bound to pytest's captured stderr:
    later tests must not log into that closed capture."""
    yield
    structlog.reset_defaults()


def roundtrip(data: bytes, chunk: int) -> bytes:
    key = new_data_key()
    sealed = io.BytesIO()
    encrypt_stream(io.BytesIO(data), sealed, key, chunk=chunk)
    assert len(data) < 16 or data not in sealed.getvalue()
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(sealed.getvalue()), out, key)
    return out.getvalue()


@pytest.mark.parametrize("size", [0, 1, 99, 100, 101, 350])
def test_any_length_decrypts_to_the_same_bytes(size: int) -> None:
    data = os.urandom(size)
    assert roundtrip(data, chunk=100) == data


def sealed_of(data: bytes, key: bytes, chunk: int = 100) -> bytes:
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(data), out, key, chunk=chunk)
    return out.getvalue()


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[:40] + bytes([b[40] ^ 1]) + b[41:],  # one bit flipped
        lambda b: b[: 16 + 116],  # cut after the first chunk
        lambda b: b[: 16 + 2 * 116],  # cut after two whole chunks (one is left)
        lambda b: b[:16] + b[16 + 116 : 16 + 232] + b[16:132] + b[232:],  # chunks swapped
        lambda b: b[:-1],  # last byte lost
    ],
)
def test_an_altered_or_cut_file_never_decrypts(damage: Any) -> None:
    key = new_data_key()
    broken = damage(sealed_of(os.urandom(300), key))
    with pytest.raises(DecryptionError):
        decrypt_stream(io.BytesIO(broken), io.BytesIO(), key)


def test_the_wrong_key_never_decrypts() -> None:
    with pytest.raises(DecryptionError, match="authentication failed"):
        decrypt_stream(io.BytesIO(sealed_of(b"x" * 10, new_data_key())), io.BytesIO(), KEK1)


def test_a_wrapped_key_opens_only_for_its_recording_and_key_id() -> None:
    key = new_data_key()
    wrapped = wrap_key(KEK1, key, kek_id="k1", uniqueid="1.1")
    assert unwrap_key(KEK1, wrapped, kek_id="k1", uniqueid="1.1") == key
    for kek, kid, uid in ((KEK2, "k1", "1.1"), (KEK1, "k2", "1.1"), (KEK1, "k1", "1.2")):
        with pytest.raises(DecryptionError):
            unwrap_key(kek, wrapped, kek_id=kid, uniqueid=uid)


def test_rotation_old_keys_open_until_rewrapped_under_the_new_one(tmp_path: Path) -> None:
    old = KeyStore(tmp_path, {"k1": KEK1}, "k1")
    key = old.create("1.1")
    assert oct(key_path(tmp_path, "1.1").stat().st_mode & 0o777) == "0o600"
    rotated = KeyStore(tmp_path, {"k1": KEK1, "k2": KEK2}, "k2")
    assert rotated.open("1.1") == key and rotated.kek_id_of("1.1") == "k1"
    assert rotated.rewrap() == 1
    assert KeyStore(tmp_path, {"k2": KEK2}, "k2").open("1.1") == key
    with pytest.raises(DecryptionError, match="not configured"):
        KeyStore(tmp_path, {"k1": KEK1}, "k1").open("1.1")


# -- config ----------------------------------------------------------------------------------


def config_with(tmp_path: Path, encryption: dict[str, Any] | None) -> Path:
    data = yaml.safe_load((REPO / "config" / "demo.yaml").read_text("utf-8"))
    data["storage"] = {
        "recordings_dir": str(tmp_path / "recordings"),
        "ledger_path": str(tmp_path / "state" / "ledger.jsonl"),
        "notice_archive_dir": str(tmp_path / "state" / "notices"),
    }
    if encryption is not None:
        data["encryption"] = encryption
    path = tmp_path / "callconsent.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")
    return path


def test_encryption_is_off_without_its_section(tmp_path: Path) -> None:
    assert load_config(config_with(tmp_path, None), env=ENV).encryption is None


def test_a_key_file_open_to_others_is_refused(tmp_path: Path) -> None:
    kek = tmp_path / "kek"
    kek.write_text(KEK1.hex())
    kek.chmod(0o644)
    with pytest.raises(ConfigError) as caught:
        load_config(config_with(tmp_path, {"key_id": "k1", "key_file": str(kek)}), env=ENV)
    assert any("encryption.key_file:" in e and "chmod 600" in e for e in caught.value.errors)


def test_a_key_that_is_not_256_bits_of_hex_is_refused(tmp_path: Path) -> None:
    env = {**ENV, "CALLCONSENT_KEK": "abc"}
    with pytest.raises(ConfigError) as caught:
        load_config(config_with(tmp_path, {"key_id": "k1", "key_env": "CALLCONSENT_KEK"}), env=env)
    assert any("encryption.key_env:" in e and "64 hex" in e for e in caught.value.errors)


# -- the recordings --------------------------------------------------------------------------


@pytest.fixture
def encrypted(tmp_path: Path) -> tuple[Store, Config, Any, bytes]:
    kek = tmp_path / "kek"
    kek.write_text(KEK1.hex())
    kek.chmod(0o600)
    config = load_config(config_with(tmp_path, {"key_id": "k1", "key_file": str(kek)}), env=ENV)
    store = make_store(tmp_path)
    paths = store.call("7000.1", audio=os.urandom(8000))
    assert paths is not None
    plain = paths.audio.read_bytes()
    keys = KeyStore(keys_dir(store.ledger_path), {"k1": KEK1}, "k1")
    doc = AtRest(keys).encrypt(paths)
    assert doc is not None
    return store, config, paths, plain


def test_a_final_recording_is_encrypted_in_place_and_named_in_its_sidecar(
    encrypted: tuple[Store, Config, Any, bytes],
) -> None:
    store, _, paths, plain = encrypted
    assert file_is_encrypted(paths.audio) and plain[44:1044] not in paths.audio.read_bytes()
    doc = sidecar.load(paths)
    enc = doc["recording"]["encryption"]
    assert (enc["scheme"], enc["key_id"]) == ("aes256gcm-chunked-v1", "k1")
    assert doc["recording"]["bytes"] == len(plain)  # the WAV's, as the evidence says
    assert verify(store.root, store.ledger_path).ok
    keys = KeyStore(keys_dir(store.ledger_path), {"k1": KEK1}, "k1")
    assert b"".join(AtRest(keys).plain_chunks(paths, doc)) == plain
    assert AtRest(keys).encrypt(paths) is None  # once only


def test_decrypt_command_writes_the_wav_the_call_produced_and_audits_it(
    encrypted: tuple[Store, Config, Any, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, config, _, plain = encrypted
    monkeypatch.setenv("CALLCONSENT_ARI_PASSWORD", "callconsent-lab")
    out = tmp_path / "out.wav"
    argv = ["decrypt", "--config", str(config.path), "--call-id", "7000.1", "--out", str(out)]
    assert main([*argv, "--reason", "DSAR 7"]) == 0
    assert out.read_bytes() == plain and oct(out.stat().st_mode & 0o777) == "0o600"
    audit = (config.storage.ledger_path.parent / "audit.jsonl").read_text()
    assert '"decrypt"' in audit and "DSAR 7" in audit
    assert main([*argv, "--reason", "again"]) == 2  # never over an existing file


def test_export_holds_the_decrypted_wav(
    encrypted: tuple[Store, Config, Any, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    _, config, _, plain = encrypted
    assert run(config, "export", "--number", NUMBER, "--reason", "DSAR", "--json") == 0
    archive = json.loads(capsys.readouterr().out)["archive"]
    with zipfile.ZipFile(archive) as zf:
        assert zf.read("audio/7000.1.wav") == plain


def test_purge_destroys_the_data_key_so_no_copy_can_be_read(
    encrypted: tuple[Store, Config, Any, bytes], tmp_path: Path
) -> None:
    store, _, paths, _ = encrypted
    copy = tmp_path / "backup.wav"
    copy.write_bytes(paths.audio.read_bytes())  # a backup taken before the purge
    assert purge(store.context(T0 + timedelta(days=91)), dry_run=False).counts == {"deleted": 1}
    assert not key_path(keys_dir(store.ledger_path), "7000.1").exists()
    assert not paths.audio.exists()
    keys = KeyStore(keys_dir(store.ledger_path), {"k1": KEK1}, "k1")
    with pytest.raises(FileNotFoundError):  # the backup's data key is gone with it
        keys.open("7000.1")
    assert file_is_encrypted(copy)


def test_erase_destroys_the_data_key_and_decrypt_then_fails(
    encrypted: tuple[Store, Config, Any, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, config, _, _ = encrypted
    assert run(config, "erase", "--call-id", "7000.1", "--reason", "Art 17") == 0
    assert not key_path(keys_dir(store.ledger_path), "7000.1").exists()
    monkeypatch.setenv("CALLCONSENT_ARI_PASSWORD", "callconsent-lab")
    out = tmp_path / "gone.wav"
    argv = ["decrypt", "--config", str(config.path), "--call-id", "7000.1", "--out", str(out)]
    assert main([*argv, "--reason", "x"]) == 1
    assert not out.exists()


def test_reconcile_encrypts_a_final_recording_left_in_clear(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    paths = store.call("7000.2", audio=os.urandom(4000))
    assert paths is not None
    keys = KeyStore(keys_dir(store.ledger_path), {"k1": KEK1}, "k1")
    report = reconcile(
        store.root,
        Ledger(store.ledger_path),
        now=datetime.now(UTC),
        dry_run=False,
        stale_after=timedelta(0),
        at_rest=AtRest(keys),
    )
    assert [i.kind for i in report.fixed] == ["encrypted"] and report.clean
    assert file_is_encrypted(paths.audio) and verify(store.root, store.ledger_path).ok


async def test_the_app_encrypts_a_recording_when_it_ends(tmp_path: Path) -> None:
    """The live path: EvidenceStore.recording_ended finalises, then encrypts (R33)."""
    (tmp_path / "recordings").mkdir()
    keys = KeyStore(keys_dir(tmp_path / "ledger.jsonl"), {"k1": KEK1}, "k1")
    store = EvidenceStore(
        recordings_dir=tmp_path / "recordings",
        ledger_path=tmp_path / "ledger.jsonl",
        config_sha256="d" * 64,
        clock=lambda: T0,
        at_rest=AtRest(keys),
    )
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
    info = CallInfo("1764000000.9", "1764000000.9", "PJSIP/trunk-1", "docs", NUMBER, None, None)
    audio = Path(await store.prepare_recording(outcome, info, T0))
    wav = pcm_wav(4000)
    write_audio(audio, wav)
    await store.recording_ended(info, T0 + timedelta(minutes=1))
    assert file_is_encrypted(audio)
    doc = json.loads(audio.with_suffix(".json").read_text())
    assert doc["state"] == "final" and doc["recording"]["encryption"]["key_id"] == "k1"
    out = io.BytesIO()
    sealed = await asyncio.to_thread(audio.read_bytes)
    decrypt_stream(io.BytesIO(sealed), out, keys.open("1764000000.9"))
    assert out.getvalue() == wav
