"""Retention per purpose (R25): in a file kept for documentation (90 days) and training (30
days), training ends at 30 days and the file goes at 90, as the notices say."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from callconsent.config import Config
from callconsent.evidence import sidecar
from callconsent.evidence.ledger import iter_entries, verify_chain
from callconsent.evidence.paths import RecordingPaths
from callconsent.evidence.purposes import expired_purposes
from callconsent.lifecycle.hold import set_hold
from callconsent.lifecycle.purge import purge
from callconsent.lifecycle.verify import verify
from tests.support.cli import run
from tests.support.lifecycle_fixtures import T0, Store, make_config, make_store

DAY29 = T0 + timedelta(days=29)
DAY31 = T0 + timedelta(days=31)
DAY91 = T0 + timedelta(days=91)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return make_store(tmp_path)


@pytest.fixture
def mixed(store: Store) -> RecordingPaths:
    paths = store.call("5000.1", purposes=("documentation", "training"))
    assert paths is not None
    return paths


def entries(store: Store, kind: str) -> list[dict[str, Any]]:
    return [e.entry for e in iter_entries(store.ledger_path) if e.entry and e.entry["type"] == kind]


def training_rows(store: Store, now: Any) -> list[str]:
    """The recordings the index lists for training (what a training listing shows)."""
    ctx = store.context(now)
    with ctx.index.locked(shared=True):
        ctx.index.update()
        rows = ctx.index.db.execute(
            "SELECT uniqueid FROM recordings WHERE state != 'tombstone' "
            "AND (',' || purposes || ',') LIKE '%,training,%'"
        ).fetchall()
    return [r[0] for r in rows]


def test_nothing_ends_before_the_shortest_purpose_retention(
    store: Store, mixed: RecordingPaths
) -> None:
    report = purge(store.context(DAY29), dry_run=False)
    assert report.counts == {}
    doc = sidecar.load(mixed)
    assert [p["purpose"] for p in doc["purposes"]] == ["documentation", "training"]


def test_training_ends_at_30_days_in_a_file_kept_for_documentation(
    store: Store, mixed: RecordingPaths
) -> None:
    assert training_rows(store, DAY29) == ["5000.1"]
    report = purge(store.context(DAY31), dry_run=False)
    assert report.counts == {"purpose_expired": 1}
    doc = sidecar.load(mixed)
    assert [p["purpose"] for p in doc["purposes"]] == ["documentation"]
    assert "purpose:training" not in doc["tags"] and "purpose:documentation" in doc["tags"]
    assert doc["delete_after"] == "2026-04-05T10:00:00.000Z"  # documentation's 90 days
    assert mixed.audio.exists()
    [entry] = entries(store, "purpose_expired")
    assert entry["call"] == {"uniqueid": "5000.1"}
    assert entry["purposes"] == ["training"] and entry["kept_purposes"] == ["documentation"]
    assert training_rows(store, DAY31) == []
    assert verify_chain(store.ledger_path, check_schema=True) == []
    assert verify(store.root, store.ledger_path).ok


def test_the_file_goes_at_90_days_after_its_training_purpose_ended(
    store: Store, mixed: RecordingPaths
) -> None:
    purge(store.context(DAY31), dry_run=False)
    report = purge(store.context(DAY91), dry_run=False)
    assert report.counts == {"deleted": 1}
    assert sidecar.load(mixed)["state"] == "tombstone" and not mixed.audio.exists()


def test_a_purge_skipped_at_30_days_still_ends_training_before_deleting_at_90(
    store: Store, mixed: RecordingPaths
) -> None:
    report = purge(store.context(DAY91), dry_run=False)
    assert report.counts == {"deleted": 1}  # all purposes over: the whole file goes at once
    assert entries(store, "purpose_expired") == []


def test_a_second_purge_does_not_end_training_twice(store: Store, mixed: RecordingPaths) -> None:
    purge(store.context(DAY31), dry_run=False)
    report = purge(store.context(DAY31 + timedelta(days=1)), dry_run=False)
    assert report.counts == {}
    assert len(entries(store, "purpose_expired")) == 1


def test_a_dry_run_ends_no_purpose(store: Store, mixed: RecordingPaths) -> None:
    report = purge(store.context(DAY31), dry_run=True)
    assert report.counts == {"would_expire_purpose": 1}
    assert len(sidecar.load(mixed)["purposes"]) == 2
    assert entries(store, "purpose_expired") == []


def test_a_recording_on_hold_keeps_its_training_purpose(
    store: Store, mixed: RecordingPaths
) -> None:
    set_hold(
        store.context(T0 + timedelta(days=1)),
        "5000.1",
        reason="dispute",
        case_ref="C-9",
        review_date=(T0 + timedelta(days=200)).date(),
    )
    report = purge(store.context(DAY31), dry_run=False)
    assert report.counts == {"held": 1}
    assert len(sidecar.load(mixed)["purposes"]) == 2


def test_a_training_only_recording_is_deleted_whole_at_30_days(store: Store) -> None:
    paths = store.call("5000.2", purposes=("training",))
    assert paths is not None
    report = purge(store.context(DAY31), dry_run=False)
    assert report.counts == {"deleted": 1}


def test_expired_purposes_lists_only_the_ones_past_their_own_retention(
    store: Store, mixed: RecordingPaths
) -> None:
    doc = sidecar.load(mixed)
    assert expired_purposes(doc, DAY29) == ()
    assert expired_purposes(doc, DAY31) == ("training",)
    assert expired_purposes(doc, DAY91) == ()  # everything is over: the file is due


def test_purge_command_reports_the_ended_purpose(
    tmp_path: Path, store: Store, mixed: RecordingPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    config: Config = make_config(tmp_path)
    assert run(config, "purge", "--now", DAY31.isoformat(), "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"] == {"purpose_expired": 1}
    assert [p["purpose"] for p in sidecar.load(mixed)["purposes"]] == ["documentation"]
