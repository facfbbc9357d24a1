"""Hold, parking and a caller left alone (R2): the pure rules, the tracker's Mute/Unmute, and the
party adapter muting the recording over a fake AMI with the real evidence store."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from callconsent.evidence.paths import recording_paths
from callconsent.parties import adapter, hold
from callconsent.parties.adapter import PartyWatch
from callconsent.parties.hold import Mute, Pause, Unmute
from callconsent.parties.tracker import Classifier, PartyTracker
from callconsent.store import EvidenceStore
from tests.support.party_fakes import (
    CALLER,
    T0,
    NoAgents,
    PartyAmi,
    documentation_recording,
    sidecar_doc,
)

INTERNAL = Classifier(("PJSIP/agent*",))
AGENT, OTHER = "1764000001.43", "1764000001.44"
A1, CALLER_CHAN, TRUNK = "PJSIP/agent1-0000000a", "PJSIP/lab-caller-00000001", "PJSIP/trunk-1"
NOW = T0 + timedelta(minutes=5)


def pause_for(members: dict[str, str], holders: dict[str, str], parked: bool = False) -> object:
    return hold.pause_for(
        CALLER,
        members,
        holders,
        holding_bridge=parked,
        is_internal=INTERNAL.is_internal,
        agent_id_of=lambda c: "agent1" if c == A1 else None,
    )


# -- the rule ----------------------------------------------------------------------------------


def test_an_agent_holding_pauses_the_caller_and_names_the_agent() -> None:
    members = {CALLER: CALLER_CHAN, AGENT: A1}
    assert pause_for(members, {AGENT: A1}) == Pause("hold", "agent", "agent1")
    assert pause_for(members, {}) is None


def test_the_caller_holding_pauses_the_recording_too() -> None:
    assert pause_for({CALLER: CALLER_CHAN, AGENT: A1}, {CALLER: CALLER_CHAN}) == Pause(
        "hold", "caller"
    )


def test_an_outside_party_holding_is_named_external() -> None:
    members = {CALLER: CALLER_CHAN, AGENT: A1, OTHER: TRUNK}
    assert pause_for(members, {OTHER: TRUNK}) == Pause("hold", "external")


def test_a_caller_alone_or_parked_is_paused() -> None:
    assert pause_for({CALLER: CALLER_CHAN}, {}) == Pause("alone")
    assert pause_for({CALLER: CALLER_CHAN, OTHER: TRUNK}, {}, parked=True) == Pause("parked")


def test_holding_bridges_are_recognised_by_technology_or_type() -> None:
    assert hold.is_holding_bridge("holding_bridge", "parking")
    assert hold.is_holding_bridge("", "parking")
    assert not hold.is_holding_bridge("simple_bridge", "basic")


async def test_sidecar_lists_each_pause_with_start_end_and_who_held(store: EvidenceStore) -> None:
    doc = sidecar_doc(await documentation_recording(store))
    paused = hold.started(doc, at=NOW, pause=Pause("hold", "agent", "agent1"))
    assert paused.outcome == "paused" and paused.doc is not None
    assert hold.started(paused.doc, at=NOW, pause=Pause("alone")) == hold.NOTHING  # one open
    resumed = hold.ended(paused.doc, at=NOW + timedelta(seconds=10))
    assert resumed.outcome == "resumed" and resumed.doc is not None
    assert resumed.doc["pauses"] == [
        {
            "started_at": "2026-11-24T09:05:00.000Z",
            "ended_at": "2026-11-24T09:05:10.000Z",
            "reason": "hold",
            "held_by": "agent",
            "agent_id": "agent1",
        }
    ]
    assert hold.ended(resumed.doc, at=NOW) == hold.NOTHING  # nothing open
    assert hold.started(None, at=NOW, pause=Pause("alone")) == hold.NOTHING


# -- the tracker -------------------------------------------------------------------------------


@pytest.fixture
def tracker() -> PartyTracker:
    t = PartyTracker(INTERNAL)
    t.watch(CALLER)
    t.enter("b1", CALLER, CALLER_CHAN)
    t.enter("b1", AGENT, A1)
    return t


def test_tracker_mutes_on_hold_and_unmutes_on_unhold_once(tracker: PartyTracker) -> None:
    assert tracker.hold(AGENT, A1) == [Mute(CALLER, Pause("hold", "agent", "agent1"))]
    assert tracker.hold(CALLER, CALLER_CHAN) == []  # already muted: one pause
    assert tracker.unhold(AGENT) == []  # the caller still holds
    assert tracker.unhold(CALLER) == [Unmute(CALLER)]


def test_tracker_mutes_a_caller_moved_to_a_parking_lot_until_an_agent_picks_it_up(
    tracker: PartyTracker,
) -> None:
    tracker.leave("b1", CALLER)
    tracker.enter("lot", OTHER, "PJSIP/other-caller-2", holding=True)  # another parked call
    out = tracker.enter("lot", CALLER, CALLER_CHAN, holding=True)
    assert out == [Mute(CALLER, Pause("parked"))]  # no StopAll: parked calls do not talk
    tracker.leave("lot", CALLER)
    assert tracker.enter("b2", CALLER, CALLER_CHAN) == []  # alone: stays muted, one pause
    assert tracker.enter("b2", AGENT, A1) == [Unmute(CALLER)]


def test_tracker_ignores_holds_of_calls_it_does_not_watch() -> None:
    t = PartyTracker(INTERNAL)
    t.enter("b1", CALLER, CALLER_CHAN)
    t.enter("b1", AGENT, A1)
    assert t.hold(AGENT, A1) == []


# -- the adapter -------------------------------------------------------------------------------


def hold_event(kind: str, uniqueid: str, channel: str) -> dict[str, str]:
    return {"Event": kind, "Uniqueid": uniqueid, "Channel": channel}


def bridge_enter(uniqueid: str, channel: str, technology: str = "simple_bridge") -> dict[str, str]:
    return {
        "Event": "BridgeEnter",
        "BridgeUniqueid": "b1",
        "BridgeTechnology": technology,
        "BridgeType": "basic",
        "Uniqueid": uniqueid,
        "Channel": channel,
    }


async def feed(w: PartyWatch, *events: dict[str, str]) -> None:
    for headers in events:
        w.handlers()[headers["Event"]](headers)
    await w.drain()


@pytest.fixture
def no_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adapter, "ALONE_GRACE_SECONDS", 0.0)


async def test_agent_hold_mutes_both_directions_and_the_sidecar_lists_the_pause(
    store: EvidenceStore,
) -> None:
    audio = await documentation_recording(store)
    ami = PartyAmi()
    w = PartyWatch(ami, store, NoAgents(), INTERNAL, clock=lambda: NOW)
    await feed(w, bridge_enter(CALLER, CALLER_CHAN), bridge_enter(AGENT, A1))
    assert ami.calls == []  # alone only for a moment at the bridge: no pause
    await feed(w, hold_event("Hold", AGENT, A1))
    assert ami.calls == [("MixMonitorMute", CALLER, "1")]
    await feed(w, hold_event("Unhold", AGENT, A1))
    assert ami.calls[-1] == ("MixMonitorMute", CALLER, "0")
    pauses = sidecar_doc(audio)["pauses"]
    assert [(p["reason"], p["held_by"], p["agent_id"]) for p in pauses] == [
        ("hold", "agent", "agent1")
    ]
    assert pauses[0]["ended_at"] is not None


async def test_a_caller_left_alone_is_muted_after_the_grace_and_unmuted_when_an_agent_joins(
    store: EvidenceStore, no_grace: None
) -> None:
    audio = await documentation_recording(store)
    ami = PartyAmi()
    w = PartyWatch(ami, store, NoAgents(), INTERNAL, clock=lambda: NOW)
    await feed(w, bridge_enter(CALLER, CALLER_CHAN))
    assert ami.calls == [("MixMonitorMute", CALLER, "1")]
    await feed(w, bridge_enter(AGENT, A1))
    assert ami.calls[-1] == ("MixMonitorMute", CALLER, "0")
    assert [p["reason"] for p in sidecar_doc(audio)["pauses"]] == ["alone"]


async def test_a_failed_mute_writes_no_pause_and_sends_no_unmute(store: EvidenceStore) -> None:
    audio = await documentation_recording(store)
    ami = PartyAmi(fail={"MixMonitorMute"})
    w = PartyWatch(ami, store, NoAgents(), INTERNAL, clock=lambda: NOW)
    await feed(w, bridge_enter(CALLER, CALLER_CHAN), bridge_enter(AGENT, A1))
    await feed(
        w, hold_event("Hold", CALLER, CALLER_CHAN), hold_event("Unhold", CALLER, CALLER_CHAN)
    )
    assert ami.calls == [("MixMonitorMute", CALLER, "1")]
    assert "pauses" not in sidecar_doc(audio)


async def test_a_pause_after_the_recording_ended_writes_nothing(store: EvidenceStore) -> None:
    await documentation_recording(store)
    where = recording_paths(store._recordings_dir, CALLER, T0)
    store._recordings.pop(CALLER)  # ended
    done = await store.record_pause(CALLER, NOW, Pause("hold", "caller"))
    assert done == hold.NOTHING
    assert "pauses" not in sidecar_doc(where.audio)
    await asyncio.sleep(0)
