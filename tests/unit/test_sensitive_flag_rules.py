"""The agent's sensitive-data flag (R22): the rule, and the adapter over a fake AMI and the real
evidence store."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from callconsent import names
from callconsent.agents.bridge import BridgeHandler
from callconsent.evidence import sidecar
from callconsent.sensitive import rules
from callconsent.sensitive.adapter import SensitiveFlagHandler
from callconsent.store import EvidenceStore
from callconsent.withdrawal.in_call_adapter import WithdrawalHandler
from tests.support.ami_fakes import FakeAmi, StopAmi, TreeAmi
from tests.support.bridge import (
    CALLER,
    REAL_ID,
    T0,
    FakeRegistry,
    agent_consents,
    call,
    event,
    gone,
    ledger,
    outcome,
    real_call,
    sidecar_of,
    withdraw_event,
)
from tests.support.stasis_fakes import pcm_wav, schema_problems, write_audio

PRESSED = T0 + timedelta(minutes=2)
STAMP = "2026-11-24T09:02:00.000Z"


def flag_event(caller: str = CALLER, agent: str = "agent1", at: str = STAMP) -> dict[str, str]:
    return {
        "Event": "UserEvent",
        "UserEvent": names.SENSITIVE_USER_EVENT,
        "Caller": caller,
        "Agent": agent,
        "At": at,
    }


# -- the rule ----------------------------------------------------------------------------------


def _doc(tmp_path: Path, *purposes: str) -> dict[str, Any]:
    """A sidecar as the store writes it, with training listed (the agent consented)."""

    async def make() -> dict[str, Any]:
        st = EvidenceStore(
            recordings_dir=tmp_path / "r", ledger_path=tmp_path / "l.jsonl", config_sha256="d" * 64
        )
        (tmp_path / "r").mkdir(exist_ok=True)
        audio = Path(await st.prepare_recording(outcome(*purposes), call(), T0))
        await BridgeHandler(FakeAmi(), st, FakeRegistry(agent1="given")).on_agent_event(event())
        return sidecar_of(audio)

    return asyncio.run(make())


def test_rule_keeps_documentation_restricted_and_drops_training(tmp_path: Path) -> None:
    doc = _doc(tmp_path, "documentation", "training")
    done = rules.flag(doc, at=PRESSED)
    assert (done.outcome, done.removed, done.kept) == (
        "restricted",
        ("training",),
        ("documentation",),
    )
    assert done.doc is not None
    new = done.doc
    assert (new["sensitive"], new["restricted"]) == (True, True)
    assert [p["purpose"] for p in new["purposes"]] == ["documentation"]
    assert "flag:sensitive" in new["tags"] and "purpose:training" not in new["tags"]
    assert new["delete_after"] == "2027-02-22T09:00:00.000Z"  # documentation's 90 days
    assert new["updated_at"] == STAMP
    assert schema_problems("sidecar.schema.json", new) == []
    assert doc.get("sensitive") is None  # pure: the input is unchanged


def test_rule_deletes_a_training_only_recording(tmp_path: Path) -> None:
    done = rules.flag(_doc(tmp_path, "training"), at=PRESSED)
    assert (done.outcome, done.removed, done.kept, done.doc) == ("deleted", ("training",), (), None)


def test_rule_flags_documentation_only_without_removing_anything(tmp_path: Path) -> None:
    done = rules.flag(_doc(tmp_path, "documentation"), at=PRESSED)
    assert (done.outcome, done.removed) == ("restricted", ())
    assert done.doc is not None and done.doc["tags"][-1] == "flag:sensitive"


def test_rule_is_idempotent_and_ignores_tombstones(tmp_path: Path) -> None:
    first = rules.flag(_doc(tmp_path, "documentation", "training"), at=PRESSED)
    assert first.doc is not None
    again = rules.flag(first.doc, at=PRESSED + timedelta(seconds=5))
    assert (again.outcome, again.writes) == ("already_flagged", False)
    assert rules.flag(None, at=PRESSED).outcome == "nothing_to_flag"
    tomb = {"state": "tombstone"}
    assert rules.flag(tomb, at=PRESSED).outcome == "nothing_to_flag"


def test_existing_documents_stay_valid_and_the_flags_must_be_booleans(tmp_path: Path) -> None:
    doc = _doc(tmp_path, "documentation")
    assert schema_problems("sidecar.schema.json", doc) == []  # no new required field
    assert schema_problems("sidecar.schema.json", {**doc, "sensitive": "yes"}) != []


# -- the adapter and the store -----------------------------------------------------------------


async def test_documentation_and_training_keeps_documentation_restricted(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio = Path(await store.prepare_recording(outcome("documentation", "training"), call(), T0))
    await agent_consents(store)
    ami = StopAmi()
    await SensitiveFlagHandler(ami, store).on_flag_event(flag_event())

    doc = sidecar_of(audio)
    assert doc["state"] == "recording"  # documentation goes on recording
    assert [(p["purpose"], p["lawful_basis"], p["retention_days"]) for p in doc["purposes"]] == [
        ("documentation", "6(1)(f)", 90)
    ]
    assert (doc["sensitive"], doc["restricted"]) == (True, True)
    assert "flag:sensitive" in doc["tags"] and "purpose:training" not in doc["tags"]
    assert ami.calls == []  # nothing to stop: the recording is kept for documentation
    entry = ledger(tmp_path)[-1]
    assert entry == {
        "seq": entry["seq"],
        "type": "flagged_sensitive",
        "at": STAMP,
        "call": {"uniqueid": CALLER},
        "agent": "agent1",
        "removed_purposes": ["training"],
        "kept_purposes": ["documentation"],
        "recording": entry["recording"],
        "outcome": "restricted",
        "source": "app",
        "prev_sha256": entry["prev_sha256"],
    }
    assert schema_problems("ledger-entry.schema.json", entry) == []
    assert "+4512345678" not in str(entry)  # no caller data
    write_audio(audio, pcm_wav(800))
    await store.recording_ended(call(), PRESSED)
    final = sidecar_of(audio)
    assert final["state"] == "final" and final["sensitive"] is True
    assert [p["purpose"] for p in final["purposes"]] == ["documentation"]


async def test_training_only_is_deleted_and_its_recording_stopped(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio = Path(await store.prepare_recording(outcome("training"), call(), T0))
    await agent_consents(store)
    write_audio(audio, pcm_wav(800))
    ami = StopAmi()
    await SensitiveFlagHandler(ami, store).on_flag_event(flag_event())

    assert gone(audio)
    tomb = sidecar_of(audio)
    assert (tomb["state"], tomb["reason"]) == ("tombstone", "sensitive")
    assert ami.calls == [("StopMixMonitor", CALLER)]
    flagged, deleted = ledger(tmp_path)[-2:]
    assert (flagged["type"], flagged["outcome"], flagged["removed_purposes"]) == (
        "flagged_sensitive",
        "deleted",
        ["training"],
    )
    assert (deleted["type"], deleted["reason"]) == ("deleted", "sensitive")
    for e in (flagged, deleted):
        assert schema_problems("ledger-entry.schema.json", e) == []
    await store.recording_ended(call(), PRESSED)  # the hangup changes nothing
    assert len(ledger(tmp_path)) == 3


async def test_a_second_flag_writes_nothing(tmp_path: Path, store: EvidenceStore) -> None:
    await store.prepare_recording(outcome("documentation", "training"), call(), T0)
    await agent_consents(store)
    handler = SensitiveFlagHandler(StopAmi(), store)
    await handler.on_flag_event(flag_event())
    await handler.on_flag_event(flag_event(at="2026-11-24T09:03:00.000Z"))
    assert [e["type"] for e in ledger(tmp_path)] == ["agent_decision", "flagged_sensitive"]


async def test_training_pending_never_starts_after_the_flag(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio = Path(await store.prepare_recording(outcome("documentation", "training"), call(), T0))
    await SensitiveFlagHandler(StopAmi(), store).on_flag_event(flag_event())
    ami = FakeAmi()
    await BridgeHandler(ami, store, FakeRegistry(agent1="given")).on_agent_event(event())
    assert ("Setvar", "1764000001.43", names.VAR_AGENT_RESULT, "refused") in ami.calls
    doc = sidecar_of(audio)
    assert [p["purpose"] for p in doc["purposes"]] == ["documentation"]
    assert doc.get("agent_purposes") == [] and doc["sensitive"] is True


async def test_withdrawal_after_the_flag_finds_nothing_to_withdraw(
    tmp_path: Path, store: EvidenceStore
) -> None:
    await store.prepare_recording(outcome("documentation", "training"), call(), T0)
    await agent_consents(store)
    await SensitiveFlagHandler(StopAmi(), store).on_flag_event(flag_event())
    await WithdrawalHandler(TreeAmi(), store).on_withdraw_event(withdraw_event())
    assert [e["type"] for e in ledger(tmp_path)] == ["agent_decision", "flagged_sensitive"]


async def test_a_call_the_process_does_not_know_is_found_by_its_uniqueid(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio = Path(await store.prepare_recording(outcome("documentation"), real_call(), T0))
    restarted = EvidenceStore(
        recordings_dir=tmp_path / "recordings",
        ledger_path=tmp_path / "ledger.jsonl",
        config_sha256="d" * 64,
    )
    done = await SensitiveFlagHandler(StopAmi(), restarted).flag(REAL_ID, "agent2", PRESSED)
    assert done is not None and done.outcome == "restricted"
    assert sidecar_of(audio)["restricted"] is True


async def test_bad_events_unknown_calls_and_storage_errors_change_nothing(
    tmp_path: Path, store: EvidenceStore
) -> None:
    ami = StopAmi()
    handler = SensitiveFlagHandler(ami, store)
    await handler.on_flag_event(flag_event(caller="../../etc"))
    await handler.on_flag_event(flag_event(caller="1764000099.1"))  # no such recording
    assert not (tmp_path / "ledger.jsonl").exists()
    audio = Path(await store.prepare_recording(outcome("documentation"), call(), T0))
    audio.with_suffix(".json").write_text("{not json")
    assert await handler.flag(CALLER, "agent1", PRESSED) is None
    await handler.on_flag_event(flag_event(agent="bad agent!", at="garbage"))
    assert ami.calls == []


async def test_a_failed_stop_is_logged_and_the_evidence_stays_written(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio = Path(await store.prepare_recording(outcome("training"), call(), T0))
    await agent_consents(store)
    ami = StopAmi(fail={"StopMixMonitor"})
    done = await SensitiveFlagHandler(ami, store).flag(CALLER, "agent1", PRESSED)
    assert done is not None and done.outcome == "deleted"
    assert sidecar_of(audio)["reason"] == sidecar.TombstoneReason.SENSITIVE
