"""Transfers and new parties (R1, R15): the sidecar rule, and the AMI adapter over a fake AMI
and the real evidence store."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from callconsent.parties import stops
from callconsent.parties.adapter import PartyWatch
from callconsent.parties.tracker import Classifier
from callconsent.store import EvidenceStore
from tests.support.ami_fakes import FakeAmi, StopAmi
from tests.support.bridge import (
    CALLER,
    T0,
    FakeRegistry,
    call,
    ledger,
    outcome,
    sidecar_of,
)
from tests.support.bridge import agent_consents as agent1_consents
from tests.support.stasis_fakes import pcm_wav, schema_problems, write_audio

NOW = T0 + timedelta(minutes=5)
A1, A2, TRUNK = "PJSIP/agent1-0000000a", "PJSIP/agent2-0000000b", "PJSIP/trunk-0000000c"
AGENT1, AGENT2, OUTSIDE = "1764000001.43", "1764000001.44", "1764000001.45"


def enter(bridge: str, uniqueid: str, channel: str) -> dict[str, str]:
    return {
        "Event": "BridgeEnter",
        "BridgeUniqueid": bridge,
        "Uniqueid": uniqueid,
        "Channel": channel,
    }


def leave(bridge: str, uniqueid: str) -> dict[str, str]:
    return {"Event": "BridgeLeave", "BridgeUniqueid": bridge, "Uniqueid": uniqueid}


def dial(uniqueid: str, dest: str) -> dict[str, str]:
    return {"Event": "DialBegin", "Uniqueid": uniqueid, "DestChannel": dest}


async def recording(store: EvidenceStore, *purposes: str) -> Path:
    audio = Path(await store.prepare_recording(outcome(*purposes), call(), T0))
    if "training" in purposes:
        await agent1_consents(store)
    write_audio(audio, pcm_wav(800))
    return audio


def watch(store: EvidenceStore, ami: FakeAmi, **consents: str) -> PartyWatch:
    registry = FakeRegistry(agent1="given", **consents)
    return PartyWatch(ami, store, registry, Classifier(("PJSIP/agent*",)), clock=lambda: NOW)


async def transferred(w: PartyWatch, dest_id: str, dest: str) -> None:
    """The caller bridged with agent1, then blind-transferred to ``dest``."""
    for headers in (
        enter("b1", CALLER, "PJSIP/lab-caller-1"),
        enter("b1", AGENT1, A1),
        leave("b1", CALLER),
        dial(CALLER, dest),
        enter("b2", CALLER, "c"),
        enter("b2", dest_id, dest),
    ):
        handler = w.handlers()[headers["Event"]]
        handler(headers)
        await w.drain()


def entries(tmp_path: Path) -> list[dict[str, Any]]:
    return ledger(tmp_path) if (tmp_path / "ledger.jsonl").exists() else []


def stopped_entries(tmp_path: Path) -> list[dict[str, Any]]:
    found = [e for e in entries(tmp_path) if e["type"] == stops.ENTRY_TYPE]
    for e in found:
        assert schema_problems("ledger-entry.schema.json", e) == []
    return found


# -- the rule ----------------------------------------------------------------------------------


async def test_rule_ends_training_and_keeps_documentation_with_its_own_basis(
    store: EvidenceStore,
) -> None:
    doc = sidecar_of(await recording(store, "documentation", "training"))
    done = stops.stop(
        doc, at=NOW, scope="consent", reason="agent_not_consenting", agent_id="agent2"
    )
    assert (done.outcome, done.stopped, done.kept) == (
        "consent_ended",
        ("training",),
        ("documentation",),
    )
    assert done.doc is not None and not done.stops_recording
    assert [p["purpose"] for p in done.doc["purposes"]] == ["documentation"]
    assert done.doc["purposes"][0]["lawful_basis"] == "6(1)(f)"
    assert done.doc["ended_purposes"] == [
        {
            "purpose": "training",
            "ended_at": "2026-11-24T09:05:00.000Z",
            "reason": "agent_not_consenting",
            "agent_id": "agent2",
        }
    ]
    assert "stop_reason" not in done.doc["recording"]


async def test_rule_stops_a_training_only_recording_and_keeps_its_file(
    store: EvidenceStore,
) -> None:
    doc = sidecar_of(await recording(store, "training"))
    done = stops.stop(doc, at=NOW, scope="consent", reason="agent_not_consenting")
    assert done.stops_recording and done.doc is not None
    assert done.doc["recording"]["stop_reason"] == "agent_not_consenting"
    assert [p["purpose"] for p in done.doc["purposes"]] == ["training"]  # consented until now
    again = stops.stop(done.doc, at=NOW, scope="all", reason="org_left_call")
    assert again.outcome == "nothing_to_stop"  # stopped once


async def test_rule_stops_every_purpose_when_the_organisation_leaves(store: EvidenceStore) -> None:
    doc = sidecar_of(await recording(store, "documentation", "training"))
    done = stops.stop(doc, at=NOW, scope="all", reason="org_left_call")
    assert done.stops_recording and done.stopped == ("documentation", "training")
    assert done.doc is not None
    assert (done.doc["recording"]["stopped_at"], done.doc["recording"]["stop_reason"]) == (
        "2026-11-24T09:05:00.000Z",
        "org_left_call",
    )
    assert stops.stop(None, at=NOW, scope="all", reason="org_left_call").outcome == (
        "nothing_to_stop"
    )


async def test_rule_on_documentation_only_ends_no_consent_purpose(store: EvidenceStore) -> None:
    doc = sidecar_of(await recording(store, "documentation"))
    assert stops.stop(doc, at=NOW, scope="consent", reason="agent_not_consenting").outcome == (
        "nothing_to_stop"
    )


# -- the adapter -------------------------------------------------------------------------------


async def test_transfer_to_an_agent_without_consent_stops_the_training_recording(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio = await recording(store, "training")
    ami = StopAmi()
    await transferred(watch(store, ami, agent2="refused"), AGENT2, A2)
    assert ("StopMixMonitor", CALLER) in ami.calls
    [entry] = stopped_entries(tmp_path)
    assert (entry["reason"], entry["outcome"], entry["party"]) == (
        "agent_not_consenting",
        "stopped",
        {"kind": "internal", "agent_id": "agent2"},
    )
    await store.recording_ended(call(), NOW)
    final = sidecar_of(audio)
    assert final["state"] == "final" and final["recording"]["stop_reason"] == "agent_not_consenting"
    assert audio.exists()


async def test_transfer_to_an_agent_with_consent_keeps_recording(
    tmp_path: Path, store: EvidenceStore
) -> None:
    await recording(store, "training")
    ami = StopAmi()
    await transferred(watch(store, ami, agent2="given"), AGENT2, A2)
    assert ("StopMixMonitor", CALLER) not in ami.calls
    assert stopped_entries(tmp_path) == []


async def test_transfer_to_an_agent_without_consent_keeps_documentation_running(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio = await recording(store, "documentation", "training")
    ami = StopAmi()
    await transferred(watch(store, ami), AGENT2, A2)  # agent2 unknown to the registry
    assert ("StopMixMonitor", CALLER) not in ami.calls
    [entry] = stopped_entries(tmp_path)
    assert (entry["outcome"], entry["purposes"], entry["kept_purposes"]) == (
        "consent_ended",
        ["training"],
        ["documentation"],
    )
    doc = sidecar_of(audio)
    assert [p["purpose"] for p in doc["purposes"]] == ["documentation"]
    assert "purpose:training" not in doc["tags"]


async def test_transfer_outside_stops_at_the_dial_before_anything_is_written(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio = await recording(store, "documentation", "training")
    ami = StopAmi()
    await transferred(watch(store, ami), OUTSIDE, TRUNK)
    assert ami.calls.count(("StopMixMonitor", CALLER)) == 1  # at the dial; once
    [entry] = stopped_entries(tmp_path)
    assert (entry["reason"], entry["outcome"], entry["party"]["kind"]) == (
        "org_left_call",
        "stopped",
        "external",
    )
    assert sidecar_of(audio)["recording"]["stop_reason"] == "org_left_call"


async def test_calls_the_app_does_not_record_are_not_touched(
    tmp_path: Path, store: EvidenceStore
) -> None:
    ami = StopAmi()
    await transferred(watch(store, ami), OUTSIDE, TRUNK)
    assert ami.calls == [] and entries(tmp_path) == []


async def test_a_failed_stop_still_writes_the_evidence(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio = await recording(store, "documentation")
    ami = StopAmi(fail={"StopMixMonitor"})
    await transferred(watch(store, ami), OUTSIDE, TRUNK)
    assert sidecar_of(audio)["recording"]["stop_reason"] == "org_left_call"
    assert len(stopped_entries(tmp_path)) == 1


async def test_malformed_events_are_ignored(tmp_path: Path, store: EvidenceStore) -> None:
    await recording(store, "documentation")
    ami = StopAmi()
    w = watch(store, ami)
    w.on_bridge_enter({"Event": "BridgeEnter", "Uniqueid": CALLER})  # no bridge
    w.on_bridge_enter(enter("b1", "../x", TRUNK))
    w.on_dial_begin({"Event": "DialBegin", "DestChannel": TRUNK})  # no dialling channel
    w.on_hangup({})
    await w.drain()
    assert ami.calls == [] and stopped_entries(tmp_path) == []


# -- AMI away (R36) -----------------------------------------------------------------------------


async def test_a_recording_live_through_an_ami_gap_stops_when_ami_is_back(
    tmp_path: Path, store: EvidenceStore
) -> None:
    """A transfer during the gap would have gone unseen: fail closed, reason watch_lost."""
    audio = await recording(store, "documentation")
    ami = StopAmi()

    assert await watch(store, ami).watch_lost() == 1

    assert ("StopMixMonitor", CALLER) in ami.calls
    [entry] = stopped_entries(tmp_path)
    assert (entry["reason"], entry["outcome"], entry["party"]["kind"]) == (
        "watch_lost",
        "stopped",
        "external",
    )
    await store.recording_ended(call(), NOW)
    final = sidecar_of(audio)
    assert schema_problems("sidecar.schema.json", final) == []
    assert final["state"] == "final" and final["recording"]["stop_reason"] == "watch_lost"
    assert audio.exists()


async def test_watch_lost_with_nothing_recording_stops_nothing(
    tmp_path: Path, store: EvidenceStore
) -> None:
    ami = StopAmi()
    assert await watch(store, ami).watch_lost() == 0
    assert ami.calls == [] and stopped_entries(tmp_path) == []


async def test_watch_lost_leaves_a_recording_whose_call_ended_in_the_gap_to_its_finalisation(
    tmp_path: Path, store: EvidenceStore
) -> None:
    """Found gone at the AMI login (callconsent.stasis_ami): no stop after its end."""
    await recording(store, "documentation")
    ami = StopAmi()
    assert await watch(store, ami).watch_lost(ended={CALLER}) == 0
    assert ami.calls == [] and stopped_entries(tmp_path) == []
