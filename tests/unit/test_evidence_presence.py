"""Evidence that never lies about being gone (issue 12, items 1 and 2).

"Already deleted" only where a tombstone or a ledger ``deleted`` line says so. A recordings
folder that looks unmounted is refused by erase, withdraw, export and purge (exit 2, nothing
changed); verify reports missing evidence and symlinked folders instead of "intact".
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest

from callconsent.config import Config
from callconsent.evidence.ledger import iter_entries
from tests.support.cli import run
from tests.support.lifecycle_fixtures import NUMBER, T0, Store, make_config, make_store

NOW91 = (T0 + timedelta(days=91)).isoformat()
DAY = "2026/01/05"


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Store, Config]:
    store = make_store(tmp_path)
    store.call("4000.1")
    store.call("4000.2", purposes=("training",))
    store.call("4000.3", purposes=("documentation", "training"))
    return store, make_config(tmp_path)


def _unmount(store: Store, *, keep_mountpoint: bool = True) -> Path:
    """Move the recordings away, as an unmounted volume leaves an empty mount point."""
    away = store.root.with_name("volume")
    store.root.rename(away)
    if keep_mountpoint:
        store.root.mkdir()
    return away


def _remount(store: Store, away: Path) -> None:
    if store.root.exists():
        store.root.rmdir()
    away.rename(store.root)


def _types(store: Store) -> list[str]:
    return [line.entry["type"] for line in iter_entries(store.ledger_path) if line.entry]


def _final_sidecars(store: Store) -> list[str]:
    states = []
    for path in sorted((store.root / DAY).glob("*.json")):
        states.append(json.loads(path.read_text())["state"])
    return states


ERASE = ("erase", "--number", NUMBER, "--reason", "t-1")
REFUSED = {
    "erase": ERASE,
    "withdraw": ("withdraw", "--number", NUMBER, "--reason", "t-2"),
    "export": ("export", "--number", NUMBER, "--reason", "t-3"),
    "purge": ("purge", "--now", NOW91),
    "erase-dry-run": (*ERASE, "--dry-run"),
}


@pytest.mark.parametrize("command", sorted(REFUSED))
def test_a_job_on_an_unmounted_recordings_folder_is_refused_and_changes_nothing(
    command: str, setup: tuple[Store, Config], capsys: pytest.CaptureFixture[str]
) -> None:
    store, config = setup
    before = _types(store)
    away = _unmount(store)
    assert run(config, *REFUSED[command]) == 2
    captured = capsys.readouterr()
    assert f"error: the recordings folder {store.root} is empty" in captured.err
    assert "finished recording(s) that were never deleted: is its volume mounted?" in captured.err
    assert "already_deleted" not in captured.out and "deleted:" not in captured.out
    _remount(store, away)
    assert _types(store) == before  # no deleted, withdrawn or export line
    assert _final_sidecars(store) == ["final", "final", "final"]
    assert len(list((store.root / DAY).glob("*.wav"))) == 3
    assert not list((store.ledger_path.parent / "exports").glob("*.zip"))


def test_erase_with_the_recordings_folder_missing_names_it(
    setup: tuple[Store, Config], capsys: pytest.CaptureFixture[str]
) -> None:
    store, config = setup
    _unmount(store, keep_mountpoint=False)
    assert run(config, *ERASE) == 2
    assert f"the recordings folder {store.root} is missing" in capsys.readouterr().err


def test_a_recording_gone_without_tombstone_or_deleted_line_is_missing_not_already_deleted(
    setup: tuple[Store, Config], capsys: pytest.CaptureFixture[str]
) -> None:
    store, config = setup
    (store.root / DAY / "4000.1.wav").unlink()
    (store.root / DAY / "4000.1.json").unlink()  # removed by hand: no tombstone
    assert run(config, "erase", "--call-id", "4000.1", "--reason", "t-4", "--json") == 1
    out = json.loads(capsys.readouterr().out)
    (outcome,) = out["outcomes"]
    assert outcome["action"] == "skipped" and outcome["detail"].startswith("evidence missing")
    assert out["complete"] is False
    assert "deleted" not in _types(store)


def test_withdraw_of_a_recording_gone_without_trace_reports_it_skipped(
    setup: tuple[Store, Config], capsys: pytest.CaptureFixture[str]
) -> None:
    store, config = setup
    (store.root / DAY / "4000.2.wav").unlink()
    (store.root / DAY / "4000.2.json").unlink()
    assert run(config, "withdraw", "--call-id", "4000.2", "--reason", "t-5", "--json") == 1
    out = json.loads(capsys.readouterr().out)
    assert out["already_withdrawn"] == []
    assert out["skipped"][0]["detail"].startswith("evidence missing")


def test_a_deleted_ledger_line_still_makes_it_already_deleted_when_the_tombstone_is_gone(
    setup: tuple[Store, Config], capsys: pytest.CaptureFixture[str]
) -> None:
    store, config = setup
    assert run(config, "erase", "--call-id", "4000.1", "--reason", "t-6") == 0
    (store.root / DAY / "4000.1.json").unlink()  # the tombstone lost; the ledger remembers
    capsys.readouterr()
    assert run(config, "erase", "--call-id", "4000.1", "--reason", "t-7", "--json") == 0
    (outcome,) = json.loads(capsys.readouterr().out)["outcomes"]
    assert outcome["action"] == "already_deleted"
    assert outcome["detail"] == "ledger deleted line, no files"


def _verify(config: Config, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object]]:
    code = run(config, "verify", "--json")
    return code, json.loads(capsys.readouterr().out)


def _kinds(report: dict[str, object]) -> list[str]:
    problems = report["problems"]
    assert isinstance(problems, list)
    return [p["kind"] for p in problems]


def test_verify_on_an_unmounted_recordings_folder_is_not_intact(
    setup: tuple[Store, Config], capsys: pytest.CaptureFixture[str]
) -> None:
    store, config = setup
    _unmount(store)
    code, report = _verify(config, capsys)
    assert code == 1 and report["ok"] is False
    assert _kinds(report) == ["recordings_unavailable"] + ["evidence_missing"] * 3


def test_verify_reports_a_recording_and_sidecar_deleted_without_tombstone(
    setup: tuple[Store, Config], capsys: pytest.CaptureFixture[str]
) -> None:
    store, config = setup
    (store.root / DAY / "4000.3.wav").unlink()
    (store.root / DAY / "4000.3.json").unlink()
    code, report = _verify(config, capsys)
    assert code == 1 and _kinds(report) == ["evidence_missing"]
    problems = report["problems"]
    assert isinstance(problems, list)
    assert problems[0]["path"].endswith(f"{DAY}/4000.3.wav")
    assert "ledger line 6 records this recording as finished" in problems[0]["detail"]


def test_verify_reports_a_whole_day_folder_deleted(
    setup: tuple[Store, Config], capsys: pytest.CaptureFixture[str]
) -> None:
    store, config = setup
    store.call("5000.1", when=T0 + timedelta(days=1))
    for path in (store.root / DAY).iterdir():
        path.unlink()
    (store.root / DAY).rmdir()
    code, report = _verify(config, capsys)
    assert code == 1 and _kinds(report) == ["evidence_missing"] * 3


def test_verify_after_a_real_erase_and_purge_is_intact(
    setup: tuple[Store, Config], capsys: pytest.CaptureFixture[str]
) -> None:
    store, config = setup
    assert run(config, "erase", "--call-id", "4000.1", "--reason", "t-8") == 0
    assert run(config, "purge", "--now", NOW91) == 0
    (store.root / DAY / "4000.1.json").unlink()  # even without its tombstone: deleted line
    capsys.readouterr()
    code, report = _verify(config, capsys)
    assert (code, _kinds(report)) == (0, [])


def test_verify_and_purge_report_a_day_folder_that_is_a_symlink(
    setup: tuple[Store, Config], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, config = setup
    store.call("5000.1", when=T0 + timedelta(days=1))
    other_disk = tmp_path / "other-disk" / "05"
    other_disk.parent.mkdir()
    (store.root / DAY).rename(other_disk)
    os.symlink(other_disk, store.root / DAY)  # an admin moved the day to another disk
    code, report = _verify(config, capsys)
    assert code == 1
    assert _kinds(report) == ["symlinked_folder"]
    problems = report["problems"]
    assert isinstance(problems, list)
    assert f"a symlink to {other_disk}" in problems[0]["detail"]
    assert run(config, "purge", "--now", NOW91, "--json") == 1
    purge = json.loads(capsys.readouterr().out)
    assert any(f"{DAY}: a symlink to {other_disk}" in p for p in purge["problems"])
    assert purge["counts"] == {"deleted": 1}  # 5000.1; the symlinked day is left alone
    assert (other_disk / "4000.1.wav").exists()


def test_purge_refusal_names_the_symlinked_folder_when_it_held_every_recording(
    setup: tuple[Store, Config], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, config = setup
    other_disk = tmp_path / "other-disk"
    (store.root / "2026").rename(other_disk)
    os.symlink(other_disk, store.root / "2026")
    assert run(config, "purge", "--now", NOW91) == 2
    err = capsys.readouterr().err
    assert f"symlinked folders are never followed: 2026 -> {other_disk}" in err
