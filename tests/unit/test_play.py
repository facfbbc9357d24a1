"""``callconsent play ID`` (R33, R35): the recording decrypted into a private temporary file
that the player reads and that is gone afterwards (also on Ctrl-C and SIGTERM), or written to
stdout when that is not a terminal; each use audited without the caller's number; unknown ids,
deleted recordings and missing keys are clear errors (exit 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml

from callconsent.cli.main import main
from callconsent.evidence.at_rest import AtRest, file_is_encrypted
from callconsent.evidence.keystore import KeyStore, key_path, keys_dir
from tests.support.lifecycle_fixtures import NUMBER, make_store

REPO = Path(__file__).resolve().parents[2]
KEK = bytes(range(32))
ENV = {"CALLCONSENT_ARI_PASSWORD": "callconsent-lab", "CALLCONSENT_KEK": KEK.hex()}
CALL = "7000.1"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    yield
    structlog.reset_defaults()


def write_config(tmp_path: Path, *, encrypted: bool = True) -> Path:
    data = yaml.safe_load((REPO / "config" / "demo.yaml").read_text("utf-8"))
    data["storage"] = {
        "recordings_dir": str(tmp_path / "recordings"),
        "ledger_path": str(tmp_path / "state" / "ledger.jsonl"),
        "notice_archive_dir": str(tmp_path / "state" / "notices"),
    }
    if encrypted:
        data["encryption"] = {"key_id": "k1", "key_env": "CALLCONSENT_KEK"}
    path = tmp_path / f"callconsent{'' if encrypted else '-clear'}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")
    return path


@pytest.fixture
def recording(tmp_path: Path) -> tuple[Path, bytes]:
    """An encrypted recording of call 7000.1 from NUMBER; the config and the clear WAV."""
    store = make_store(tmp_path)
    paths = store.call(CALL, audio=os.urandom(8000))
    assert paths is not None
    plain = paths.audio.read_bytes()
    AtRest(KeyStore(keys_dir(store.ledger_path), {"k1": KEK}, "k1")).encrypt(paths)
    assert file_is_encrypted(paths.audio)
    return write_config(tmp_path), plain


def fake_player(tmp_path: Path, body: str = "") -> str:
    """A player that notes the file it was given and its mode, and copies it."""
    script = tmp_path / "player.sh"
    out = tmp_path / "heard"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$1" > {out}.path\n'
        f'stat -c %a "$1" > {out}.mode\n'
        f'stat -c %a "$(dirname "$1")" > {out}.dirmode\n'
        f'cp "$1" {out}.wav\n' + body
    )
    script.chmod(0o755)
    return str(script)


def audit_lines(config: Path) -> list[dict[str, Any]]:
    audit = config.parent / "state" / "audit.jsonl"
    return [json.loads(line) for line in audit.read_text().splitlines()]


def test_the_player_hears_the_wav_from_a_private_file_that_is_removed_afterwards(
    tmp_path: Path, recording: tuple[Path, bytes]
) -> None:
    config, plain = recording
    player = fake_player(tmp_path)
    argv = ["play", CALL, "--config", str(config), "--reason", "complaint 31", "--player", player]
    assert main(argv) == 0
    heard = tmp_path / "heard"
    assert (tmp_path / "heard.wav").read_bytes() == plain
    assert (
        heard.with_suffix(".mode").read_text().strip(),
        heard.with_suffix(".dirmode").read_text().strip(),
    ) == ("600", "700")
    used = Path(heard.with_suffix(".path").read_text().strip())
    assert not used.exists() and not used.parent.exists()


def test_each_listening_is_audited_with_who_which_call_and_why_never_the_number(
    tmp_path: Path, recording: tuple[Path, bytes]
) -> None:
    config, _ = recording
    argv = ["play", CALL, "--config", str(config), "--reason", "QA", "--actor", "qa:ann"]
    assert main([*argv, "--player", fake_player(tmp_path)]) == 0
    [line] = [a for a in audit_lines(config) if a["action"] == "play"]
    assert (line["actor"], line["ids"], line["reason"]) == ("qa:ann", [CALL], "QA")
    assert line["at"] and NUMBER not in json.dumps(line)
    assert NUMBER.encode() not in (config.parent / "state" / "audit.jsonl").read_bytes()


def test_stdout_gets_the_wav_when_it_is_not_a_terminal(
    recording: tuple[Path, bytes], capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    config, plain = recording
    assert main(["play", CALL, "--config", str(config), "--reason", "r", "--stdout"]) == 0
    assert capsysbinary.readouterr().out == plain


def test_stdout_is_refused_when_it_is_a_terminal(
    recording: tuple[Path, bytes],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, _ = recording
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["play", CALL, "--config", str(config), "--reason", "r", "--stdout"]) == 2
    assert "redirect it" in capsys.readouterr().err


def run_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "callconsent.cli.main",
            "play",
            CALL,
            "--config",
            str(config),
            *args,
        ],
        env={**os.environ, **ENV},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(("signal_name", "code"), [("INT", 130), ("TERM", 143)])
def test_ctrl_c_or_sigterm_while_playing_removes_the_temporary_copy(
    tmp_path: Path, recording: tuple[Path, bytes], signal_name: str, code: int
) -> None:
    config, _ = recording
    player = fake_player(tmp_path, f"kill -{signal_name} $PPID\nexec sleep 10\n")
    proc = run_cli(config, "--reason", "r", "--player", player)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    used = Path((tmp_path / "heard.path").read_text().strip())
    assert (tmp_path / "heard.wav").exists() and not used.exists() and not used.parent.exists()


def test_an_unknown_call_is_a_clear_error(
    recording: tuple[Path, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = recording
    argv = ["play", "7999.9", "--config", str(config), "--reason", "r", "--stdout"]
    assert main(argv) == 2
    assert "no recording of call '7999.9'" in capsys.readouterr().err


def test_an_erased_recording_is_a_clear_error(
    tmp_path: Path, recording: tuple[Path, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = recording
    assert main(["erase", "--config", str(config), "--call-id", CALL, "--reason", "Art 17"]) == 0
    capsys.readouterr()
    assert main(["play", CALL, "--config", str(config), "--reason", "r", "--stdout"]) == 2
    err = capsys.readouterr()
    assert "was deleted" in err.err and err.out == ""


def test_a_missing_data_key_is_a_clear_error(
    tmp_path: Path, recording: tuple[Path, bytes], capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    config, _ = recording
    key_path(keys_dir(tmp_path / "state" / "ledger.jsonl"), CALL).unlink()
    assert main(["play", CALL, "--config", str(config), "--reason", "r", "--stdout"]) == 2
    assert b"no data key" in capsysbinary.readouterr().err


def test_without_the_key_encryption_key_it_is_a_clear_error(
    tmp_path: Path, recording: tuple[Path, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    write_config(tmp_path, encrypted=False)
    clear = tmp_path / "callconsent-clear.yaml"
    assert main(["play", CALL, "--config", str(clear), "--reason", "r", "--stdout"]) == 2
    assert "no encryption keys are configured" in capsys.readouterr().err


def test_a_missing_player_is_a_clear_error(
    recording: tuple[Path, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = recording
    argv = ["play", CALL, "--config", str(config), "--reason", "r", "--player", "no-such-player"]
    assert main(argv) == 2
    assert "no such program" in capsys.readouterr().err
