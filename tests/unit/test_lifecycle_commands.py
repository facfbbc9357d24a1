"""The lifecycle subcommands end to end through argparse: outputs and exit codes."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from callconsent.config import Config
from tests.support.cli import run
from tests.support.lifecycle_fixtures import NUMBER, T0, Store, make_config, make_store


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Store, Config]:
    store = make_store(tmp_path)
    store.call("4000.1")
    store.call("4000.2", purposes=("training",), refused=True)
    store.call("4000.3", purposes=("documentation", "training"))
    return store, make_config(tmp_path)


NOW91 = (T0 + timedelta(days=91)).isoformat()


def test_every_subcommand_has_help(
    setup: tuple[Store, Config], capsys: pytest.CaptureFixture[str]
) -> None:
    _, config = setup
    for argv in (
        ["index", "rebuild"],
        ["index", "update"],
        ["purge"],
        ["hold", "set"],
        ["hold", "release"],
        ["hold", "list"],
        ["export"],
        ["identify"],
        ["erase"],
        ["withdraw"],
        ["ropa"],
    ):
        with pytest.raises(SystemExit) as done:
            run(config, *argv, "--help")
        assert done.value.code == 0
        assert "--json" in capsys.readouterr().out


def test_index_rebuild_reports_counts_and_progress_on_stderr(
    setup: tuple[Store, Config], capsys: pytest.CaptureFixture[str]
) -> None:
    _, config = setup
    assert run(config, "index", "rebuild", "--json") == 0
    captured = capsys.readouterr()
    stats = json.loads(captured.out)
    assert stats["sidecars"] == 2 and stats["ledger_lines"] == 5
    assert "index:" in captured.err


def test_purge_with_injected_clock_then_hold_release_cycle(
    setup: tuple[Store, Config], capsys: pytest.CaptureFixture[str]
) -> None:
    store, config = setup
    assert (
        run(
            config,
            "hold",
            "set",
            "--call-id",
            "4000.3",
            "--reason",
            "dispute",
            "--case-ref",
            "C-1",
            "--review-date",
            "2026-12-01",
            "--now",
            T0.isoformat(),
        )
        == 0
    )
    capsys.readouterr()
    assert run(config, "purge", "--dry-run", "--now", NOW91, "--json") == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["counts"] == {"would_delete": 1, "held": 1}
    assert run(config, "purge", "--now", NOW91) == 0
    out = capsys.readouterr().out
    assert "deleted: 4000.1" in out and "held: 4000.3" in out
    assert (
        run(config, "hold", "release", "--call-id", "4000.3", "--reason", "settled", "--now", NOW91)
        == 0
    )
    capsys.readouterr()
    assert run(config, "purge", "--now", NOW91, "--json") == 0
    assert json.loads(capsys.readouterr().out)["counts"] == {"deleted": 1}
    assert not (store.root / "2026/01/05/4000.3.wav").exists()


def test_hold_list_overdue_exits_1(setup: tuple[Store, Config]) -> None:
    _, config = setup
    run(
        config,
        "hold",
        "set",
        "--call-id",
        "4000.1",
        "--reason",
        "r",
        "--case-ref",
        "c",
        "--review-date",
        "2026-02-01",
        "--now",
        T0.isoformat(),
    )
    assert run(config, "hold", "list", "--overdue", "--now", T0.isoformat()) == 0
    assert run(config, "hold", "list", "--overdue", "--now", NOW91) == 1


def test_hold_on_unknown_call_is_a_usage_error(setup: tuple[Store, Config]) -> None:
    _, config = setup
    assert (
        run(
            config,
            "hold",
            "set",
            "--call-id",
            "nope.1",
            "--reason",
            "r",
            "--case-ref",
            "c",
            "--review-date",
            "2026-02-01",
        )
        == 2
    )


def test_export_then_identify_through_the_cli(
    setup: tuple[Store, Config], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, config = setup
    assert (
        run(
            config,
            "export",
            "--number",
            NUMBER,
            "--reason",
            "SAR-1",
            "--out",
            str(tmp_path / "out"),
            "--request-date",
            "2026-01-31",
            "--json",
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["audio_files"] == 2 and len(result["call_ids"]) == 3
    archive = Path(result["archive"])
    assert run(config, "identify", str(archive), "--json") == 0
    found = json.loads(capsys.readouterr().out)
    assert found["exports"][0]["export_id"] == result["export_id"]
    assert run(config, "export", "--reason", "x") == 2  # no subject given


def test_erase_exit_code_says_whether_anything_was_held_back(setup: tuple[Store, Config]) -> None:
    _, config = setup
    run(
        config,
        "hold",
        "set",
        "--call-id",
        "4000.3",
        "--reason",
        "r",
        "--case-ref",
        "c",
        "--review-date",
        "2026-12-01",
    )
    assert run(config, "erase", "--number", NUMBER, "--reason", "Art 17") == 1
    assert run(config, "erase", "--call-id", "4000.1", "--reason", "Art 17") == 0


def test_ropa_has_all_art30_fields_and_flags_empty_ones(
    setup: tuple[Store, Config], capsys: pytest.CaptureFixture[str]
) -> None:
    _, config = setup
    assert run(config, "ropa", "--json") == 1  # recipients/transfers are not in the config
    record = json.loads(capsys.readouterr().out)
    keys = {
        "categories_of_data_subjects",
        "categories_of_data",
        "recipients",
        "transfers",
        "erasure_time_limits",
        "security_measures",
        "lawful_bases",
        "description",
    }
    assert {p["purpose"] for p in record["purposes"]} == {"documentation", "training"}
    assert all(keys <= set(p) for p in record["purposes"])
    assert any("recipients" in f for f in record["flags"])
    stats = record["statistics"]
    assert stats["calls"] == 3
    assert stats["purposes"]["training"]["consent_rate"] == 0.5
    assert run(config, "ropa") == 1
    md = capsys.readouterr().out
    assert "(d) Recipients: **⚠ EMPTY" in md and "consent rate 50.0%" in md


def test_now_without_zone_is_a_usage_error(setup: tuple[Store, Config]) -> None:
    _, config = setup
    assert run(config, "purge", "--now", "2026-04-06T03:00:00") == 2


def test_purge_with_a_claims_period_out_of_range_deletes_nothing(
    setup: tuple[Store, Config], capsys: pytest.CaptureFixture[str]
) -> None:
    """The claims period is checked before the purge deletes anything, not after."""
    store, config = setup
    assert run(config, "purge", "--now", NOW91, "--claims-days", "999999999") == 2
    assert "--claims-days" in capsys.readouterr().err
    assert (store.root / "2026/01/05/4000.1.wav").exists()
