"""The ledger's anchor (issue 12, item 3): the head and the holds kept outside the ledger, so a
cut or edited tail is seen by verify and a hold survives it."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from structlog.testing import capture_logs

from callconsent.cli.main import main
from callconsent.config import Config, ConfigError, load_config
from callconsent.evidence import ledger as ledger_module
from callconsent.evidence.anchor import SLOT, Head, default_anchor_path, read_anchor, read_head
from callconsent.evidence.ledger import Ledger, head, line_sha256
from tests.support.cli import cli_logging, run  # noqa: F401 - cli_logging is a fixture
from tests.support.lifecycle_fixtures import T0, Store, make_config, make_store

NOW91 = (T0 + timedelta(days=91)).isoformat()
ENV = {"CALLCONSENT_ARI_PASSWORD": "x"}


def _config_with_anchor(tmp_path: Path, anchor: Path | str) -> Config:
    path = make_config(tmp_path).path
    data = yaml.safe_load(path.read_text("utf-8"))
    data["storage"]["anchor_path"] = str(anchor)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")
    return load_config(path, env=ENV)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Store, Config, Path]:
    anchor = tmp_path / "other-volume" / "ledger.anchor"
    anchor.parent.mkdir()
    config = _config_with_anchor(tmp_path, anchor)
    store = make_store(tmp_path)
    store.ledger = Ledger(store.ledger_path, anchor_path=anchor)
    store.call("4000.1")
    store.call("4000.3", purposes=("documentation", "training"))
    return store, config, anchor


def _hold(config: Config, call_id: str) -> int:
    return run(
        config,
        "hold",
        "set",
        "--call-id",
        call_id,
        "--reason",
        "dispute",
        "--case-ref",
        "C-1",
        "--review-date",
        "2026-12-01",
        "--now",
        T0.isoformat(),
    )


def _drop_last_line(path: Path) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]))


def _verify(config: Config, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object]]:
    capsys.readouterr()
    code = run(config, "verify", "--json")
    return code, json.loads(capsys.readouterr().out)


def _kinds(report: dict[str, object]) -> list[str]:
    problems = report["problems"]
    assert isinstance(problems, list)
    return [p["kind"] for p in problems]


def test_every_append_writes_the_head_and_the_holds_to_the_configured_anchor(
    setup: tuple[Store, Config, Path],
) -> None:
    store, config, anchor_path = setup
    assert config.storage.anchor_path == anchor_path
    assert _hold(config, "4000.3") == 0
    anchor = read_anchor(anchor_path)
    assert anchor is not None
    assert (anchor.seq, anchor.sha256) == head(store.ledger_path)
    assert anchor.bytes == store.ledger_path.stat().st_size
    assert anchor.holds == {"4000.3"}
    assert not default_anchor_path(store.ledger_path).exists()  # only where the config says
    assert not list(anchor_path.parent.glob(".*.tmp"))


def test_verify_says_where_the_anchor_is_and_is_intact_when_it_matches(
    setup: tuple[Store, Config, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, config, anchor_path = setup
    code, report = _verify(config, capsys)
    assert code == 0
    assert report["anchor"] == {"path": str(anchor_path), "seq": 4}
    run(config, "verify")
    assert f"ledger anchor: {anchor_path} (head seq 4)" in capsys.readouterr().out


def test_verify_reports_the_last_line_cut_from_the_ledger(
    setup: tuple[Store, Config, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    store, config, _ = setup
    _drop_last_line(store.ledger_path)  # the chain alone cannot see this
    code, report = _verify(config, capsys)
    assert code == 1 and _kinds(report) == ["ledger_anchor"]
    problems = report["problems"]
    assert isinstance(problems, list)
    assert problems[0]["detail"] == "entry seq 4 is missing (ledger cut short?)"


def test_verify_reports_the_last_line_edited(
    setup: tuple[Store, Config, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    store, config, _ = setup
    *lines, last = store.ledger_path.read_text("ascii").splitlines(keepends=True)
    last = last.replace('"source":"app"', '"source":"cli"')  # the chain cannot see this
    store.ledger_path.write_text("".join([*lines, last]), "ascii")
    code, report = _verify(config, capsys)
    assert code == 1 and _kinds(report) == ["ledger_anchor"]
    problems = report["problems"]
    assert isinstance(problems, list)
    assert problems[0]["detail"] == "entry seq 4 differs from the anchor"


def test_an_append_after_a_cut_keeps_the_anchor_so_verify_still_sees_the_cut(
    setup: tuple[Store, Config, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    store, config, anchor_path = setup
    _drop_last_line(store.ledger_path)
    with capture_logs() as logs:
        assert _hold(config, "4000.1") == 0  # appends a hold_set line
    assert any(e["event"] == "ledger_anchor_mismatch" for e in logs)
    anchor = read_anchor(anchor_path)
    assert anchor is not None and anchor.seq == 4
    code, report = _verify(config, capsys)
    assert code == 1 and "ledger_anchor" in _kinds(report)


def test_a_hold_whose_ledger_line_was_cut_still_stops_the_purge_via_the_audit_log(
    setup: tuple[Store, Config, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    store, config, _ = setup
    assert _hold(config, "4000.3") == 0
    _drop_last_line(store.ledger_path)  # the trailing hold_set line
    assert run(config, "index", "rebuild") == 0  # the index forgets the hold too
    capsys.readouterr()
    with capture_logs() as logs:  # the purge's deleted line meets the anchor of the cut
        assert run(config, "purge", "--now", NOW91, "--json") == 1
    assert [e["event"] for e in logs] == ["ledger_anchor_mismatch"]
    out = json.loads(capsys.readouterr().out)
    assert out["counts"] == {"deleted": 1, "held": 1}
    assert [h["call_id"] for h in out["held"]] == ["4000.3"]
    assert any("4000.3: hold recorded in the audit log" in p for p in out["problems"])
    assert (store.root / "2026/01/05/4000.3.wav").exists()


def test_a_hold_cut_from_ledger_and_audit_log_still_stops_the_purge_via_the_anchor(
    setup: tuple[Store, Config, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    store, config, anchor_path = setup
    assert _hold(config, "4000.3") == 0
    _drop_last_line(store.ledger_path)
    (store.ledger_path.parent / "audit.jsonl").unlink()
    assert run(config, "index", "rebuild") == 0
    capsys.readouterr()
    assert run(config, "purge", "--now", NOW91) == 1
    out = capsys.readouterr().out
    assert "held: 4000.3" in out
    assert f"4000.3: hold recorded in the ledger anchor {anchor_path} but not in the ledger" in out
    assert (store.root / "2026/01/05/4000.3.wav").exists()


def test_erase_also_keeps_a_recording_held_only_per_the_anchor(
    setup: tuple[Store, Config, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    store, config, _ = setup
    assert _hold(config, "4000.3") == 0
    _drop_last_line(store.ledger_path)
    (store.ledger_path.parent / "audit.jsonl").unlink()
    assert run(config, "index", "rebuild") == 0
    assert run(config, "erase", "--call-id", "4000.3", "--reason", "t-1") == 1
    assert (store.root / "2026/01/05/4000.3.wav").exists()


def test_a_missing_anchor_is_reported_once_the_ledger_has_lines(
    setup: tuple[Store, Config, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, config, anchor_path = setup
    anchor_path.unlink()
    code, report = _verify(config, capsys)
    assert code == 1 and _kinds(report) == ["ledger_anchor_missing"]


def test_the_first_anchor_of_an_existing_ledger_carries_its_holds(tmp_path: Path) -> None:
    ledger_path = tmp_path / "ledger.jsonl"
    old = Ledger(ledger_path, anchor_path=tmp_path / "unused" / "a")  # its anchor write fails
    old.append({"type": "hold_set", "at": "2026-01-05T10:00:00.000Z", "call": {"uniqueid": "1.1"}})
    Ledger(ledger_path, validate=False).append({"type": "note", "at": "2026-01-06T10:00:00.000Z"})
    anchor = read_anchor(default_anchor_path(ledger_path))
    assert anchor is not None and anchor.seq == 2 and anchor.holds == {"1.1"}


def test_a_failed_anchor_write_is_logged_and_the_next_append_moves_it_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger_path = tmp_path / "ledger.jsonl"
    ledger = Ledger(ledger_path, validate=False)
    ledger.append({"type": "note", "at": "2026-01-05T10:00:00.000Z"})

    def full(path: Path, head: Head) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch, capture_logs() as logs:
        patch.setattr(ledger_module, "write_head", full)
        entry = ledger.append({"type": "note", "at": "2026-01-05T10:00:01.000Z"})
    assert entry["seq"] == 2  # the entry stands
    assert [(e["event"], e["error"]) for e in logs] == [
        ("ledger_anchor_failed", "[Errno 28] No space left on device")
    ]
    assert read_head(ledger.anchor_path) == Head(1, *_line(ledger_path, 1))
    with capture_logs() as logs:
        ledger.append({"type": "note", "at": "2026-01-05T10:00:02.000Z"})
    assert logs == []  # the anchor was behind, not contradicted: moved on
    anchor = read_anchor(ledger.anchor_path)
    assert anchor is not None and (anchor.seq, anchor.sha256) == head(ledger_path)


def test_a_torn_anchor_slot_falls_back_to_the_other_and_verify_passes(
    setup: tuple[Store, Config, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, config, anchor_path = setup
    newest = read_head(anchor_path)
    assert newest is not None
    with anchor_path.open("r+b") as f:  # a crash tore the newest slot
        f.seek((newest.seq % 2) * SLOT + 10)
        f.write(b"garbage")
    older = read_head(anchor_path)
    assert older is not None and older.seq == newest.seq - 1
    code, report = _verify(config, capsys)
    assert code == 0 and report["anchor"] == {"path": str(anchor_path), "seq": newest.seq - 1}


def test_an_anchor_with_no_valid_slot_is_reported_unreadable(
    setup: tuple[Store, Config, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, config, anchor_path = setup
    anchor_path.write_bytes(b"x" * 2 * SLOT)
    code, report = _verify(config, capsys)
    assert code == 1 and _kinds(report) == ["ledger_anchor_unreadable"]


def _line(path: Path, seq: int) -> tuple[str, int]:
    """(sha256, ledger size after it) of line ``seq``."""
    lines = path.read_bytes().splitlines(keepends=True)
    raw = lines[seq - 1]
    return line_sha256(raw.rstrip(b"\n")), sum(len(x) for x in lines[:seq])


def test_a_relative_anchor_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        _config_with_anchor(tmp_path, "ledger.anchor")
    assert any("storage.anchor_path: must be an absolute path" in e for e in caught.value.errors)


def test_withdraw_also_keeps_a_recording_held_only_per_the_anchor(
    setup: tuple[Store, Config, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    store, config, _ = setup
    assert _hold(config, "4000.3") == 0
    _drop_last_line(store.ledger_path)
    (store.ledger_path.parent / "audit.jsonl").unlink()
    assert run(config, "index", "rebuild") == 0
    capsys.readouterr()
    with capture_logs():
        assert run(config, "withdraw", "--call-id", "4000.3", "--reason", "t-2", "--json") == 1
    (held,) = json.loads(capsys.readouterr().out)["held"]
    assert held["call_id"] == "4000.3" and "ledger anchor" in held["detail"]
    assert (store.root / "2026/01/05/4000.3.wav").exists()


def test_purge_with_an_unreadable_anchor_deletes_nothing_and_says_why(
    setup: tuple[Store, Config, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    store, config, anchor_path = setup
    anchor_path.write_bytes(b"x" * 2 * SLOT)
    with capture_logs():
        assert run(config, "purge", "--now", NOW91) == 2
    err = capsys.readouterr().err
    assert f"error: cannot read the ledger anchor {anchor_path}" in err
    assert "nothing was deleted" in err
    assert (store.root / "2026/01/05/4000.1.wav").exists()


@pytest.mark.usefixtures("cli_logging")
def test_check_config_warns_when_the_anchor_folder_does_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLCONSENT_ARI_PASSWORD", "x")
    config = _config_with_anchor(tmp_path, tmp_path / "not-mounted" / "ledger.anchor")
    assert main(["check-config", str(config.path), "--features-conf", "/nonexistent"]) == 0
    out = capsys.readouterr().out
    assert f"storage.anchor_path: the folder {tmp_path / 'not-mounted'} does not exist" in out


def test_deleting_the_anchor_after_a_cut_re_anchors_and_keeps_the_holds(
    setup: tuple[Store, Config, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    store, config, anchor_path = setup
    assert _hold(config, "4000.3") == 0
    _drop_last_line(store.ledger_path)
    anchor_path.unlink()  # the admin accepts the ledger as it is
    assert _hold(config, "4000.1") == 0
    anchor = read_anchor(anchor_path)
    assert anchor is not None and anchor.holds == {"4000.1", "4000.3"}
    code, report = _verify(config, capsys)
    assert (code, _kinds(report)) == (0, [])
