"""The sidecar: schema-valid, atomic, finalised from the WAV, tombstoned without personal data."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callconsent.evidence import sidecar
from callconsent.evidence.fsio import (
    MalformedDocument,
    atomic_write_json,
    parse_stamp,
    read_json,
    schema_validator,
    utc_stamp,
)
from callconsent.evidence.paths import RecordingPaths, ensure_directory, recording_paths
from callconsent.evidence.wav import RecordingNotClosed, pcm_header
from callconsent.names import Status

T0 = datetime(2026, 11, 24, 12, 0, 0, 123000, tzinfo=UTC)
SHA = "ab" * 32
HOSTILE = '../../etc/passwd"; rm -rf / $HOME `x`\r\nX-Injected: 1\u2028\ud800' + "9" * 200


def new_doc(paths: RecordingPaths, **call: Any) -> dict[str, Any]:
    stamp = utc_stamp(T0)
    consent = {
        "status": "given",
        "reason": "digit",
        "digit": "1",
        "question_id": "training_v1.question",
        "question_version": SHA,
        "question_started_at": stamp,
        "question_ended_at": stamp,
        "digit_at": stamp,
        "attempts": 1,
    }
    return sidecar.recording_document(
        paths,
        call={
            "uniqueid": paths.uniqueid,
            "linkedid": paths.uniqueid,
            "channel": "PJSIP/lab-caller-00000001",
            "route": "support",
            "caller_number": "+4512345678",
            "caller_name": "Test",
            "dialled_number": "support",
        }
        | call,
        started_at=T0,
        language="da",
        notices=[
            {
                "id": "training_v1.notice",
                "language": "da",
                "version": SHA,
                "played": True,
                "started_at": stamp,
                "ended_at": stamp,
            }
        ],
        purposes=[
            {
                "purpose": "training",
                "lawful_basis": "6(1)(a)",
                "retention_days": 30,
                "consent": consent,
            },
            {
                "purpose": "documentation",
                "lawful_basis": "6(1)(f)",
                "retention_days": 90,
                "consent": None,
            },
        ],
        delete_after=T0 + timedelta(days=30),
        tags=["purpose:training", "consent:given"],
        software={"name": "callconsent", "version": "0.1.0"},
        config_sha256=SHA,
    )


@pytest.fixture
def paths(tmp_path: Path) -> RecordingPaths:
    p = recording_paths(tmp_path, "1732451234.12", T0)
    ensure_directory(p)
    return p


def test_created_sidecar_is_schema_valid_and_in_recording_state(paths: RecordingPaths) -> None:
    sidecar.create(paths, new_doc(paths))
    doc = sidecar.load(paths.sidecar)
    assert doc["state"] == "recording" and doc["recording"]["sha256"] is None
    assert doc == new_doc(paths)
    assert stat.S_IMODE(paths.sidecar.stat().st_mode) == 0o640


def test_create_refuses_to_overwrite_an_existing_sidecar(paths: RecordingPaths) -> None:
    sidecar.create(paths, new_doc(paths))
    with pytest.raises(FileExistsError):
        sidecar.create(paths, new_doc(paths, caller_name="second"))
    assert sidecar.load(paths)["call"]["caller_name"] == "Test"
    assert sorted(p.name for p in paths.directory.iterdir()) == [paths.sidecar.name]


def test_create_validates_before_writing(paths: RecordingPaths) -> None:
    doc = new_doc(paths)
    doc["purposes"][0]["consent"]["status"] = "maybe"
    with pytest.raises(sidecar.SidecarInvalid, match="maybe"):
        sidecar.create(paths, doc)
    assert list(paths.directory.iterdir()) == []


def test_create_refuses_a_document_for_another_call(paths: RecordingPaths) -> None:
    with pytest.raises(MalformedDocument, match="expected"):
        sidecar.create(paths, new_doc(paths, uniqueid="1732451234.13"))


def test_hostile_caller_number_is_stored_verbatim_not_in_path(paths: RecordingPaths) -> None:
    sidecar.create(
        paths, new_doc(paths, caller_number=HOSTILE, caller_name=HOSTILE[::-1], dialled_number=None)
    )
    loaded = sidecar.load(paths)["call"]
    assert loaded["caller_number"] == HOSTILE and loaded["caller_name"] == HOSTILE[::-1]
    raw = paths.sidecar.read_bytes()
    assert raw.isascii() and b"\r" not in raw and b"X-Injected: 1\n" not in raw
    root = paths.directory.parents[2]
    assert [p.relative_to(root).as_posix() for p in root.rglob("*")] == [
        "2026",
        "2026/11",
        "2026/11/24",
        "2026/11/24/1732451234.12.json",
    ]


def test_sidecar_write_is_atomic_no_partial_file_on_crash(
    paths: RecordingPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure between writing the temp file and renaming it leaves the old file intact."""
    sidecar.create(paths, new_doc(paths))
    before = paths.sidecar.read_bytes()
    paths.audio.write_bytes(pcm_header(320) + b"\x00" * 320)

    def crash(*_: object) -> None:
        raise OSError("power lost")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power lost"):
        sidecar.finalise(paths, ended_at=T0)
    assert paths.sidecar.read_bytes() == before
    assert {p.name for p in paths.directory.iterdir()} == {paths.audio.name, paths.sidecar.name}


def test_new_sidecar_is_absent_not_partial_when_creation_fails(
    paths: RecordingPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*_: object) -> None:
        raise OSError("power lost")

    monkeypatch.setattr(os, "link", crash)
    with pytest.raises(OSError, match="power lost"):
        sidecar.create(paths, new_doc(paths))
    assert list(paths.directory.iterdir()) == []


def test_finalise_records_size_duration_and_sha256_of_the_audio(paths: RecordingPaths) -> None:
    sidecar.create(paths, new_doc(paths))
    content = pcm_header(32000) + os.urandom(32000)
    paths.audio.write_bytes(content)
    doc = sidecar.finalise(paths, ended_at=T0 + timedelta(seconds=5))
    assert doc["state"] == "final"
    assert doc["recording"] == {
        "file": "2026/11/24/1732451234.12.wav",
        "format": "wav",
        "started_at": utc_stamp(T0),
        "ended_at": "2026-11-24T12:00:05.123Z",
        "duration_seconds": 2.0,
        "bytes": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "has_audio": True,
    }
    assert sidecar.load(paths) == doc
    assert doc["updated_at"] == "2026-11-24T12:00:05.123Z"


def test_finalise_makes_a_recording_written_under_umask_002_mode_0640(
    paths: RecordingPaths,
) -> None:
    sidecar.create(paths, new_doc(paths))
    paths.audio.write_bytes(pcm_header(32000) + os.urandom(32000))
    os.chmod(paths.audio, 0o664)  # as MixMonitor writes it under Asterisk's umask 002
    sidecar.finalise(paths, ended_at=T0)
    assert stat.S_IMODE(paths.audio.stat().st_mode) == 0o640


def test_finalise_tightens_the_audio_mode_before_the_sidecar_says_final(
    paths: RecordingPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    sidecar.create(paths, new_doc(paths))
    paths.audio.write_bytes(pcm_header(32000) + os.urandom(32000))
    os.chmod(paths.audio, 0o664)
    seen: list[int] = []
    write = sidecar.write

    def spy(where: RecordingPaths, doc: dict[str, Any], **kwargs: Any) -> None:
        seen.append(stat.S_IMODE(where.audio.stat().st_mode))
        write(where, doc, **kwargs)

    monkeypatch.setattr(sidecar, "write", spy)
    sidecar.finalise(paths, ended_at=T0)
    assert seen == [0o640]  # a reader that sees the final sidecar sees the final mode


def test_finalise_of_header_only_wav_reports_no_audio(paths: RecordingPaths) -> None:
    sidecar.create(paths, new_doc(paths))
    paths.audio.write_bytes(pcm_header(0))
    doc = sidecar.finalise(paths, ended_at=T0)
    assert doc["recording"]["has_audio"] is False and doc["recording"]["bytes"] == 44


def test_finalise_refuses_a_wav_still_being_written(paths: RecordingPaths) -> None:
    sidecar.create(paths, new_doc(paths))
    paths.audio.write_bytes(pcm_header(None) + b"\x00" * 640)
    with pytest.raises(RecordingNotClosed):
        sidecar.finalise(paths, ended_at=T0)
    assert sidecar.load(paths)["state"] == "recording"


def test_finalise_is_idempotent(paths: RecordingPaths) -> None:
    sidecar.create(paths, new_doc(paths))
    paths.audio.write_bytes(pcm_header(2) + b"\x01\x02")
    first = sidecar.finalise(paths, ended_at=T0)
    assert sidecar.finalise(paths, ended_at=T0 + timedelta(hours=1)) == first


async def test_finalise_when_closed_waits_for_mixmonitor_to_close(paths: RecordingPaths) -> None:
    sidecar.create(paths, new_doc(paths))
    paths.audio.write_bytes(pcm_header(None) + b"\x00" * 320)

    async def mixmonitor_closes_later() -> None:
        await asyncio.sleep(0.05)
        paths.audio.write_bytes(pcm_header(320) + b"\x00" * 320)

    closer = asyncio.create_task(mixmonitor_closes_later())
    async with asyncio.timeout(5):
        doc = await sidecar.finalise_when_closed(paths, ended_at=T0, interval=0.01)
    await closer
    assert doc["state"] == "final" and doc["recording"]["bytes"] == 364


def test_tombstone_deletes_audio_and_keeps_no_personal_data(paths: RecordingPaths) -> None:
    sidecar.create(paths, new_doc(paths, caller_number=HOSTILE))
    paths.audio.write_bytes(pcm_header(2) + b"\x01\x02")
    final = sidecar.finalise(paths, ended_at=T0)
    tomb = sidecar.tombstone(paths, reason="retention", at=T0 + timedelta(days=31))
    assert not paths.audio.exists()
    assert tomb == {
        "schema_version": 1,
        "state": "tombstone",
        "call": {"uniqueid": "1732451234.12"},
        "recording": {"file": paths.relative, "sha256": final["recording"]["sha256"]},
        "deleted_at": "2026-12-25T12:00:00.123Z",
        "reason": "retention",
        "updated_at": "2026-12-25T12:00:00.123Z",
    }
    text = paths.sidecar.read_text()
    assert "4512345678" not in text and "Test" not in text and "passwd" not in text
    assert sidecar.load(paths) == tomb


def test_tombstone_is_idempotent_and_works_without_a_sidecar(paths: RecordingPaths) -> None:
    paths.audio.write_bytes(pcm_header(0))
    first = sidecar.tombstone(paths, reason="no_audio", at=T0)
    assert first["recording"]["sha256"] == hashlib.sha256(pcm_header(0)).hexdigest()
    assert sidecar.tombstone(paths, reason="erased", at=T0 + timedelta(days=1)) == first


def test_tombstone_refuses_a_malformed_sidecar_and_deletes_nothing(paths: RecordingPaths) -> None:
    paths.sidecar.write_text('{"state": "final", "call": ')
    paths.audio.write_bytes(pcm_header(2) + b"\x01\x02")
    with pytest.raises(MalformedDocument) as err:
        sidecar.tombstone(paths, reason="retention", at=T0)
    assert err.value.path == paths.sidecar
    assert paths.audio.exists() and paths.sidecar.read_text().startswith('{"state"')


def test_final_state_requires_every_outcome_field(paths: RecordingPaths) -> None:
    doc = new_doc(paths)
    doc["state"] = "final"
    with pytest.raises(sidecar.SidecarInvalid) as err:
        sidecar.validate(doc)
    assert any("recording.sha256" in e for e in err.value.errors)


def test_unknown_state_is_invalid(paths: RecordingPaths) -> None:
    doc = new_doc(paths)
    doc["state"] = "paused"
    with pytest.raises(sidecar.SidecarInvalid):
        sidecar.validate(doc)


def test_unexpected_fields_are_rejected(paths: RecordingPaths) -> None:
    doc = new_doc(paths)
    doc["call"]["cpr"] = "010101-1234"
    with pytest.raises(sidecar.SidecarInvalid, match="cpr"):
        sidecar.validate(doc)
    doc = new_doc(paths)
    doc["extra"] = 1
    with pytest.raises(sidecar.SidecarInvalid, match="extra"):
        sidecar.validate(doc)


def test_schema_enums_match_the_python_names() -> None:
    defs = schema_validator("sidecar.schema.json").schema  # the $ref wrapper
    assert defs == {"$ref": "urn:callconsent:schema:sidecar:1"}
    sidecar_schema = json.loads(
        (Path(sidecar.__file__).parents[1] / "schemas/sidecar.schema.json").read_text()
    )
    ledger_schema = json.loads(
        (Path(sidecar.__file__).parents[1] / "schemas/ledger-entry.schema.json").read_text()
    )
    assert sidecar_schema["$defs"]["consent_status"]["enum"] == list(sidecar.ConsentStatus)
    assert ledger_schema["$defs"]["call_status"]["enum"] == list(Status)


def test_every_known_reason_is_a_schema_token() -> None:
    token = schema_validator("sidecar.schema.json", "/$defs/token")
    for reason in [*sidecar.ConsentReason, *sidecar.TombstoneReason]:
        assert token.is_valid(reason.value), reason


def test_utc_stamp_has_milliseconds_and_z_and_round_trips() -> None:
    local = datetime(2026, 11, 24, 13, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert utc_stamp(local) == "2026-11-24T12:00:00.123Z"
    assert parse_stamp("2026-11-24T12:00:00.123Z") == datetime(
        2026, 11, 24, 12, 0, 0, 123000, tzinfo=UTC
    )
    for bad in [
        "2026-11-24T12:00:00Z",
        "2026-11-24T12:00:00.123+00:00",
        "2026-11-24 12:00:00.123Z",
    ]:
        with pytest.raises(ValueError, match="timestamp"):
            parse_stamp(bad)
    with pytest.raises(ValueError, match="naive"):
        utc_stamp(datetime(2026, 11, 24))


@given(
    st.datetimes(
        min_value=datetime(1000, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))]),
    )
)
def test_utc_stamp_is_the_strftime_form_and_parses_back(dt: datetime) -> None:
    u = dt.astimezone(UTC)
    assert utc_stamp(dt) == u.strftime("%Y-%m-%dT%H:%M:%S.") + f"{u.microsecond // 1000:03d}Z"
    assert parse_stamp(utc_stamp(dt)) == u.replace(microsecond=u.microsecond // 1000 * 1000)


def test_read_json_reports_malformed_files_with_their_path(tmp_path: Path) -> None:
    for name, content in [("a.json", b"{"), ("b.json", b"[1]"), ("c.json", b"\xff\xfe")]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(MalformedDocument) as err:
            read_json(tmp_path / name)
        assert err.value.path == tmp_path / name


def test_atomic_write_applies_file_mode_despite_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "x.json", {"a": 1}, mode=0o600)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.json").stat().st_mode) == 0o600
    assert read_json(tmp_path / "x.json") == {"a": 1}


@pytest.mark.parametrize("overwrite", [True, False])
def test_atomic_write_returns_the_written_files_status_and_leaves_no_temporary_file(
    tmp_path: Path, overwrite: bool
) -> None:
    target = tmp_path / "x.json"
    if overwrite:
        target.write_text("{}")
    synced: list[Path] = []

    got = atomic_write_json(target, {"a": 1}, overwrite=overwrite, dir_sync=synced.append)

    now = target.stat()
    assert (got.st_ino, got.st_size, got.st_mtime_ns) == (now.st_ino, now.st_size, now.st_mtime_ns)
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
    assert synced == [tmp_path]


def test_a_tombstone_syncs_its_rename_itself_and_leaves_only_the_unlink_to_dir_sync(
    tmp_path: Path,
) -> None:
    where = recording_paths(tmp_path, "1764000000.42", datetime(2026, 11, 24, tzinfo=UTC))
    ensure_directory(where)
    where.audio.write_bytes(b"RIFF")
    later: list[Path] = []

    sidecar.write(
        where,
        sidecar.prepare_tombstone(where, reason="withdrawn", at=datetime(2026, 11, 24, tzinfo=UTC)),
        dir_sync=later.append,
    )

    assert not where.audio.exists()
    assert later == [where.directory]  # only the unlink's fsync was left to the caller
