"""Withdrawal of consent after the call (R17, R18): by number, call reference or call id."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from callconsent.config import Config
from callconsent.evidence import callref, sidecar
from callconsent.evidence.ledger import iter_entries, verify_chain
from callconsent.lifecycle import audit
from callconsent.lifecycle.hold import release_hold, set_hold
from callconsent.lifecycle.verify import verify
from callconsent.lifecycle.withdraw import Scope, WithdrawError, withdraw
from tests.support.cli import run
from tests.support.lifecycle_fixtures import NUMBER, T0, Store, make_config, make_store

OTHER = "+4587654321"
NOW = T0 + timedelta(days=10)
#: Two uniqueids whose call references collide (found by search: 10^8 values).
COLLIDING = ("1767607200.13922", "1767607200.15250")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = make_store(tmp_path)
    store.call("5000.1", when=T0)  # documentation only
    store.call("5000.2", when=T0 + timedelta(days=1), purposes=("training",))  # consented
    store.call("5000.3", when=T0 + timedelta(days=2), purposes=("training",))  # consented
    store.call("5000.4", when=T0 + timedelta(days=3), purposes=("training",), refused=True)
    store.call("5000.5", OTHER, when=T0 + timedelta(days=3), purposes=("training",))
    return store


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path)


def entries(store: Store, kind: str) -> list[dict[str, object]]:
    return [e.entry for e in iter_entries(store.ledger_path) if e.entry and e.entry["type"] == kind]


def doc(store: Store, uniqueid: str, day: int = 0) -> dict[str, object]:
    when = T0 + timedelta(days=day)
    return sidecar.load(store.root / f"{when:%Y/%m/%d}/{uniqueid}.json")


def test_caller_who_consented_twice_withdraws_by_number_through_the_cli(
    store: Store, config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both training recordings go (tombstone, ledger withdrawn + deleted), documentation stays."""
    code = run(
        config,
        "withdraw",
        "--number",
        NUMBER,
        "--reason",
        "IVR withdrawal",
        "--now",
        NOW.isoformat(),
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "deleted: 5000.2 2026/01/06/5000.2.wav (training withdrawn)" in out
    assert "deleted: 5000.3" in out
    assert "untouched (no consent-based purpose): 5000.1" in out
    assert "4 call(s); 2 recording(s) deleted" in out
    for uid, day in (("5000.2", 1), ("5000.3", 2)):
        tomb = doc(store, uid, day)
        assert tomb["state"] == "tombstone" and tomb["reason"] == "withdrawn"
        assert not (store.root / f"{T0 + timedelta(days=day):%Y/%m/%d}/{uid}.wav").exists()
    assert (store.root / "2026/01/05/5000.1.wav").exists()
    assert doc(store, "5000.1")["state"] == "final"
    assert doc(store, "5000.5", 3)["state"] == "final"  # another caller's training recording
    withdrawn = entries(store, "withdrawn")
    assert [
        (e["call"], e["purposes"], e["kept_purposes"], e["outcome"], e["via"]) for e in withdrawn
    ] == [
        ({"uniqueid": "5000.2"}, ["training"], [], "deleted", "number"),
        ({"uniqueid": "5000.3"}, ["training"], [], "deleted", "number"),
    ]
    deleted = entries(store, "deleted")
    assert [(e["call"]["uniqueid"], e["reason"], e["source"]) for e in deleted] == [
        ("5000.2", "withdrawn", "withdraw"),
        ("5000.3", "withdrawn", "withdraw"),
    ]
    assert NUMBER not in json.dumps(withdrawn + deleted)
    [line] = audit.read(store.ledger_path.parent / "audit.jsonl")
    assert line["action"] == "withdraw" and line["reason"] == "IVR withdrawal"
    assert line["deleted"] == ["5000.2", "5000.3"] and NUMBER not in json.dumps(line)
    assert verify_chain(store.ledger_path, check_schema=True) == []
    assert verify(store.root, store.ledger_path, deep=True).ok


def test_documentation_and_training_recording_keeps_the_file_for_documentation_only(
    store: Store,
) -> None:
    """R18: the training purpose goes, documentation keeps its own basis and retention."""
    paths = store.call(
        "5000.6", when=T0 + timedelta(days=4), purposes=("documentation", "training"), agent="a17"
    )
    assert paths is not None
    before = sidecar.load(paths)
    assert before["delete_after"] == "2026-04-09T10:00:00.000Z"  # the longer: documentation
    with store.context(NOW) as ctx:
        report = withdraw(ctx, Scope(call_id="5000.6"), reason="letter 2026-3")
    assert report.complete
    [item] = report.items
    assert (item.action, item.withdrawn, item.kept) == (
        "documentation_kept",
        ("training",),
        ("documentation",),
    )
    after = sidecar.load(paths)
    assert after["state"] == "final" and paths.audio.exists()
    assert [
        (p["purpose"], p["lawful_basis"], p["retention_days"], p["consent"])
        for p in after["purposes"]
    ] == [("documentation", "6(1)(f)", 90, None)]
    assert after["tags"] == ["purpose:documentation", "agent:a17"]
    assert after["delete_after"] == "2026-04-09T10:00:00.000Z"  # its own 90 days, unchanged
    assert after["recording"] == before["recording"]  # same audio, same hash
    [entry] = entries(store, "withdrawn")
    assert entry["outcome"] == "documentation_kept" and entry["purposes"] == ["training"]
    assert entry["kept_purposes"] == ["documentation"]
    assert entry["delete_after"] == after["delete_after"] and entry["via"] == "call_id"
    assert entries(store, "deleted") == []
    assert verify(store.root, store.ledger_path, deep=True).ok
    assert verify_chain(store.ledger_path, check_schema=True) == []
    with store.context(NOW) as ctx:  # the index follows: the purge deletes at the new deadline
        row = ctx.index.db.execute(
            "SELECT purposes, delete_after FROM recordings WHERE uniqueid='5000.6'"
        ).fetchone()
    assert row == ("documentation", after["delete_after"])


def test_training_retention_longer_than_documentation_is_cut_to_documentation() -> None:
    from callconsent.lifecycle.withdraw import without_consent_purposes

    start = "2026-01-05T10:00:00.000Z"
    consent = {
        "status": "given",
        "reason": "digit",
        "digit": "1",
        "question_id": "q",
        "question_version": None,
        "question_started_at": None,
        "question_ended_at": None,
        "digit_at": None,
        "attempts": 1,
    }
    doc = {
        "schema_version": 1,
        "state": "recording",
        "call": {
            "uniqueid": "1.1",
            "linkedid": "1.1",
            "channel": "",
            "route": "r",
            "caller_number": None,
            "caller_name": None,
            "dialled_number": None,
        },
        "started_at": start,
        "language": "da",
        "notices": [],
        "purposes": [
            {
                "purpose": "documentation",
                "lawful_basis": "6(1)(f)",
                "retention_days": 90,
                "consent": None,
            },
            {
                "purpose": "training",
                "lawful_basis": "6(1)(a)",
                "retention_days": 365,
                "consent": consent,
            },
        ],
        "recording": {
            "file": "2026/01/05/1.1.wav",
            "format": "wav",
            "started_at": start,
            "ended_at": None,
            "duration_seconds": None,
            "bytes": None,
            "sha256": None,
            "has_audio": None,
        },
        "delete_after": "2027-01-05T10:00:00.000Z",
        "tags": ["purpose:documentation", "purpose:training", "consent:given"],
        "software": {"name": "callconsent", "version": "0"},
        "config_sha256": "0" * 64,
        "updated_at": start,
    }
    out = without_consent_purposes(doc, at=T0 + timedelta(days=1))
    assert out["state"] == "recording" and out["tags"] == ["purpose:documentation"]
    assert out["delete_after"] == "2026-04-05T10:00:00.000Z"
    assert doc["purposes"][1]["purpose"] == "training"  # the input is not changed


def test_held_recording_is_kept_and_reported_then_withdrawn_after_release(
    store: Store, config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    with store.context(NOW) as ctx:
        set_hold(
            ctx,
            "5000.3",
            reason="complaint",
            case_ref="K-7",
            review_date=(NOW + timedelta(days=30)).date(),
        )
    code = run(config, "withdraw", "--number", NUMBER, "--reason", "r", "--now", NOW.isoformat())
    out = capsys.readouterr().out
    assert code == 1
    assert (
        "kept (legal hold): 5000.3 2026/01/07/5000.3.wav (training not withdrawn: "
        "complaint, case K-7" in out
    )
    assert "1 kept on legal hold" in out
    assert doc(store, "5000.3", 2)["state"] == "final"
    assert doc(store, "5000.2", 1)["state"] == "tombstone"
    assert [e["call"] for e in entries(store, "withdrawn")] == [{"uniqueid": "5000.2"}]
    with store.context(NOW) as ctx:
        release_hold(ctx, "5000.3", reason="closed")
    assert run(config, "withdraw", "--number", NUMBER, "--reason", "r", "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert [i["call_id"] for i in result["deleted"]] == ["5000.3"]
    # 5000.2's caller was forgotten with its recording: the number no longer finds it
    assert result["already_withdrawn"] == []


def test_withheld_number_withdraws_by_call_reference(
    store: Store, config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    store.call("5000.7", None, when=T0 + timedelta(days=5), purposes=("training",))
    ref = callref.call_ref("5000.7")
    code = run(
        config, "withdraw", "--call-ref", callref.display(ref), "--reason", "letter", "--json"
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["call_ids"] == ["5000.7"] and result["scope"]["by"] == "call_ref"
    assert [i["call_id"] for i in result["deleted"]] == ["5000.7"]
    assert doc(store, "5000.7", 5)["state"] == "tombstone"
    assert entries(store, "withdrawn")[0]["via"] == "call_ref"


def test_bad_or_unknown_call_reference_is_a_usage_error(store: Store, config: Config) -> None:
    ref = callref.call_ref("5000.2")
    typo = ref[:3] + str((int(ref[3]) + 1) % 10) + ref[4:]
    assert run(config, "withdraw", "--call-ref", typo, "--reason", "r") == 2  # check digit
    assert run(config, "withdraw", "--call-ref", "12345", "--reason", "r") == 2
    unknown = next(r for r in (callref.call_ref(f"x.{i}") for i in range(10)) if r != ref)
    assert run(config, "withdraw", "--call-ref", unknown, "--reason", "r") == 2
    assert run(config, "withdraw", "--call-id", "nope.1", "--reason", "r") == 2
    assert doc(store, "5000.2", 1)["state"] == "final"


def test_call_reference_matching_two_calls_is_reported_never_guessed(store: Store) -> None:
    for uid in COLLIDING:
        store.call(uid, None, when=T0 + timedelta(days=6), purposes=("training",))
    ref = callref.call_ref(COLLIDING[0])
    assert callref.call_ref(COLLIDING[1]) == ref
    with store.context(NOW) as ctx:
        report = withdraw(ctx, Scope(call_ref=ref), reason="letter")
    assert not report.complete and report.items == [] and report.call_ids == []
    assert {a["call_id"] for a in report.ambiguous} == set(COLLIDING)
    assert "matches 2 calls; nothing done" in report.summary()
    for uid in COLLIDING:
        assert doc(store, uid, 6)["state"] == "final"
    assert entries(store, "withdrawn") == []


def test_dry_run_changes_nothing(store: Store) -> None:
    store.call("5000.6", when=T0 + timedelta(days=4), purposes=("documentation", "training"))
    files = {p: p.read_bytes() for p in store.root.rglob("*") if p.is_file()}
    ledger = store.ledger_path.read_bytes()
    with store.context(NOW) as ctx:
        report = withdraw(ctx, Scope(number=NUMBER), reason="r", dry_run=True)
    assert [(i.call_id, i.action) for i in report.items] == [
        ("5000.1", "not_consent_based"),
        ("5000.2", "would_delete"),
        ("5000.3", "would_delete"),
        ("5000.6", "would_keep_documentation"),
    ]
    assert {p: p.read_bytes() for p in store.root.rglob("*") if p.is_file()} == files
    assert store.ledger_path.read_bytes() == ledger
    [line] = audit.read(store.ledger_path.parent / "audit.jsonl")
    assert line["action"] == "withdraw_dry_run"


def test_rerun_is_idempotent(store: Store) -> None:
    store.call("5000.6", when=T0 + timedelta(days=4), purposes=("documentation", "training"))
    with store.context(NOW) as ctx:
        withdraw(ctx, Scope(number=NUMBER), reason="r")
    ledger = store.ledger_path.read_bytes()
    with store.context(NOW + timedelta(hours=1)) as ctx:
        again = withdraw(ctx, Scope(number=NUMBER), reason="r")
    assert store.ledger_path.read_bytes() == ledger
    assert again.complete
    # the deleted ones' callers were forgotten (keys destroyed): the number finds only the rest
    assert {(i.call_id, i.action) for i in again.items} == {
        ("5000.1", "not_consent_based"),
        ("5000.6", "not_consent_based"),
    }


def test_scope_and_reason_are_required(store: Store) -> None:
    with store.context(NOW) as ctx:
        with pytest.raises(WithdrawError, match="exactly one"):
            withdraw(ctx, Scope(), reason="r")
        with pytest.raises(WithdrawError, match="exactly one"):
            withdraw(ctx, Scope(number=NUMBER, call_id="5000.2"), reason="r")
        with pytest.raises(WithdrawError, match="reason"):
            withdraw(ctx, Scope(number=NUMBER), reason=" ")
