"""Withdrawal during the call (R16, R18): the rules, the adapter over a fake AMI and the real
evidence store, and the variables the app leaves for the dialplan."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from callconsent import names
from callconsent.agents.bridge import BridgeHandler
from callconsent.evidence.paths import find_recording
from callconsent.store import EvidenceStore
from callconsent.withdrawal import in_call
from callconsent.withdrawal.in_call_adapter import SOURCE_RECOVERED, WithdrawalHandler
from tests.support.ami_fakes import FakeAmi, TreeAmi
from tests.support.bridge import (
    MARKER,
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
from tests.support.sealed import caller_of
from tests.support.stasis_fakes import pcm_wav, schema_problems, write_audio

PRESSED = T0 + timedelta(minutes=2)


# -- the variables the app leaves for the dialplan ---------------------------------------------


def test_withdrawal_code_is_enabled_only_for_consent_purposes() -> None:
    assert in_call.withdraw_variables(outcome("documentation"), "/p") == []
    assert in_call.withdraw_variables(outcome("training"), "/p") == [
        (names.VAR_WITHDRAW_KEEPS, ""),
        (names.VAR_WITHDRAW_PROMPT, "/p/da/callconsent-withdrawn"),
        (names.VAR_WITHDRAWABLE, "training"),  # last: it enables the feature in the hook
    ]
    both = dict(in_call.withdraw_variables(outcome("documentation", "training"), "/p"))
    assert both[names.VAR_WITHDRAW_KEEPS] == "documentation"


def test_confirmation_is_in_the_calls_language_else_danish() -> None:
    assert in_call.prompt_base("/p", "en") == "/p/en/callconsent-withdrawn"
    assert in_call.prompt_base("/p", "sv") == "/p/da/callconsent-withdrawn"
    assert in_call.prompt_base("", "en") == ""


# -- the evidence ------------------------------------------------------------------------------


async def test_training_only_withdrawn_is_deleted_with_a_tombstone(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio = Path(await store.prepare_recording(outcome("training"), call(), T0))
    await agent_consents(store)
    write_audio(audio, pcm_wav(800))  # what StopMixMonitor left
    ami = TreeAmi()
    await WithdrawalHandler(ami, store).on_withdraw_event(withdraw_event())

    assert gone(audio)
    tomb = sidecar_of(audio)
    assert (tomb["state"], tomb["reason"], tomb["deleted_at"]) == (
        "tombstone",
        "withdrawn",
        "2026-11-24T09:02:00.000Z",
    )
    _decision, withdrawn, deleted = ledger(tmp_path)
    assert (withdrawn["type"], withdrawn["outcome"], withdrawn["purposes"]) == (
        "withdrawn",
        "deleted",
        ["training"],
    )
    assert (withdrawn["via"], withdrawn["source"], withdrawn["kept_purposes"]) == (
        "caller_dtmf",
        "app",
        [],
    )
    assert (deleted["type"], deleted["reason"]) == ("deleted", "withdrawn")
    for entry in (withdrawn, deleted):
        assert schema_problems("ledger-entry.schema.json", entry) == []
    assert ami.calls == [("DBDel", names.ASTDB_FAMILY, MARKER)]
    await store.recording_ended(call(), PRESSED)  # the hangup later changes nothing
    assert len(ledger(tmp_path)) == 3


async def test_documentation_and_training_keeps_documentation_only(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio = Path(await store.prepare_recording(outcome("documentation", "training"), call(), T0))
    await agent_consents(store)
    assert [p["purpose"] for p in sidecar_of(audio)["purposes"]] == ["documentation", "training"]
    await WithdrawalHandler(TreeAmi(), store).on_withdraw_event(withdraw_event())

    doc = sidecar_of(audio)
    assert doc["state"] == "recording"  # still recording, for documentation
    assert [(p["purpose"], p["lawful_basis"]) for p in doc["purposes"]] == [
        ("documentation", "6(1)(f)")
    ]
    assert "purpose:training" not in doc["tags"] and "consent:given" not in doc["tags"]
    assert doc["delete_after"] == "2027-02-22T09:00:00.000Z"  # documentation's 90 days
    withdrawn = ledger(tmp_path)[-1]
    assert (withdrawn["outcome"], withdrawn["kept_purposes"], withdrawn["delete_after"]) == (
        "documentation_kept",
        ["documentation"],
        "2027-02-22T09:00:00.000Z",
    )
    write_audio(audio, pcm_wav(800))
    await store.recording_ended(call(), PRESSED)
    final = sidecar_of(audio)
    assert final["state"] == "final" and [p["purpose"] for p in final["purposes"]] == [
        "documentation"
    ]


async def test_training_pending_at_the_bridge_never_starts_after_a_withdrawal(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio = Path(await store.prepare_recording(outcome("training"), call(), T0))
    await WithdrawalHandler(TreeAmi(), store).on_withdraw_event(withdraw_event())
    ami = FakeAmi()
    await BridgeHandler(ami, store, FakeRegistry(agent1="given")).on_agent_event(event())

    assert ami.calls == [("Setvar", "1764000001.43", names.VAR_AGENT_RESULT, "refused")]
    assert sidecar_of(audio)["reason"] == "withdrawn"
    assert [e["type"] for e in ledger(tmp_path)] == ["withdrawn", "deleted"]


async def test_documentation_with_training_pending_keeps_documentation_and_drops_training(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio = Path(await store.prepare_recording(outcome("documentation", "training"), call(), T0))
    await WithdrawalHandler(TreeAmi(), store).on_withdraw_event(withdraw_event())
    ami = FakeAmi()
    await BridgeHandler(ami, store, FakeRegistry(agent1="given")).on_agent_event(event())

    doc = sidecar_of(audio)
    assert [p["purpose"] for p in doc["purposes"]] == ["documentation"]
    assert doc.get("agent_purposes") == []
    assert ledger(tmp_path)[0]["outcome"] == "documentation_kept"


async def test_a_second_withdrawal_writes_nothing(tmp_path: Path, store: EvidenceStore) -> None:
    await store.prepare_recording(outcome("training"), call(), T0)
    handler = WithdrawalHandler(TreeAmi(), store)
    await handler.on_withdraw_event(withdraw_event())
    await handler.on_withdraw_event(withdraw_event())
    assert [e["type"] for e in ledger(tmp_path)] == ["withdrawn", "deleted"]


async def test_markers_left_while_the_app_was_away_are_finished_at_login(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio = Path(await store.prepare_recording(outcome("training"), real_call(), T0))
    write_audio(audio, pcm_wav(800))
    restarted = EvidenceStore(  # a new process: it finds the call by its uniqueid
        recordings_dir=tmp_path / "recordings",
        ledger_path=tmp_path / "ledger.jsonl",
        config_sha256="d" * 64,
    )
    marker = names.ASTDB_WITHDRAWN_PREFIX + REAL_ID
    ami = TreeAmi(
        tree=[
            (f"/callconsent/{marker}", "2026-11-24T09:02:00.000Z"),
            ("/callconsent/withdrawn/bad id!", "junk"),
        ]
    )
    assert await WithdrawalHandler(ami, restarted).recover() == 1

    assert gone(audio) and sidecar_of(audio)["reason"] == "withdrawn"
    withdrawn = ledger(tmp_path)[0]
    assert (withdrawn["source"], withdrawn["at"]) == (SOURCE_RECOVERED, "2026-11-24T09:02:00.000Z")
    assert ("DBDel", names.ASTDB_FAMILY, marker) in ami.calls


async def test_a_marker_whose_evidence_cannot_be_written_is_kept(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio = Path(await store.prepare_recording(outcome("training"), call(), T0))
    audio.with_suffix(".json").write_text("{not json")
    ami = TreeAmi(tree=[(f"/callconsent/{MARKER}", "2026-11-24T09:02:00.000Z")])
    assert await WithdrawalHandler(ami, store).recover() == 0
    assert not [c for c in ami.calls if c[0] == "DBDel"]


async def test_unreadable_markers_and_bad_events_change_nothing(
    tmp_path: Path, store: EvidenceStore
) -> None:
    ami = TreeAmi(fail={"DBGetTree"})
    handler = WithdrawalHandler(ami, store)
    assert await handler.recover() == 0
    await handler.on_withdraw_event(withdraw_event(caller="../../etc"))
    assert gone(tmp_path / "ledger.jsonl")


async def test_a_call_is_found_by_the_date_in_its_uniqueid(
    tmp_path: Path, store: EvidenceStore
) -> None:
    recordings = tmp_path / "recordings"
    assert find_recording(recordings, REAL_ID) is None
    audio = Path(await store.prepare_recording(outcome("training"), real_call(), T0))
    found = find_recording(recordings, REAL_ID)
    assert found is not None and found.audio == audio
    assert find_recording(recordings, "not-a-number") is None


async def test_a_recording_withdrawn_and_deleted_during_the_call_forgets_its_caller(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio = Path(await store.prepare_recording(outcome("training"), call(), T0))
    await store.write_call(outcome("training"), call())
    await agent_consents(store)
    write_audio(audio, pcm_wav(800))
    [entry] = [e for e in ledger(tmp_path) if e["type"] == "call"]
    assert not caller_of(entry, tmp_path / "ledger.jsonl").erased

    await WithdrawalHandler(TreeAmi(), store).on_withdraw_event(withdraw_event())

    assert gone(audio)
    assert caller_of(entry, tmp_path / "ledger.jsonl").erased


async def test_documentation_kept_after_a_withdrawal_keeps_its_caller(
    tmp_path: Path, store: EvidenceStore
) -> None:
    await store.prepare_recording(outcome("documentation", "training"), call(), T0)
    await store.write_call(outcome("documentation", "training"), call())
    await agent_consents(store)
    await WithdrawalHandler(TreeAmi(), store).on_withdraw_event(withdraw_event())

    [entry] = [e for e in ledger(tmp_path) if e["type"] == "call"]
    assert caller_of(entry, tmp_path / "ledger.jsonl").number is not None
