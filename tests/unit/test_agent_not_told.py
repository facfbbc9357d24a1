"""The agent's gosub gave up waiting for the app's answer (``CallconsentAgentLate``): the whisper
said "not for training", so the app refuses the agent-consent purposes whatever it decided.

The pure rule (:func:`callconsent.agents.evidence.not_told`) over sidecars the real store wrote,
and the bridge adapter over a fake AMI and the real evidence store."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from callconsent import names
from callconsent.agents.bridge import BridgeHandler
from callconsent.agents.evidence import NOT_TOLD, not_told
from callconsent.agents.registry import AgentConsent
from callconsent.store import EvidenceStore
from tests.support.ami_fakes import StopAmi
from tests.support.bridge import (
    AGENT_CHAN,
    CALLER,
    REAL_ID,
    T0,
    FakeRegistry,
    call,
    event,
    gone,
    ledger,
    outcome,
    real_call,
    sidecar_of,
)
from tests.support.stasis_fakes import pcm_wav, schema_problems, write_audio

LATER = T0 + timedelta(seconds=3)


def late_event(caller: str = CALLER) -> dict[str, str]:
    return {
        "Event": "UserEvent",
        "UserEvent": names.AGENT_LATE_USER_EVENT,
        "Uniqueid": AGENT_CHAN,
        "Caller": caller,
    }


async def _decided(store: EvidenceStore, *purposes: str) -> tuple[Path, StopAmi]:
    """CALLER's call with ``purposes``; agent1, who consents, answered and the app decided."""
    audio = Path(await store.prepare_recording(outcome(*purposes), call(), T0))
    ami = StopAmi()
    await BridgeHandler(ami, store, FakeRegistry(agent1="given")).on_agent_event(event())
    return audio, ami


# -- the pure rule --------------------------------------------------------------------------


async def test_a_purpose_the_agents_consent_added_is_refused_and_the_rest_stays(
    store: EvidenceStore,
) -> None:
    audio, _ = await _decided(store, "documentation", "training")
    done = not_told(sidecar_of(audio), at=LATER)

    assert (done.outcome, done.refused, done.kept, done.agent_id) == (
        "refused",
        ("training",),
        ("documentation",),
        "agent1",
    )
    assert done.doc is not None
    assert schema_problems("sidecar.schema.json", done.doc) == []
    assert [p["purpose"] for p in done.doc["purposes"]] == ["documentation"]
    (training,) = done.doc["agent_purposes"]
    consent = training["agent_consent"]
    assert (consent["status"], consent["reason"], consent["agent_id"]) == (
        "refused",
        NOT_TOLD,
        "agent1",
    )
    assert consent["decided_at"] == "2026-11-24T09:00:03.000Z"
    assert done.doc["tags"] == ["purpose:documentation", "agent:agent1"]
    assert done.doc["delete_after"] == "2027-02-22T09:00:00.000Z"  # documentation's 90 days


async def test_a_recording_only_the_agents_consent_allowed_is_deleted(
    store: EvidenceStore,
) -> None:
    audio, _ = await _decided(store, "training")
    done = not_told(sidecar_of(audio), at=LATER)
    assert (done.outcome, done.refused, done.kept, done.doc) == ("deleted", ("training",), (), None)


async def test_a_purpose_still_waiting_for_the_agent_is_refused_too(
    store: EvidenceStore,
) -> None:
    both = Path(await store.prepare_recording(outcome("documentation", "training"), call(), T0))
    done = not_told(sidecar_of(both), at=LATER)
    assert (done.outcome, done.refused, done.kept) == ("refused", ("training",), ("documentation",))
    assert done.agent_id is None  # no agent's consent had added anything
    assert done.doc is not None
    assert done.doc["agent_purposes"][0]["agent_consent"]["status"] == "refused"
    assert schema_problems("sidecar.schema.json", done.doc) == []


async def test_nothing_changes_where_no_agent_consent_was_recorded_or_waited(
    store: EvidenceStore,
) -> None:
    docs = Path(await store.prepare_recording(outcome("documentation"), call(), T0))
    done = not_told(sidecar_of(docs), at=LATER)
    assert (done.outcome, done.writes, done.kept) == ("nothing", False, ("documentation",))
    assert not_told(None, at=LATER).outcome == "nothing"
    tomb = {"state": "tombstone", "call": {"uniqueid": CALLER}}
    assert not_told(tomb, at=LATER).outcome == "nothing"


# -- the adapter ----------------------------------------------------------------------------


async def test_a_late_answer_for_training_only_deletes_the_recording_and_stops_it(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio, ami = await _decided(store, "training")
    assert ami.calls[0][0] == "MixMonitor"  # the app had started it: the gosub had gone on
    write_audio(audio, pcm_wav(800))
    await BridgeHandler(ami, store, FakeRegistry(agent1="given")).on_agent_late(late_event())

    assert ami.calls[-1] == ("StopMixMonitor", CALLER)
    assert not audio.exists()
    tomb = sidecar_of(audio)
    assert (tomb["state"], tomb["reason"]) == ("tombstone", NOT_TOLD)
    given, refused, deleted = ledger(tmp_path)
    assert (given["type"], given["status"]) == ("agent_decision", "given")
    assert (refused["type"], refused["status"], refused["reason"]) == (
        "agent_decision",
        "refused",
        NOT_TOLD,
    )
    assert (refused["purposes"], refused["kept_purposes"], refused["recording"]) == (
        ["training"],
        [],
        None,
    )
    assert refused["agent"]["id"] == "agent1"
    assert deleted["type"] == "deleted"
    for entry in (refused, deleted):
        assert schema_problems("ledger-entry.schema.json", entry) == []
    await store.recording_ended(call(), LATER)  # the hangup later changes nothing
    assert len(ledger(tmp_path)) == 3


async def test_a_late_answer_keeps_documentation_recording_without_training(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio, ami = await _decided(store, "documentation", "training")
    await BridgeHandler(ami, store, FakeRegistry(agent1="given")).on_agent_late(late_event())

    assert ami.calls == [("Setvar", AGENT_CHAN, names.VAR_AGENT_RESULT, "given")]  # runs on
    doc = sidecar_of(audio)
    assert doc["state"] == "recording"
    assert [p["purpose"] for p in doc["purposes"]] == ["documentation"]
    assert doc["agent_purposes"][0]["agent_consent"]["reason"] == NOT_TOLD
    assert ledger(tmp_path)[-1]["kept_purposes"] == ["documentation"]
    write_audio(audio, pcm_wav(800))
    await store.recording_ended(call(), LATER)
    final = sidecar_of(audio)
    assert final["state"] == "final"
    assert [p["purpose"] for p in final["purposes"]] == ["documentation"]


class SlowRegistry(FakeRegistry):
    """agent1 consents; the look-up waits until ``go`` is set (a loaded machine)."""

    def __init__(self) -> None:
        super().__init__(agent1="given")
        self.go = asyncio.Event()
        self.asked = asyncio.Event()

    def get(self, agent_id: str) -> AgentConsent | None:
        self.asked.set()
        return super().get(agent_id)


async def test_a_late_event_heard_during_the_decision_is_applied_after_it(
    tmp_path: Path, store: EvidenceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    audio = Path(await store.prepare_recording(outcome("training"), call(), T0))
    registry = SlowRegistry()

    async def slow_lookup(reg: Any, agent_id: str) -> AgentConsent | None:
        registry.asked.set()
        await registry.go.wait()
        return reg.get(agent_id)  # type: ignore[no-any-return]

    monkeypatch.setattr("callconsent.agents.bridge.lookup", slow_lookup)
    ami = StopAmi()
    bridge = BridgeHandler(ami, store, registry)
    deciding = asyncio.create_task(bridge.on_agent_event(event()))
    late = asyncio.create_task(bridge.on_agent_late(late_event()))
    await registry.asked.wait()
    await asyncio.sleep(0.05)
    assert not late.done()  # it waits for the decision, which is still looking the agent up
    registry.go.set()
    await asyncio.gather(deciding, late)

    assert [c[0] for c in ami.calls] == ["MixMonitor", "Setvar", "StopMixMonitor"]
    assert sidecar_of(audio)["reason"] == NOT_TOLD
    assert [(e["type"], e.get("status")) for e in ledger(tmp_path)] == [
        ("agent_decision", "given"),
        ("agent_decision", "refused"),
        ("deleted", None),
    ]


async def test_a_late_event_without_any_decision_refuses_what_waits(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio = Path(await store.prepare_recording(outcome("training"), call(), T0))
    ami = StopAmi()  # the app never heard the agent's event (AMI away, or it was untrusted)
    await BridgeHandler(ami, store, FakeRegistry(agent1="given")).on_agent_late(late_event())

    assert sidecar_of(audio)["reason"] == NOT_TOLD
    (refused, deleted) = ledger(tmp_path)
    assert (refused["status"], refused["reason"], refused["agent"]["id"]) == (
        "refused",
        NOT_TOLD,
        None,
    )
    assert deleted["type"] == "deleted"
    ami.calls.clear()  # a decision that comes after it finds nothing to decide
    await BridgeHandler(ami, store, FakeRegistry(agent1="given")).on_agent_event(event())
    assert ami.calls == [("Setvar", AGENT_CHAN, names.VAR_AGENT_RESULT, "refused")]


@pytest.mark.parametrize("caller", ["", "../etc", "1764.1\r\nEvent: Hangup", "x" * 65])
async def test_a_malformed_late_event_changes_nothing(
    tmp_path: Path, store: EvidenceStore, caller: str
) -> None:
    audio, ami = await _decided(store, "training")
    await BridgeHandler(ami, store, FakeRegistry(agent1="given")).on_agent_late(late_event(caller))
    assert ami.calls[-1][0] == "Setvar"
    assert sidecar_of(audio)["state"] == "recording"
    assert len(ledger(tmp_path)) == 1


async def test_a_storage_error_on_a_late_answer_stops_the_recording(
    store: EvidenceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, ami = await _decided(store, "documentation", "training")

    async def broken(uniqueid: str, at: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "agent_not_told", broken)
    await BridgeHandler(ami, store, FakeRegistry(agent1="given")).on_agent_late(late_event())
    assert ami.calls[-1] == ("StopMixMonitor", CALLER)  # fail safe: nothing it cannot vouch for


async def test_a_late_event_after_the_hangup_deletes_the_final_recording(
    tmp_path: Path, store: EvidenceStore
) -> None:
    # a uniqueid as Asterisk makes them: after the hangup the app finds the file by it
    audio = Path(await store.prepare_recording(outcome("training"), real_call(), T0))
    registry = FakeRegistry(agent1="given")
    await BridgeHandler(StopAmi(), store, registry).on_agent_event(event(caller=REAL_ID))
    write_audio(audio, pcm_wav(800))
    await store.recording_ended(real_call(), LATER)  # the app reads the late event after it
    assert sidecar_of(audio)["state"] == "final"
    ami = StopAmi(fail={"StopMixMonitor"})  # Asterisk: "No such channel"
    with capture_logs() as logs:
        await BridgeHandler(ami, store, registry).on_agent_late(late_event(REAL_ID))

    assert gone(audio)
    assert (sidecar_of(audio)["state"], sidecar_of(audio)["reason"]) == ("tombstone", NOT_TOLD)
    assert [e["type"] for e in ledger(tmp_path)] == [
        "agent_decision",
        "recording_final",
        "agent_decision",
        "deleted",
    ]
    events = {e["event"]: e["log_level"] for e in logs}
    assert events["agent_not_told_call_ended"] == "info"  # the call is over: nothing records
    assert "agent_not_told_stop_failed" not in events


# -- a later agent (the call transferred back into a queue) ---------------------------------

AGENT2_CHAN = "1764000009.51"


def later_event(flag: str = "1") -> dict[str, str]:
    return {**event(agent="agent2", flag=flag), "Uniqueid": AGENT2_CHAN}


def later_late_event() -> dict[str, str]:
    return {**late_event(), "Uniqueid": AGENT2_CHAN}


async def _later_agent_late(
    store: EvidenceStore, *purposes: str, agent2: str = "given"
) -> tuple[Path, StopAmi]:
    """agent1 consented and the app recorded; then agent2 answered the transferred call, and
    agent2's gosub gave up waiting (one app: the same bridge adapter hears all three)."""
    audio = Path(await store.prepare_recording(outcome(*purposes), call(), T0))
    ami = StopAmi()
    registry = FakeRegistry(agent1="given", agent2=agent2)
    bridge = BridgeHandler(ami, store, registry, clock=lambda: LATER)
    await bridge.on_agent_event(event())
    write_audio(audio, pcm_wav(800))
    await bridge.on_agent_event(later_event())
    await bridge.on_agent_late(later_late_event())
    return audio, ami


async def test_a_later_agents_late_answer_stops_training_from_then_and_keeps_what_was_recorded(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio, ami = await _later_agent_late(store, "training")

    assert ami.calls[-1] == ("StopMixMonitor", CALLER)
    assert audio.exists()  # recorded with agent1's consent: it stays
    doc = sidecar_of(audio)
    assert doc["state"] == "recording"
    assert (doc["recording"]["stop_reason"], doc["recording"]["stopped_at"]) == (
        NOT_TOLD,
        "2026-11-24T09:00:03.000Z",
    )
    assert [p["purpose"] for p in doc["purposes"]] == ["training"]
    assert doc["purposes"][0]["agent_consent"]["agent_id"] == "agent1"
    given, stopped = ledger(tmp_path)
    assert (given["type"], given["status"]) == ("agent_decision", "given")
    assert (stopped["type"], stopped["reason"], stopped["outcome"]) == (
        "recording_stopped",
        NOT_TOLD,
        "stopped",
    )
    assert stopped["party"] == {"kind": "internal", "agent_id": "agent2"}
    assert schema_problems("ledger-entry.schema.json", stopped) == []
    await store.recording_ended(call(), LATER + timedelta(seconds=5))
    final = sidecar_of(audio)
    assert (final["state"], [p["purpose"] for p in final["purposes"]]) == ("final", ["training"])


async def test_a_later_agents_late_answer_stops_the_recording_before_the_evidence_waits_for_the_disk(
    store: EvidenceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the party watch stops: nothing of the agent told "not for training" goes on into a
    training-only recording while the ledger line and the sidecar are written."""
    ami = StopAmi()
    written = store.stop_in_call
    seen: list[tuple[str, ...]] = []

    async def watched(*args: Any, **kwargs: Any) -> Any:
        seen.extend(ami.calls)
        return await written(*args, **kwargs)

    monkeypatch.setattr(store, "stop_in_call", watched)
    audio = Path(await store.prepare_recording(outcome("training"), call(), T0))
    bridge = BridgeHandler(ami, store, FakeRegistry(agent1="given", agent2="given"))
    await bridge.on_agent_event(event())
    write_audio(audio, pcm_wav(800))
    await bridge.on_agent_event(later_event())
    await bridge.on_agent_late(later_late_event())

    assert seen[-1] == ("StopMixMonitor", CALLER)  # before the evidence
    assert [c[0] for c in ami.calls].count("StopMixMonitor") == 1  # and once
    assert sidecar_of(audio)["recording"]["stop_reason"] == NOT_TOLD


async def test_a_later_agents_late_answer_ends_training_and_documentation_goes_on(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio, ami = await _later_agent_late(store, "documentation", "training")

    assert "StopMixMonitor" not in [c[0] for c in ami.calls]
    doc = sidecar_of(audio)
    assert [p["purpose"] for p in doc["purposes"]] == ["documentation"]
    (ended,) = doc["ended_purposes"]
    assert (ended["purpose"], ended["reason"], ended["agent_id"]) == (
        "training",
        NOT_TOLD,
        "agent2",
    )
    assert ledger(tmp_path)[-1]["outcome"] == "consent_ended"


async def test_a_later_agent_without_consent_late_leaves_the_party_watchs_stop_as_it_is(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio = Path(await store.prepare_recording(outcome("training"), call(), T0))
    ami = StopAmi()
    bridge = BridgeHandler(ami, store, FakeRegistry(agent1="given", agent2="refused"))
    await bridge.on_agent_event(event())
    await bridge.on_agent_event(later_event(flag="0"))
    # the party watch saw agent2 join without standing consent and ended training at the bridge
    await store.stop_in_call(
        CALLER, T0, scope="consent", reason="agent_not_consenting", party="internal"
    )
    await bridge.on_agent_late(later_late_event())

    assert sidecar_of(audio)["recording"]["stop_reason"] == "agent_not_consenting"
    assert [e.get("reason") for e in ledger(tmp_path)] == ["agent_consent", "agent_not_consenting"]


async def test_a_later_agents_late_event_the_app_did_not_hear_decided_refuses_it_all(
    tmp_path: Path, store: EvidenceStore
) -> None:
    """The app restarted between the later agent's event and its late one: it cannot tell a
    later agent from the first, and refuses every agent-consent purpose (the fail-safe side)."""
    audio, _ = await _decided(store, "training")
    ami = StopAmi()
    await BridgeHandler(ami, store, FakeRegistry(agent1="given")).on_agent_late(later_late_event())
    assert ami.calls == [("StopMixMonitor", CALLER)]
    assert sidecar_of(audio)["reason"] == NOT_TOLD  # tombstone


async def test_a_storage_error_on_a_later_agents_late_answer_stops_the_recording(
    store: EvidenceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    audio = Path(await store.prepare_recording(outcome("documentation", "training"), call(), T0))
    ami = StopAmi()
    bridge = BridgeHandler(ami, store, FakeRegistry(agent1="given", agent2="given"))
    await bridge.on_agent_event(event())
    await bridge.on_agent_event(later_event())

    async def broken(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "stop_in_call", broken)
    await bridge.on_agent_late(later_late_event())
    assert ami.calls[-1] == ("StopMixMonitor", CALLER)
    assert audio.with_suffix(".json").exists()


async def test_the_later_agents_remembered_for_a_late_event_are_bounded(
    store: EvidenceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("callconsent.agents.bridge.LATER_AGENTS_KEPT", 3)
    await store.prepare_recording(outcome("training"), call(), T0)
    ami = StopAmi()
    bridge = BridgeHandler(ami, store, FakeRegistry(agent1="given", agent2="given"))
    await bridge.on_agent_event(event())
    for n in range(5):
        await bridge.on_agent_event({**later_event(), "Uniqueid": f"1764000010.{n}"})
    assert list(bridge._later) == ["1764000010.2", "1764000010.3", "1764000010.4"]
