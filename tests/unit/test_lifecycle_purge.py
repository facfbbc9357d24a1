"""Retention purge with legal holds (R25, R26) and evidence anonymisation (R21)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from callconsent.evidence import sidecar
from callconsent.evidence.ledger import iter_entries, verify_chain
from callconsent.evidence.paths import RecordingPaths
from callconsent.lifecycle import audit, query
from callconsent.lifecycle.anonymise import anonymise
from callconsent.lifecycle.hold import HoldError, list_holds, release_hold, set_hold
from callconsent.lifecycle.purge import purge
from tests.support.lifecycle_fixtures import NUMBER, T0, Store, make_store

DAY91 = T0 + timedelta(days=91)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return make_store(tmp_path)


def entries(store: Store, kind: str) -> list[dict[str, object]]:
    return [e.entry for e in iter_entries(store.ledger_path) if e.entry and e.entry["type"] == kind]


def made(store: Store) -> dict[str, RecordingPaths]:
    out = {}
    for uid in ("2000.1", "2000.2", "2000.3"):
        paths = store.call(uid)
        assert paths is not None
        out[uid] = paths
    return out


def test_after_91_days_documentation_recordings_are_gone_and_held_item_survives(
    store: Store,
) -> None:
    recs = made(store)
    with store.context(T0 + timedelta(days=1)) as ctx:
        set_hold(
            ctx,
            "2000.2",
            reason="customer dispute",
            case_ref="CASE-7",
            review_date=date(2026, 6, 1),
        )
    with store.context(DAY91) as ctx:
        report = purge(ctx, dry_run=False)
    assert report.counts == {"deleted": 2, "held": 1}
    for uid in ("2000.1", "2000.3"):
        assert not recs[uid].audio.exists()
        tomb = sidecar.load(recs[uid])
        assert tomb["state"] == "tombstone" and tomb["reason"] == "retention"
        assert NUMBER not in recs[uid].sidecar.read_text()
    assert recs["2000.2"].audio.exists()
    assert report.held[0]["call_id"] == "2000.2" and report.held[0]["reason"] == "customer dispute"
    deleted = entries(store, "deleted")
    assert sorted(e["call"]["uniqueid"] for e in deleted) == ["2000.1", "2000.3"]  # type: ignore[index]
    assert all(e["reason"] == "retention" and e["source"] == "purge" for e in deleted)
    assert verify_chain(store.ledger_path, check_schema=True) == []


def test_released_hold_is_purged_on_the_next_run(store: Store) -> None:
    recs = made(store)
    with store.context(T0) as ctx:
        set_hold(ctx, "2000.2", reason="dispute", case_ref="C1", review_date=date(2026, 5, 1))
    with store.context(DAY91) as ctx:
        purge(ctx, dry_run=False)
        assert recs["2000.2"].audio.exists()
        release_hold(ctx, "2000.2", reason="case closed")
    with store.context(DAY91 + timedelta(days=1)) as ctx:
        report = purge(ctx, dry_run=False)
    assert report.counts == {"deleted": 1}
    assert not recs["2000.2"].audio.exists()


def test_nothing_is_deleted_before_delete_after(store: Store) -> None:
    recs = made(store)
    with store.context(T0 + timedelta(days=89)) as ctx:
        report = purge(ctx, dry_run=False)
    assert report.counts == {}
    assert all(p.audio.exists() for p in recs.values())


def test_dry_run_lists_and_changes_nothing(store: Store) -> None:
    recs = made(store)
    before = store.ledger_path.read_bytes()
    seen: list[str] = []
    with store.context(DAY91) as ctx:
        report = purge(ctx, dry_run=True, on_item=lambda o: seen.append(o.call_id))
    assert report.counts == {"would_delete": 3} and sorted(seen) == sorted(recs)
    assert all(p.audio.exists() for p in recs.values())
    assert store.ledger_path.read_bytes() == before


def test_rerunning_purge_is_idempotent_and_completes_an_interrupted_deletion(store: Store) -> None:
    recs = made(store)
    with store.context(DAY91) as ctx:
        purge(ctx, dry_run=False)
    # an interrupted run: tombstone written, audio not yet removed
    recs["2000.1"].audio.write_bytes(b"RIFF leftover")
    with store.context(DAY91 + timedelta(hours=1)) as ctx:
        ctx.index.rebuild()
        report = purge(ctx, dry_run=False)
    assert not recs["2000.1"].audio.exists()
    assert len(entries(store, "deleted")) == 3  # no second entry for the completed one
    assert report.counts == {"completed": 1}


def test_malformed_sidecar_is_reported_with_its_path_and_never_deleted(store: Store) -> None:
    recs = made(store)
    recs["2000.3"].sidecar.write_text("{not json")
    with store.context(DAY91) as ctx:
        report = purge(ctx, dry_run=False)
    assert recs["2000.3"].audio.exists() and recs["2000.3"].sidecar.read_text() == "{not json"
    assert any(str(recs["2000.3"].sidecar) in p for p in report.problems)
    assert not report.clean


def test_malformed_ledger_line_is_reported_with_line_number_and_kept(store: Store) -> None:
    made(store)
    with store.ledger_path.open("ab") as f:
        f.write(b"garbage\n")
    with store.context(DAY91) as ctx:
        report = purge(ctx, dry_run=False)
    line_no = sum(1 for _ in store.ledger_path.open("rb")) - 2  # then two deletions
    assert any(f"{store.ledger_path}:" in p and "malformed" in p for p in report.problems)
    assert b"garbage\n" in store.ledger_path.read_bytes()
    assert line_no > 0


def test_hold_on_an_unknown_call_is_refused(store: Store) -> None:
    made(store)
    with store.context(T0) as ctx, pytest.raises(HoldError, match="unknown call"):
        set_hold(ctx, "9999.9", reason="x", case_ref="y", review_date=date(2026, 2, 1))


def test_overdue_hold_is_listed_and_reported_by_purge(store: Store) -> None:
    made(store)
    with store.context(T0) as ctx:
        set_hold(ctx, "2000.1", reason="dispute", case_ref="C9", review_date=date(2026, 3, 1))
    with store.context(DAY91) as ctx:
        overdue = list_holds(ctx, overdue_only=True)
        report = purge(ctx, dry_run=False)
    assert [s.hold.uniqueid for s in overdue] == ["2000.1"]
    assert report.overdue_holds == 1 and not report.clean


def test_holds_survive_an_index_rebuild(store: Store) -> None:
    made(store)
    with store.context(T0) as ctx:
        set_hold(ctx, "2000.1", reason="dispute", case_ref="C9", review_date=date(2026, 9, 1))
        ctx.index.path.unlink()
    with store.context(DAY91) as ctx:
        ctx.index.rebuild()
        assert set(query.holds(ctx.index)) == {"2000.1"}


def test_every_hold_and_purge_action_is_audited(store: Store) -> None:
    made(store)
    with store.context(T0) as ctx:
        set_hold(ctx, "2000.1", reason="dispute", case_ref="C9", review_date=date(2026, 9, 1))
    with store.context(DAY91) as ctx:
        purge(ctx, dry_run=False)
    lines = audit.read(store.ledger_path.parent / "audit.jsonl")
    assert [line["action"] for line in lines] == ["hold_set", "purge_batch", "purge"]
    assert lines[0]["actor"] == "dpo-test" and lines[0]["reason"] == "dispute"
    assert sorted(lines[1]["ids"]) == ["2000.2", "2000.3"]  # before any was deleted
    assert sorted(lines[2]["ids"]) == ["2000.2", "2000.3"]
    assert NUMBER not in json.dumps(lines)


def test_evidence_is_anonymised_after_retention_and_claims_period(store: Store) -> None:
    made(store)
    store.call("2000.9", purposes=("training",), refused=True)  # a refusal: no recording
    with store.context(DAY91) as ctx:
        purge(ctx, dry_run=False)
        early = anonymise(ctx, claims_days=365)
    assert early.calls == 0
    with store.context(T0 + timedelta(days=90 + 366)) as ctx:
        report = anonymise(ctx, claims_days=365)
        assert report.calls == 4
        assert query.find_calls(ctx.index, query.Selector(number=NUMBER)) == []
    [entry] = entries(store, "anonymised")
    assert sorted(entry["calls"]) == ["2000.1", "2000.2", "2000.3", "2000.9"]  # type: ignore[arg-type]
    assert verify_chain(store.ledger_path, check_schema=True) == []
