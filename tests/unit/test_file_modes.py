"""Recordings are 0640 at most and `serve` refuses a recordings folder others can read or write
(R32, issue 11)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from callconsent.evidence import fsio
from tests.support.lab import LAB_ENV
from tests.support.stasis_fakes import load_demo


@pytest.mark.parametrize(
    ("before", "after"),
    [(0o664, 0o640), (0o666, 0o640), (0o660, 0o640), (0o644, 0o640), (0o777, 0o640)],
)
def test_a_recording_wider_than_0640_is_narrowed_to_0640(
    tmp_path: Path, before: int, after: int
) -> None:
    wav = tmp_path / "x.wav"
    wav.write_bytes(b"RIFF")
    os.chmod(wav, before)
    assert fsio.tighten_mode(wav) == before
    assert wav.stat().st_mode & 0o7777 == after


@pytest.mark.parametrize("mode", [0o640, 0o600, 0o400])
def test_a_recording_already_0640_or_stricter_is_left_alone(tmp_path: Path, mode: int) -> None:
    wav = tmp_path / "x.wav"
    wav.write_bytes(b"RIFF")
    os.chmod(wav, mode)
    assert fsio.tighten_mode(wav) is None
    assert wav.stat().st_mode & 0o7777 == mode


@pytest.mark.parametrize(
    ("mode", "words"),
    [
        (0o2775, "readable by every user"),
        (0o755, "readable by every user"),
        (0o2772, "writable by every user"),
        (0o777, "readable and writable by every user"),
        (0o2770, None),
        (0o2771, None),  # others may traverse, not list or write
        (0o700, None),
    ],
)
def test_folder_exposure_names_what_others_may_do(mode: int, words: str | None) -> None:
    found = fsio.folder_exposure(mode)
    assert (found is None) if words is None else (found is not None and words in found)


def _serve(config_path: Path, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "callconsent.cli.main", "serve", "--config", str(config_path)],
        env={**os.environ, **LAB_ENV},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize("mode", [0o2775, 0o2772])
def test_serve_refuses_a_recordings_folder_others_can_read_or_write(
    tmp_path: Path, mode: int
) -> None:
    config = load_demo(tmp_path)
    folder = config.storage.recordings_dir
    folder.mkdir(parents=True)
    os.chmod(folder, mode)
    proc = _serve(config.path)
    assert proc.returncode == 2
    assert f"the recordings folder {folder} is" in proc.stderr
    assert f"chmod o-rwx {folder}" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
