"""Prompt audio made with the real espeak-ng and sox, and the notice archive."""

from __future__ import annotations

import array
import copy
import dataclasses
import hashlib
import os
import shutil
import wave
from pathlib import Path
from typing import Any

import pytest
import yaml

from callconsent.config import Config, build_plan, load_config
from callconsent.prompts import archive_notices, build_prompts

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "config" / "demo.yaml"
ENV = {"CALLCONSENT_ARI_PASSWORD": "callconsent-lab"}

_missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
if _missing and os.environ.get("CI") == "true":
    raise RuntimeError(f"CI must have {', '.join(_missing)} installed")  # fail, never skip, in CI
pytestmark = pytest.mark.skipif(
    bool(_missing), reason=f"needs {', '.join(_missing)} (apt-get install espeak-ng sox)"
)


def load(tmp_path: Path, support_transcript: str | None = None) -> Config:
    """The lab config cut to the Danish training notice, with prompts and archive under tmp."""
    data: dict[str, Any] = copy.deepcopy(yaml.safe_load(DEMO.read_text(encoding="utf-8")))
    data["prompts_dir"] = str(tmp_path / "prompts")
    data["storage"]["notice_archive_dir"] = str(tmp_path / "archive")
    data.pop("tts_words_per_minute", None)  # the default rate
    data["routes"] = {"support": data["routes"]["support"]}
    data["notices"] = {"lab_training_v1": data["notices"]["lab_training_v1"]}
    languages = data["notices"]["lab_training_v1"]["languages"]
    del languages["en"]
    if support_transcript is not None:
        languages["da"]["retry"]["transcript"] = support_transcript
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_config(path, env=ENV)


def test_prompts_are_8khz_mono_16bit_wav_with_their_transcript(tmp_path: Path) -> None:
    config = load(tmp_path)
    written = build_prompts(config)
    da = tmp_path / "prompts" / "da"
    assert sorted(p.name for p in written) == [
        "lab-training-v1-explicit.wav",
        "lab-training-v1-question.wav",
        "lab-training-v1-retry.wav",
        "lab-training-v1.wav",
    ]
    with wave.open(str(da / "lab-training-v1-question.wav")) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        assert 0.5 < wav.getnframes() / 8000 < 10
    question = config.notices["lab_training_v1"].languages["da"].question
    assert question is not None
    assert (da / "lab-training-v1-question.txt").read_text(encoding="utf-8") == question.transcript


def test_prompts_end_where_the_speech_ends(tmp_path: Path) -> None:
    """No trailing silence: the last sample above 0.5 % of full scale is within 10 ms of the
    end (espeak-ng alone leaves about 50 ms)."""
    build_prompts(load(tmp_path))
    for wav_path in sorted((tmp_path / "prompts" / "da").glob("*.wav")):
        with wave.open(str(wav_path)) as wav:
            frames = wav.readframes(wav.getnframes())
        samples = array.array("h", frames)
        loud = [i for i, sample in enumerate(samples) if abs(sample) > 0.005 * 32768]
        assert loud, f"{wav_path.name} is silent"
        tail = (len(samples) - 1 - loud[-1]) / 8000
        assert tail < 0.010, f"{wav_path.name} ends with {tail * 1000:.0f} ms of silence"


def test_prompts_are_made_again_only_when_the_transcript_changes(tmp_path: Path) -> None:
    build_prompts(load(tmp_path))
    assert build_prompts(load(tmp_path)) == []
    changed = build_prompts(load(tmp_path, "Forkert tast. Tryk 1 for ja, 2 for nej."))
    assert [p.name for p in changed] == ["lab-training-v1-retry.wav"]
    assert len(build_prompts(load(tmp_path), force=True)) == 4


def test_installed_recording_without_transcript_file_is_never_overwritten(tmp_path: Path) -> None:
    studio = tmp_path / "prompts" / "da" / "lab-training-v1.wav"
    studio.parent.mkdir(parents=True)
    studio.write_bytes(b"studio recording")
    written = build_prompts(load(tmp_path), force=True)
    assert studio not in written
    assert studio.read_bytes() == b"studio recording"


def test_notice_versions_are_archived_by_sha256_and_never_overwritten(tmp_path: Path) -> None:
    config = load(tmp_path)
    build_prompts(config)
    archive_notices(config)
    plan = build_plan(config, "support", sampled=lambda rate: True)
    notice = plan.notices[0]
    archived = tmp_path / "archive" / f"{notice.version}.wav"
    assert hashlib.sha256(archived.read_bytes()).hexdigest() == notice.version
    transcript = config.notices["lab_training_v1"].languages["da"].prompt.transcript
    assert archived.with_suffix(".txt").read_text(encoding="utf-8") == transcript
    meta = yaml.safe_load(archived.with_suffix(".json").read_text(encoding="utf-8"))
    assert (meta["notice"], meta["notice_version"], meta["retention_days"]) == (
        "lab_training_v1",
        "1",
        30,
    )
    assert len(list((tmp_path / "archive").glob("*.wav"))) == 4

    # a new audio version is added beside the old one; the old one stays as it was
    before = {p.name: p.read_bytes() for p in (tmp_path / "archive").iterdir()}
    changed = load(tmp_path, "Forkert tast. Tryk 1 for ja, 2 for nej.")
    build_prompts(changed)
    archive_notices(changed)
    after = {p.name: p.read_bytes() for p in (tmp_path / "archive").iterdir()}
    assert all(after[name] == data for name, data in before.items())
    assert len(after) == len(before) + 3


def test_missing_speech_tool_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from callconsent.prompts import PromptBuildError

    config = load(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(PromptBuildError, match="espeak-ng is not installed"):
        build_prompts(config)


def test_a_changed_speaking_rate_makes_the_prompts_again_and_shorter(tmp_path: Path) -> None:
    config = load(tmp_path)
    build_prompts(config)
    notice = tmp_path / "prompts" / "da" / "lab-training-v1.wav"
    with wave.open(str(notice)) as wav:
        normal = wav.getnframes()
    quick = dataclasses.replace(config, tts_words_per_minute=260)
    assert len(build_prompts(quick)) == 4  # every prompt again, at the new rate
    assert build_prompts(quick) == []
    with wave.open(str(notice)) as wav:
        assert wav.getnframes() < normal * 0.8
    assert (
        notice.with_suffix(".txt")
        .read_text(encoding="utf-8")
        .endswith("\n# tts: espeak-ng 260 wpm")
    )
