"""Recordings encrypted at rest on the real Asterisk (R33, issue 16).

``callconsent serve`` runs on a copy of config/demo.yaml with an ``encryption`` section (the
key-encryption key in an environment variable) and the lab's private spool
(``storage.spool_dir``). A sipp caller on the documentation route is recorded: while the call
records, the clear WAV exists only in the spool (the tree holds the sidecar alone); when the
call ends the spool is empty and the file in the tree is encrypted, ``callconsent decrypt`` gives back
exactly the WAV MixMonitor wrote (its sha256 was taken before encryption; sox reads it as 8 kHz
mono audio of the call's length, not silence), ``verify`` passes, and after ``erase`` the data
key is gone and nobody can decrypt it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from callconsent.config import Config
from callconsent.evidence.at_rest import file_is_encrypted
from callconsent.evidence.keystore import key_path, keys_dir
from tests.e2e.lab_app import DEMO_CONFIG, LAB_ENV, LabApp, route_timing, wait_ledger
from tests.harness.asterisk import AsteriskLab
from tests.harness.sipp import Call, Pause, background_call

KEK_ENV = "CALLCONSENT_E2E_KEK"
KEK = bytes(range(100, 132)).hex()


def _cli(config_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "callconsent.cli.main", *args, "--config", str(config_path)],
        env={**os.environ, **LAB_ENV, KEK_ENV: KEK},
        capture_output=True,
        text=True,
        check=False,
    )


def _spool(data: dict[str, Any]) -> Path:
    """The lab's spool (scripts/asterisk-sandbox makes it beside recordings/, 0700 Asterisk's)."""
    return Path(data["storage"]["recordings_dir"]).parent / "spool"


def _tree_files(config: Config, uniqueid: str) -> list[str]:
    return sorted(p.name for p in config.storage.recordings_dir.rglob(f"{uniqueid}.*"))


@pytest.fixture(scope="module")
def encrypted_app(
    asterisk: AsteriskLab, lab_app: LabApp, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """The lab app restarted on demo.yaml + encryption; the plain lab app again afterwards."""
    folder = tmp_path_factory.mktemp("encrypted")
    data = yaml.safe_load(DEMO_CONFIG.read_text("utf-8"))
    data["encryption"] = {"key_id": "lab1", "key_env": KEK_ENV}
    data["storage"]["spool_dir"] = str(_spool(data))
    config_path = folder / "callconsent.yaml"
    config_path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")
    lab_app.stop()
    app = LabApp(folder / "serve.log", config_path)
    os.environ[KEK_ENV] = KEK
    try:
        app.start()
        yield config_path
    finally:
        app.stop()
        os.environ.pop(KEK_ENV, None)
        lab_app.start()


@pytest.fixture(scope="module", params=["docs", "agi-docs"])  # the Stasis and FastAGI hooks
def recorded(
    request: pytest.FixtureRequest, asterisk: AsteriskLab, encrypted_app: Path, config: Config
) -> dict[str, Any]:
    docs = route_timing(config, "docs")
    mark = asterisk.log_offset()
    number = "+4530000016" if request.param == "docs" else "+4530000017"
    call = Call(to=request.param, caller_number=number, timeline=[Pause(docs.notices_end + 8.0)])
    spool = _spool({"storage": {"recordings_dir": str(config.storage.recordings_dir)}})
    with background_call(call) as pending:
        dest = asterisk.wait_labdest(call.call_id, since=mark, timeout=40)
        spooled = spool / f"{dest.uniqueid}.wav"
        deadline = time.monotonic() + 6.0
        while spooled.stat().st_size <= 44 and time.monotonic() < deadline:
            time.sleep(0.2)  # bridged: MixMonitor writes (buffered) audio after the header
        during = {
            "recording": dest.recording,
            "spool": sorted(p.name for p in spool.iterdir()),
            "spool_bytes": spooled.stat().st_size,
            "tree": _tree_files(config, dest.uniqueid),
        }
        result = pending.result(timeout=90)
    assert result.answered, result.describe()
    end = asterisk.wait_labend(result.call_id, since=mark)
    final = wait_ledger(config, end.uniqueid, kind="recording_final")
    sidecar_path = (config.storage.recordings_dir / final["recording"]["file"]).with_suffix(".json")
    deadline = time.monotonic() + 20
    while True:
        doc: dict[str, Any] = json.loads(sidecar_path.read_text())
        if "encryption" in doc["recording"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    adapter = "agi" if request.param.startswith("agi-") else None
    return {"uniqueid": end.uniqueid, "doc": doc, "during": during, "spool": spool, "agi": adapter}


def test_while_the_call_records_the_clear_wav_is_only_in_the_spool(
    recorded: dict[str, Any],
) -> None:
    during, uniqueid = recorded["during"], recorded["uniqueid"]
    assert during["recording"] == str(recorded["spool"] / f"{uniqueid}.wav")
    assert f"{uniqueid}.wav" in during["spool"] and during["spool_bytes"] > 44
    assert during["tree"] == [f"{uniqueid}.json"]  # the sidecar only: no audio in the tree
    assert recorded["doc"]["call"].get("adapter") == recorded["agi"]  # each hook's flow


def test_after_the_call_only_the_encrypted_file_is_in_the_tree_and_the_spool_is_empty(
    config: Config, recorded: dict[str, Any]
) -> None:
    uniqueid = recorded["uniqueid"]
    assert not (recorded["spool"] / f"{uniqueid}.wav").exists()
    assert _tree_files(config, uniqueid) == [f"{uniqueid}.json", f"{uniqueid}.wav"]
    assert file_is_encrypted(config.storage.recordings_dir / recorded["doc"]["recording"]["file"])


def test_the_recording_on_disk_is_encrypted_and_named_so_in_its_sidecar(
    config: Config, recorded: dict[str, Any]
) -> None:
    doc = recorded["doc"]
    enc = doc["recording"]["encryption"]
    assert (enc["scheme"], enc["key_id"]) == ("aes256gcm-chunked-v1", "lab1")
    audio = config.storage.recordings_dir / doc["recording"]["file"]
    assert file_is_encrypted(audio)
    assert audio.stat().st_size == enc["bytes"]
    assert key_path(keys_dir(config.storage.ledger_path), recorded["uniqueid"]).is_file()


def test_decrypt_gives_back_the_wav_mixmonitor_wrote(
    config: Config, encrypted_app: Path, recorded: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "call.wav"
    proc = _cli(
        encrypted_app,
        "decrypt",
        "--call-id",
        recorded["uniqueid"],
        "--out",
        str(out),
        "--reason",
        "e2e",
    )
    assert proc.returncode == 0, proc.stderr
    wav = out.read_bytes()
    assert hashlib.sha256(wav).hexdigest() == recorded["doc"]["recording"]["sha256"]
    info = subprocess.run(["soxi", str(out)], capture_output=True, text=True, check=True).stdout
    assert "Sample Rate    : 8000" in info and "Channels       : 1" in info
    stat = subprocess.run(["sox", str(out), "-n", "stat"], capture_output=True, text=True)
    fields = dict(
        (k.strip(), v.strip())
        for k, _, v in (line.partition(":") for line in stat.stderr.splitlines())
    )
    assert float(fields["Length (seconds)"]) == pytest.approx(
        recorded["doc"]["recording"]["duration_seconds"], abs=0.1
    )
    assert float(fields["RMS     amplitude"]) > 0.001  # the caller's tone, not silence
    verify = _cli(encrypted_app, "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_after_erasure_the_data_key_is_gone_and_nobody_can_decrypt(
    config: Config, encrypted_app: Path, recorded: dict[str, Any], tmp_path: Path
) -> None:
    uniqueid = recorded["uniqueid"]
    proc = _cli(encrypted_app, "erase", "--call-id", uniqueid, "--reason", "Art 17 e2e")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not key_path(keys_dir(config.storage.ledger_path), uniqueid).exists()
    out = tmp_path / "gone.wav"
    proc = _cli(
        encrypted_app, "decrypt", "--call-id", uniqueid, "--out", str(out), "--reason", "e2e"
    )
    assert proc.returncode == 1 and not out.exists()
