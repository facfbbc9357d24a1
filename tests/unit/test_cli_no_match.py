"""Requests that match nothing never look like success (issue 12, item 9): a hold on a recording
already purged, an unknown number or call id for export, erase and withdraw."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from callconsent.config import Config
from callconsent.evidence.ledger import iter_entries
from tests.support.cli import run
from tests.support.lifecycle_fixtures import T0, Store, make_config, make_store

NOW91 = (T0 + timedelta(days=91)).isoformat()
UNKNOWN_NUMBER = "+4599999999"


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Store, Config]:
    store = make_store(tmp_path)
    store.call("4000.1")
    store.call("4000.2", purposes=("training",), refused=True)  # no recording
    return store, make_config(tmp_path)


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
        "C-9",
        "--review-date",
        "2026-12-01",
        "--now",
        NOW91,
    )


def _types(store: Store) -> list[str]:
    return [line.entry["type"] for line in iter_entries(store.ledger_path) if line.entry]


def test_hold_on_a_recording_purged_a_moment_before_exits_2_and_sets_no_hold(
    setup: tuple[Store, Config], capsys: pytest.CaptureFixture[str]
) -> None:
    store, config = setup
    assert run(config, "purge", "--now", NOW91) == 0
    capsys.readouterr()
    assert _hold(config, "4000.1") == 2
    err = capsys.readouterr().err
    assert "error: the recording of call '4000.1' was already deleted (retention)" in err
    assert "no hold was set" in err
    assert "hold_set" not in _types(store)


def test_hold_on_a_call_without_recording_is_still_possible(
    setup: tuple[Store, Config],
) -> None:
    store, config = setup
    assert _hold(config, "4000.2") == 0  # its consent evidence can be held
    assert _types(store)[-1] == "hold_set"


@pytest.mark.parametrize(
    "argv",
    [
        ("export", "--number", UNKNOWN_NUMBER, "--reason", "t-1"),
        ("export", "--call-id", "9999.9", "--reason", "t-2"),
        ("erase", "--number", UNKNOWN_NUMBER, "--reason", "t-3"),
        ("erase", "--call-id", "9999.9", "--reason", "t-4", "--dry-run"),
        ("withdraw", "--number", UNKNOWN_NUMBER, "--reason", "t-5"),
    ],
    ids=["export-number", "export-call-id", "erase-number", "erase-call-id", "withdraw-number"],
)
def test_a_request_matching_no_call_exits_2_saying_no_calls_found(
    argv: tuple[str, ...], setup: tuple[Store, Config], capsys: pytest.CaptureFixture[str]
) -> None:
    store, config = setup
    before = _types(store)
    assert run(config, *argv) == 2
    err = capsys.readouterr().err
    assert "error: no calls found for " in err
    assert UNKNOWN_NUMBER not in err  # a caller number is never echoed
    assert _types(store) == before  # no export, deleted or withdrawn line
    exports = store.ledger_path.parent / "exports"
    assert not exports.exists() or not list(exports.iterdir())  # no empty archive
