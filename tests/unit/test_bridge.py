"""The agent-bridge adapter over a fake AMI, a fake registry and the real evidence store."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from callconsent import names
from callconsent.agents.bridge import MIXMONITOR_OPTIONS, BridgeHandler
from callconsent.store import EvidenceStore
from tests.support.ami_fakes import FakeAmi
from tests.support.bridge import (
    AGENT_CHAN,
    CALLER,
    T0,
    FakeRegistry,
    call,
    event,
    ledger,
    outcome,
    sidecar_of,
)
from tests.support.stasis_fakes import pcm_wav, schema_problems, write_audio


async def test_training_only_with_agent_consent_starts_mixmonitor_on_the_caller(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio = Path(await store.prepare_recording(outcome("training"), call(), T0))
    ami = FakeAmi()
    await BridgeHandler(ami, store, FakeRegistry(agent1="given")).on_agent_event(event())

    assert ami.calls == [
        ("MixMonitor", CALLER, str(audio), f"bi({names.VAR_MIXMONITOR_ID})"),
        ("Setvar", AGENT_CHAN, names.VAR_AGENT_RESULT, "given"),
    ]
    assert MIXMONITOR_OPTIONS == "bi(CALLCONSENT_MIXMONITOR_ID)"  # ONE argument
    doc = sidecar_of(audio)
    (training,) = doc["purposes"]
    assert training["agent_consent"]["status"] == "given"
    assert training["agent_consent"]["agent_id"] == "agent1"
    assert training["agent_consent"]["agent_consent_changed_at"] == "2026-11-24T09:00:00.000Z"
    assert doc["agent_purposes"] == []
    assert doc["tags"] == ["purpose:training", "consent:given", "agent:agent1"]
    assert doc["delete_after"] == "2026-12-24T09:00:00.000Z"
    (entry,) = ledger(tmp_path)
    assert (entry["type"], entry["status"], entry["reason"]) == (
        "agent_decision",
        "given",
        "agent_consent",
    )
    assert schema_problems("ledger-entry.schema.json", entry) == []


async def test_a_started_recording_logs_where_the_agent_legs_time_went(
    store: EvidenceStore,
) -> None:
    await store.prepare_recording(outcome("training"), call(), T0)
    with capture_logs() as logs:
        await BridgeHandler(FakeAmi(), store, FakeRegistry(agent1="given")).on_agent_event(event())

    (started,) = [e for e in logs if e["event"] == "agent_recording_started"]
    assert started["decide_ms"] > 0  # the agent_decision line and the sidecar made durable
    assert started["mixmonitor_ms"] >= 0
    (decision,) = [e for e in logs if e["event"] == "agent_decision"]
    assert decision["ledger_ms"] > 0 and decision["sidecar_ms"] > 0  # an fsync each
    assert decision["ledger_ms"] + decision["sidecar_ms"] <= started["decide_ms"] + 0.2  # rounding


@pytest.mark.parametrize(
    ("registry", "flag"),
    [
        ({"agent1": "refused"}, "0"),  # the agent refused
        ({}, "0"),  # never registered
        ({"agent1": "given"}, "0"),  # the AstDB mirror lags: refused, never a guess
        ({"agent1": "refused"}, "1"),  # a stale AstDB "1" after a revoke
    ],
)
async def test_training_only_without_agent_consent_records_nothing(
    tmp_path: Path, store: EvidenceStore, registry: dict[str, str], flag: str
) -> None:
    audio = Path(await store.prepare_recording(outcome("training"), call(), T0))
    ami = FakeAmi()
    await BridgeHandler(ami, store, FakeRegistry(**registry)).on_agent_event(event(flag=flag))

    assert ami.calls == [("Setvar", AGENT_CHAN, names.VAR_AGENT_RESULT, "refused")]
    doc = sidecar_of(audio)
    assert doc["state"] == "tombstone" and doc["reason"] == "agent_refused"
    decision, deleted = ledger(tmp_path)
    assert (decision["status"], decision["reason"]) == ("refused", "agent_refused")
    assert decision["recording"] is None and deleted["type"] == "deleted"
    await store.recording_ended(call(), T0)  # the hangup later changes nothing
    assert len(ledger(tmp_path)) == 2


async def test_documentation_and_training_with_agent_refusing_keeps_documentation(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio = Path(await store.prepare_recording(outcome("documentation", "training"), call(), T0))
    held = sidecar_of(audio)
    assert [p["purpose"] for p in held["purposes"]] == ["documentation"]
    assert held["agent_purposes"][0]["agent_consent"]["status"] == "pending"
    assert held["tags"] == ["purpose:documentation"]  # pending training is not a purpose
    ami = FakeAmi()
    await BridgeHandler(ami, store, FakeRegistry(agent2="refused")).on_agent_event(
        event(agent="agent2", flag="0")
    )

    assert ami.calls == [
        ("Setvar", AGENT_CHAN, names.VAR_AGENT_RESULT, "refused")
    ]  # no 2nd MixMonitor
    doc = sidecar_of(audio)
    assert [p["purpose"] for p in doc["purposes"]] == ["documentation"]
    assert doc["agent_purposes"][0]["agent_consent"]["status"] == "refused"
    assert doc["tags"] == ["purpose:documentation", "agent:agent2"]
    assert doc["delete_after"] == "2027-02-22T09:00:00.000Z"  # 90 days: documentation's
    write_audio(audio, pcm_wav(800))
    await store.recording_ended(call(), T0 + timedelta(minutes=1))
    assert sidecar_of(audio)["state"] == "final"


async def test_a_decision_that_never_came_is_resolved_as_refused_at_hangup(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio = Path(await store.prepare_recording(outcome("documentation", "training"), call(), T0))
    write_audio(audio, pcm_wav(800))
    await store.recording_ended(call(), T0 + timedelta(minutes=1))

    doc = sidecar_of(audio)
    assert doc["state"] == "final"
    assert [p["purpose"] for p in doc["purposes"]] == ["documentation"]
    consent = doc["agent_purposes"][0]["agent_consent"]
    assert (consent["status"], consent["reason"], consent["agent_id"]) == (
        "refused",
        "agent_unknown",
        None,
    )
    assert ledger(tmp_path)[0]["reason"] == "agent_unknown"


async def test_mixmonitor_failure_leaves_no_training_recording(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio = Path(await store.prepare_recording(outcome("training"), call(), T0))
    ami = FakeAmi(fail={"MixMonitor"})
    await BridgeHandler(ami, store, FakeRegistry(agent1="given")).on_agent_event(event())

    assert ami.calls[-1] == ("Setvar", AGENT_CHAN, names.VAR_AGENT_RESULT, "refused")
    doc = sidecar_of(audio)
    assert doc["state"] == "tombstone" and doc["reason"] == "bridge_error"


async def test_an_event_for_a_call_the_app_does_not_know_is_refused(store: EvidenceStore) -> None:
    ami = FakeAmi()
    await BridgeHandler(ami, store, FakeRegistry(agent1="given")).on_agent_event(event())
    assert ami.calls == [("Setvar", AGENT_CHAN, names.VAR_AGENT_RESULT, "refused")]


@pytest.mark.parametrize("caller", ["", "../../etc", "x\r\nAction: Originate"])
async def test_malformed_events_are_ignored(store: EvidenceStore, caller: str) -> None:
    ami = FakeAmi()
    await BridgeHandler(ami, store, FakeRegistry(agent1="given")).on_agent_event(
        event(caller=caller)
    )
    assert ami.calls == []


async def test_a_hostile_agent_name_is_never_consent(tmp_path: Path, store: EvidenceStore) -> None:
    audio = Path(await store.prepare_recording(outcome("training"), call(), T0))
    ami = FakeAmi()
    await BridgeHandler(ami, store, FakeRegistry(agent1="given")).on_agent_event(
        event(agent="agent1;x")
    )
    assert sidecar_of(audio)["reason"] == "agent_refused"
    assert ledger(tmp_path)[0]["agent"]["id"] is None


@pytest.mark.parametrize(
    ("agent2", "flag", "answer"),
    [("given", "1", "given"), ("refused", "0", "refused"), ("given", "0", "refused")],
)
async def test_a_later_agent_of_a_decided_call_is_told_the_truth_and_nothing_restarts(
    tmp_path: Path, store: EvidenceStore, agent2: str, flag: str, answer: str
) -> None:
    """The call was transferred back into a queue: the new agent's gosub asks again."""
    await store.prepare_recording(outcome("training"), call(), T0)
    registry = FakeRegistry(agent1="given", agent2=agent2)
    await BridgeHandler(FakeAmi(), store, registry).on_agent_event(event())
    ami = FakeAmi()
    await BridgeHandler(ami, store, registry).on_agent_event(event(agent="agent2", flag=flag))
    assert ami.calls == [("Setvar", AGENT_CHAN, names.VAR_AGENT_RESULT, answer)]  # no MixMonitor
    assert [e["type"] for e in ledger(tmp_path)] == ["agent_decision"]  # decided once


async def test_a_later_agent_hears_no_training_once_training_has_ended(
    tmp_path: Path, store: EvidenceStore
) -> None:
    await store.prepare_recording(outcome("training"), call(), T0)
    registry = FakeRegistry(agent1="given", agent2="given")
    await BridgeHandler(FakeAmi(), store, registry).on_agent_event(event())
    await store.stop_in_call(CALLER, T0, scope="all", reason="org_left_call", party="external")
    ami = FakeAmi()
    await BridgeHandler(ami, store, registry).on_agent_event(event(agent="agent2"))
    assert ami.calls == [("Setvar", AGENT_CHAN, names.VAR_AGENT_RESULT, "refused")]
