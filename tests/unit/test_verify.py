"""verify: every final recording against its sidecar, and the ledger chain (R34)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from callconsent.evidence import sidecar
from callconsent.evidence.entries import recording_final_entry
from callconsent.evidence.ledger import Ledger
from callconsent.evidence.paths import RecordingPaths, ensure_directory, recording_paths
from callconsent.evidence.wav import pcm_header
from callconsent.lifecycle.verify import VerifyProblem, verify

T0 = datetime(2026, 11, 24, 12, tzinfo=UTC)


def start(root: Path, uniqueid: str, when: datetime = T0) -> RecordingPaths:
    paths = recording_paths(root, uniqueid, when)
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
                "caller_number": "+45",
                "caller_name": None,
                "dialled_number": None,
            },
            started_at=when,
            language="da",
            notices=[],
            purposes=[],
            delete_after=when + timedelta(days=90),
            tags=[],
            software={"name": "callconsent", "version": "0.1.0"},
            config_sha256="0" * 64,
        ),
    )
    return paths


def finished(root: Path, uniqueid: str, ledger: Ledger, audio_bytes: int = 1600) -> RecordingPaths:
    paths = start(root, uniqueid)
    paths.audio.write_bytes(
        pcm_header(audio_bytes)
        + bytes(range(256)) * (audio_bytes // 256)
        + b"\x00" * (audio_bytes % 256)
    )
    final = sidecar.finalise(paths, ended_at=T0 + timedelta(minutes=1))
    ledger.append(recording_final_entry(final, at=T0, source="app"))
    return paths


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, Path, dict[str, RecordingPaths]]:
    root, ledger_path = tmp_path / "rec", tmp_path / "ledger.jsonl"
    ledger = Ledger(ledger_path)
    made = {uid: finished(root, uid, ledger) for uid in ("1.1", "1.2", "1.3")}
    sidecar.tombstone(made["1.3"], reason="retention", at=T0 + timedelta(days=91))
    made["1.4"] = start(root, "1.4")  # a call still recording
    return root, ledger_path, made


def kinds(problems: list[VerifyProblem]) -> list[tuple[str, str]]:
    return [(p.path.name, p.kind) for p in problems]


def test_intact_store_verifies_clean(store: tuple[Path, Path, dict[str, RecordingPaths]]) -> None:
    root, ledger_path, _ = store
    report = verify(root, ledger_path)
    assert report.ok and report.problems == []
    assert (report.sidecars, report.recordings_hashed, report.tombstones, report.unfinalised) == (
        4,
        2,
        1,
        1,
    )


def test_flipped_byte_in_wav_is_reported_as_sha256_mismatch(
    store: tuple[Path, Path, dict[str, RecordingPaths]],
) -> None:
    root, ledger_path, made = store
    audio = made["1.2"].audio
    data = bytearray(audio.read_bytes())
    data[500] ^= 0x01
    audio.write_bytes(bytes(data))
    report = verify(root, ledger_path)
    assert not report.ok
    assert kinds(report.problems) == [("1.2.wav", "sha256_mismatch")]
    assert str(audio) in str(report.problems[0])


def test_truncated_wav_is_reported_as_size_mismatch(
    store: tuple[Path, Path, dict[str, RecordingPaths]],
) -> None:
    root, ledger_path, made = store
    audio = made["1.1"].audio
    audio.write_bytes(audio.read_bytes()[:-10])
    assert kinds(verify(root, ledger_path).problems) == [("1.1.wav", "size_mismatch")]


def test_deleted_ledger_line_is_reported_with_its_line_number(
    store: tuple[Path, Path, dict[str, RecordingPaths]],
) -> None:
    root, ledger_path, _ = store
    raw = ledger_path.read_bytes().split(b"\n")
    ledger_path.write_bytes(b"\n".join([raw[0], *raw[2:]]))
    problems = verify(root, ledger_path).problems
    assert [(p.kind, p.line_no) for p in problems] == [("ledger_chain_break", 2), ("ledger_seq", 2)]
    assert all(p.path == ledger_path for p in problems)


def test_every_kind_of_damage_is_reported_in_one_run(
    store: tuple[Path, Path, dict[str, RecordingPaths]],
) -> None:
    root, ledger_path, made = store
    made["1.1"].audio.unlink()  # final sidecar, audio gone
    made["1.2"].sidecar.write_text("{ broken")  # malformed sidecar
    made["1.3"].audio.write_bytes(pcm_header(0))  # audio back after its tombstone
    orphan = recording_paths(root, "9.9", T0)
    orphan.audio.write_bytes(pcm_header(0))  # audio nobody accounts for
    ledger_path.unlink()
    seen: list[VerifyProblem] = []
    report = verify(root, ledger_path, on_problem=seen.append)
    assert kinds(report.problems) == [
        ("1.1.wav", "audio_missing"),
        ("1.2.json", "malformed_sidecar"),
        ("1.3.wav", "audio_after_tombstone"),
        ("9.9.wav", "orphan_audio"),
        ("ledger.jsonl", "ledger_missing"),
    ]
    assert seen == report.problems


def test_sidecar_copied_to_another_calls_name_is_reported(
    store: tuple[Path, Path, dict[str, RecordingPaths]],
) -> None:
    root, ledger_path, made = store
    other = recording_paths(root, "1.9", T0)
    other.sidecar.write_bytes(made["1.1"].sidecar.read_bytes())
    other.audio.write_bytes(made["1.1"].audio.read_bytes())
    problems = verify(root, ledger_path).problems
    assert kinds(problems) == [("1.9.json", "malformed_sidecar")]
    assert "expected" in problems[0].detail


def test_report_renders_as_json_and_as_text(
    store: tuple[Path, Path, dict[str, RecordingPaths]],
) -> None:
    root, ledger_path, made = store
    made["1.1"].audio.write_bytes(b"RIFF")
    report = verify(root, ledger_path)
    data = report.as_dict()
    assert data["ok"] is False and data["problems"] == [
        {
            "path": str(made["1.1"].audio),
            "line": None,
            "kind": "size_mismatch",
            "detail": f"4 bytes, sidecar says {44 + 1600}",
        }
    ]
    text = report.summary().splitlines()
    assert text[0] == str(report.problems[0]) and text[-1].startswith("verify: 1 problem(s)")


def test_fast_path_reports_broken_structure_that_verify_relies_on(
    store: tuple[Path, Path, dict[str, RecordingPaths]],
) -> None:
    """Without --deep: wrong state, missing or ill-typed bytes/sha256 are still caught."""
    root, ledger_path, made = store
    doc = json.loads(made["1.1"].sidecar.read_text())
    doc["recording"]["sha256"] = "not-a-hash"
    made["1.1"].sidecar.write_text(json.dumps(doc))
    doc = json.loads(made["1.2"].sidecar.read_text())
    del doc["recording"]["bytes"]
    made["1.2"].sidecar.write_text(json.dumps(doc))
    problems = verify(root, ledger_path).problems
    assert kinds(problems) == [("1.1.json", "malformed_sidecar"), ("1.2.json", "malformed_sidecar")]
    assert "sha256" in problems[0].detail and "bytes" in problems[1].detail


def test_deep_adds_full_schema_validation_of_sidecars_and_ledger(
    store: tuple[Path, Path, dict[str, RecordingPaths]],
) -> None:
    root, ledger_path, made = store
    assert verify(root, ledger_path, deep=True).ok
    doc = json.loads(made["1.1"].sidecar.read_text())
    doc["language"] = "not a language!"  # nothing verify relies on
    made["1.1"].sidecar.write_text(json.dumps(doc))
    Ledger(ledger_path, validate=False).append(
        {"type": "deleted", "at": "2026-11-24T12:00:00.000Z"}
    )
    assert verify(root, ledger_path).ok
    deep = verify(root, ledger_path, deep=True).problems
    assert deep[0].kind == "malformed_sidecar" and "language" in deep[0].detail
    assert {(p.kind, p.line_no) for p in deep[1:]} == {("ledger_schema", 4)}  # one per error


def test_scan_finds_what_paths_iter_recordings_finds(
    store: tuple[Path, Path, dict[str, RecordingPaths]], tmp_path: Path
) -> None:
    """Verify's own scan (checks per day folder) sees the same recordings as the paths module:
    not a folder named like an impossible date, nor a date folder symlinked out of the tree."""
    from callconsent.evidence.paths import iter_recordings
    from callconsent.lifecycle.verify import _recordings

    root, _, made = store
    bad = root / "2026" / "13" / "45"
    bad.mkdir(parents=True)
    (bad / "7.7.wav").write_bytes(pcm_header(0))
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "8.8.wav").write_bytes(pcm_header(0))
    (root / "2026" / "11" / "25").symlink_to(outside)
    (made["1.1"].directory / "notes.txt").write_text("x")
    assert list(_recordings(root)) == list(iter_recordings(root))
    assert [f.paths.uniqueid for f in _recordings(root)] == ["1.1", "1.2", "1.3", "1.4"]
