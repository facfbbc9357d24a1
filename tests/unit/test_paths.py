"""Recording paths come from Asterisk's uniqueid and the UTC date only."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callconsent.evidence.paths import (
    DATE_DIR_MODE,
    UNIQUEID_RE,
    UnsafeIdentifier,
    ensure_directory,
    iter_recordings,
    paths_from_relative,
    recording_paths,
)

WHEN = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_paths_use_utc_date_folders_and_uniqueid(tmp_path: Path) -> None:
    p = recording_paths(tmp_path, "1732451234.12", WHEN)
    assert p.relative == "2026/11/24/1732451234.12.wav"
    assert p.audio == tmp_path / "2026/11/24/1732451234.12.wav"
    assert p.sidecar == tmp_path / "2026/11/24/1732451234.12.json"
    assert p.directory == tmp_path / "2026/11/24"
    assert p.uniqueid == "1732451234.12"


def test_date_folder_is_taken_in_utc_not_local_time(tmp_path: Path) -> None:
    copenhagen_just_after_midnight = datetime(
        2026, 11, 25, 0, 30, tzinfo=timezone(timedelta(hours=1))
    )
    assert recording_paths(tmp_path, "1.1", copenhagen_just_after_midnight).relative.startswith(
        "2026/11/24/"
    )


def test_naive_time_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="naive"):
        recording_paths(tmp_path, "1.1", datetime(2026, 11, 24))


def test_recording_paths_creates_nothing(tmp_path: Path) -> None:
    recording_paths(tmp_path, "1.1", WHEN)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "uniqueid",
    [
        "",
        "..",
        "../x",
        "a/b",
        "a..b",
        ".hidden",
        "-x",
        "a b",
        "x\n",
        "a\x00b",
        "é1",
        "a" * 65,
        "1.1/../../etc/passwd",
        "C:\\x",
        "~root",
    ],
)
def test_unsafe_uniqueid_is_refused(tmp_path: Path, uniqueid: str) -> None:
    with pytest.raises(UnsafeIdentifier):
        recording_paths(tmp_path, uniqueid, WHEN)


def test_date_folder_symlinked_outside_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "rec"
    outside = tmp_path / "outside"
    (root / "2026/11").mkdir(parents=True)
    outside.mkdir()
    (root / "2026/11/24").symlink_to(outside)
    with pytest.raises(UnsafeIdentifier, match="outside"):
        recording_paths(root, "1.1", WHEN)


@settings(max_examples=400, deadline=None)
@given(uniqueid=st.text(max_size=80) | st.from_regex(UNIQUEID_RE, fullmatch=True))
def test_no_generated_uniqueid_yields_a_path_outside_recordings_dir(uniqueid: str) -> None:
    root = Path("/srv/recordings")
    try:
        p = recording_paths(root, uniqueid, WHEN)
    except UnsafeIdentifier:
        return
    for path in (p.audio, p.sidecar):
        assert path.resolve().is_relative_to(root)
        assert path.parent == root / "2026/11/24"
        assert path.stem == uniqueid
    assert "/" not in uniqueid and ".." not in uniqueid


def test_paths_from_relative_round_trips_and_refuses_other_shapes(tmp_path: Path) -> None:
    p = recording_paths(tmp_path, "1732451234.12", WHEN)
    assert paths_from_relative(tmp_path, p.relative) == p
    for bad in ["2026/11/24/../x.wav", "/etc/passwd", "2026/13/40/1.1.wav", "2026/11/24/1.1.mp3"]:
        with pytest.raises(UnsafeIdentifier):
            paths_from_relative(tmp_path, bad)


def test_ensure_directory_creates_date_folders_with_group_mode_despite_umask(
    tmp_path: Path,
) -> None:
    p = recording_paths(tmp_path, "1.1", WHEN)
    old = os.umask(0o077)
    try:
        ensure_directory(p)
        ensure_directory(p)  # idempotent
    finally:
        os.umask(old)
    for folder in (tmp_path / "2026", tmp_path / "2026/11", p.directory):
        assert stat.S_IMODE(folder.stat().st_mode) == DATE_DIR_MODE
    assert DATE_DIR_MODE & 0o007 == 0  # nothing for others (R32)


def test_iter_recordings_pairs_audio_and_sidecar_and_passes_other_files_aside(
    tmp_path: Path,
) -> None:
    a = recording_paths(tmp_path, "1.1", WHEN)
    b = recording_paths(tmp_path, "1.2", WHEN)
    c = recording_paths(tmp_path, "2.1", WHEN + timedelta(days=40))
    ensure_directory(a)
    ensure_directory(c)
    a.audio.write_bytes(b"x")
    a.sidecar.write_text("{}")
    b.sidecar.write_text("{}")
    c.audio.write_bytes(b"x")
    (a.directory / ".1.1.json.abc.tmp").write_text("{")
    (tmp_path / "notes.txt").write_text("ignored: not a date folder")
    others: list[Path] = []
    found = [
        (f.paths.relative, f.has_audio, f.has_sidecar)
        for f in iter_recordings(tmp_path, on_other=others.append)
    ]
    assert found == [
        ("2026/11/24/1.1.wav", True, True),
        ("2026/11/24/1.2.wav", False, True),
        ("2027/01/03/2.1.wav", True, False),
    ]
    assert others == [a.directory / ".1.1.json.abc.tmp"]
