"""After a restart (R1, R36): recorded calls in progress are found and watched again, and the
app stops every recording when it cannot tell who is on the calls."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from structlog.testing import capture_logs

from callconsent.ami import AmiError
from callconsent.parties.adapter import PartyWatch
from callconsent.parties.hold import Mute, Pause, Unmute
from callconsent.parties.recover import WATCH_LOST, recover
from callconsent.parties.tracker import (
    CheckAgent,
    Classifier,
    PartyTracker,
    StopAll,
    holding_parties,
)
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
AGENT, OUTSIDE = "1795510800.43", "1795510800.44"
A1, TRUNK = "PJSIP/agent1-0000000a", "PJSIP/lab-external-0000000c"
NOW = T0 + timedelta(minutes=5)


class ListingAmi(PartyAmi):
    """Lists ``channels`` (None: the action fails); ``held``: the uniqueids whose
    ``CHANNEL(onhold)`` is 1; ``gone``: channels Getvar no longer finds; ``hold_error``: the
    detail every other Getvar fails with (None: it answers)."""

    def __init__(
        self,
        channels: list[dict[str, str]] | None,
        held: set[str] | None = None,
        *,
        gone: set[str] | None = None,
        hold_error: str | None = None,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.held = held or set()
        self.gone = gone or set()
        self.hold_error = hold_error

    async def core_show_channels(self) -> list[dict[str, str]]:
        if self.channels is None:
            raise AmiError("CoreShowChannels", "not connected")
        return self.channels

    async def channel_on_hold(self, channel: str) -> bool:
        self.calls.append(("Getvar", channel))
        if channel in self.gone:
            raise AmiError("Getvar", "No such channel")
        if self.hold_error is not None:
            raise AmiError("Getvar", self.hold_error)
        return channel in self.held


def channel(uniqueid: str, name: str, bridge: str = "") -> dict[str, str]:
    return {"Event": "CoreShowChannel", "Uniqueid": uniqueid, "Channel": name, "BridgeId": bridge}


def test_tracker_checks_every_party_again_after_a_restart() -> None:
    t = PartyTracker(INTERNAL)
    snapshot = [(CALLER, "PJSIP/lab-caller-1", "b1"), (AGENT, A1, "b1")]
    assert t.recover(snapshot, [CALLER]) == [CheckAgent(CALLER, A1, "agent1")]
    t.leave("b1", CALLER)
    assert t.dial(CALLER, TRUNK) == [StopAll(CALLER, "external")]  # a later blind transfer


def test_tracker_stops_a_recovered_call_with_no_internal_party() -> None:
    t = PartyTracker(INTERNAL)
    snapshot = [(CALLER, "PJSIP/lab-caller-1", "b1"), (OUTSIDE, TRUNK, "b1")]
    assert t.recover(snapshot, [CALLER]) == [StopAll(CALLER, "external")]


async def test_recover_adopts_the_live_recording_and_stops_it_at_a_transfer_outside(
    store: EvidenceStore,
) -> None:
    await documentation_recording(store)
    store._recordings.clear()  # a new process: it knows no recording
    ami = ListingAmi([channel(CALLER, "PJSIP/lab-caller-1", "b1"), channel(AGENT, A1, "b1")])
    watch = PartyWatch(ami, store, NoAgents(), INTERNAL, clock=lambda: NOW)
    assert await recover(watch, ami, store, store._recordings_dir) == [CALLER]
    assert store.recording_live(CALLER)
    await watch.drain()
    for headers in (
        {"Event": "BridgeLeave", "BridgeUniqueid": "b1", "Uniqueid": CALLER},
        {"Event": "DialBegin", "Uniqueid": CALLER, "DestChannel": TRUNK},
    ):
        watch.handlers()[headers["Event"]](headers)
    await watch.drain()
    assert ("StopMixMonitor", CALLER) in ami.calls


async def test_a_failed_listing_stops_every_live_recording_and_the_sidecar_says_why(
    store: EvidenceStore,
) -> None:
    audio = await documentation_recording(store)
    store._recordings.clear()
    ami = ListingAmi(None)
    watch = PartyWatch(ami, store, NoAgents(), INTERNAL, clock=lambda: NOW)
    assert await recover(watch, ami, store, store._recordings_dir, clock=lambda: T0) == []
    assert ami.calls == [("StopMixMonitor", CALLER)]
    assert sidecar_doc(audio)["recording"]["stop_reason"] == WATCH_LOST


async def test_channels_without_a_live_recording_are_not_adopted(
    store: EvidenceStore, tmp_path: Path
) -> None:
    ami = ListingAmi([channel(AGENT, A1, "b1"), channel("../x", "PJSIP/x-1")])
    watch = PartyWatch(ami, store, NoAgents(), INTERNAL, clock=lambda: NOW)
    assert await recover(watch, ami, store, tmp_path / "recordings") == []
    assert ami.calls == []


# -- holds the app did not hear (R2) -----------------------------------------------------------

CALLER_CHAN = "PJSIP/lab-caller-0000000b"


async def _recovered(
    store: EvidenceStore, ami: ListingAmi, *, muted_before: bool = False
) -> tuple[Path, PartyWatch]:
    """CALLER's documentation recording, found again by a new process (which knew nothing of
    it) from ``ami``'s listing; the watch it runs. ``muted_before``: the process before had
    muted it for agent1's hold (an open pause in the sidecar)."""
    audio = await documentation_recording(store)
    if muted_before:
        await store.record_pause(CALLER, T0, Pause("hold", "agent", "agent1"))
    store._recordings.clear()  # a new process: it knows no recording
    watch = PartyWatch(ami, store, NoAgents(), INTERNAL, clock=lambda: NOW)
    assert await recover(watch, ami, store, store._recordings_dir) == [CALLER]
    await watch.drain()
    return audio, watch


def test_the_party_holding_is_the_other_side_of_the_held_channels_bridge() -> None:
    """Asterisk flags the channel it told to hold (CHANNEL(onhold)): the caller's when agent1's
    phone holds (measured on Asterisk 22), agent1's when the caller holds."""
    snapshot = [(CALLER, CALLER_CHAN, "b1"), (AGENT, A1, "b1"), (OUTSIDE, TRUNK, "b2")]
    assert holding_parties(snapshot, {CALLER}) == {AGENT}
    assert holding_parties(snapshot, {AGENT}) == {CALLER}
    assert holding_parties(snapshot, set()) == set()
    assert holding_parties([(CALLER, CALLER_CHAN, "")], {CALLER}) == set()  # in no bridge
    three = [*snapshot[:2], (OUTSIDE, TRUNK, "b1")]
    assert holding_parties(three, {CALLER}) == {AGENT, OUTSIDE}  # who of them: unknown, both


def test_tracker_mutes_a_recovered_call_an_agent_holds() -> None:
    t = PartyTracker(INTERNAL)
    snapshot = [(CALLER, CALLER_CHAN, "b1"), (AGENT, A1, "b1")]
    assert t.recover(snapshot, [CALLER], held={AGENT}) == [
        Mute(CALLER, Pause("hold", "agent", "agent1")),
        CheckAgent(CALLER, A1, "agent1"),
    ]
    assert t.unhold(AGENT) == [Unmute(CALLER)]


OTHER_CALL = [channel("1795510800.60", "PJSIP/lab-caller-0000000d", "b9")]


async def test_a_call_an_agent_put_on_hold_while_the_app_was_away_is_muted_until_the_unhold(
    store: EvidenceStore,
) -> None:
    ami = ListingAmi(
        [channel(CALLER, CALLER_CHAN, "b1"), channel(AGENT, A1, "b1"), *OTHER_CALL],
        held={CALLER},  # agent1's phone holds: Asterisk flags the caller's channel
    )
    audio, watch = await _recovered(store, ami)
    assert ami.calls[:3] == [("Getvar", CALLER), ("Getvar", AGENT), ("MixMonitorMute", CALLER, "1")]
    (pause,) = sidecar_doc(audio)["pauses"]
    assert (pause["reason"], pause["held_by"], pause["agent_id"], pause["ended_at"]) == (
        "hold",
        "agent",
        "agent1",
        None,
    )
    unhold = {"Event": "Unhold", "Uniqueid": AGENT, "Channel": A1}
    watch.handlers()["Unhold"](unhold)
    await watch.drain()
    assert ("MixMonitorMute", CALLER, "0") in ami.calls
    assert sidecar_doc(audio)["pauses"][0]["ended_at"] is not None


async def test_a_call_the_caller_put_on_hold_while_the_app_was_away_is_muted_until_the_unhold(
    store: EvidenceStore,
) -> None:
    ami = ListingAmi(
        [channel(CALLER, CALLER_CHAN, "b1"), channel(AGENT, A1, "b1")],
        held={AGENT},  # the caller holds: Asterisk flags agent1's channel
    )
    audio, watch = await _recovered(store, ami)
    (pause,) = sidecar_doc(audio)["pauses"]
    assert (pause["held_by"], pause["agent_id"]) == ("caller", None)
    watch.handlers()["Unhold"]({"Event": "Unhold", "Uniqueid": CALLER, "Channel": CALLER_CHAN})
    await watch.drain()
    assert ami.calls[-1] == ("MixMonitorMute", CALLER, "0")
    assert sidecar_doc(audio)["pauses"][0]["ended_at"] is not None


async def test_a_recovered_call_nobody_holds_is_not_muted(store: EvidenceStore) -> None:
    ami = ListingAmi([channel(CALLER, CALLER_CHAN, "b1"), channel(AGENT, A1, "b1"), *OTHER_CALL])
    audio, _watch = await _recovered(store, ami)
    assert ami.calls == [("Getvar", CALLER), ("Getvar", AGENT)]  # not the other call's channel
    assert sidecar_doc(audio).get("pauses", []) == []


async def test_a_party_gone_since_the_listing_is_not_on_hold(store: EvidenceStore) -> None:
    ami = ListingAmi([channel(CALLER, CALLER_CHAN, "b1"), channel(AGENT, A1, "b1")], gone={AGENT})
    audio, _watch = await _recovered(store, ami)
    assert "StopMixMonitor" not in [c[0] for c in ami.calls]
    assert sidecar_doc(audio).get("pauses", []) == []


async def test_unreadable_hold_flags_stop_the_recovered_recordings_and_say_why(
    store: EvidenceStore,
) -> None:
    """On hold or not, the app cannot tell (e.g. Getvar refused: no write class "call")."""
    audio = await documentation_recording(store)
    store._recordings.clear()
    ami = ListingAmi(
        [channel(CALLER, CALLER_CHAN, "b1"), channel(AGENT, A1, "b1")],
        hold_error="Permission denied",
    )
    watch = PartyWatch(ami, store, NoAgents(), INTERNAL, clock=lambda: NOW)
    with capture_logs() as logs:
        assert await recover(watch, ami, store, store._recordings_dir, clock=lambda: NOW) == []
    assert ami.calls == [("Getvar", CALLER), ("StopMixMonitor", CALLER)]
    doc = sidecar_doc(audio)
    assert doc["recording"]["stop_reason"] == WATCH_LOST
    assert [e["log_level"] for e in logs if e["event"] == "recover_hold_unknown"] == ["error"]


def test_tracker_unmutes_a_recovered_call_whose_hold_ended_while_the_app_was_away() -> None:
    t = PartyTracker(INTERNAL)
    snapshot = [(CALLER, CALLER_CHAN, "b1"), (AGENT, A1, "b1")]
    assert t.recover(snapshot, [CALLER], paused={CALLER}) == [
        Unmute(CALLER),
        CheckAgent(CALLER, A1, "agent1"),
    ]


def test_tracker_keeps_a_recovered_call_muted_while_its_hold_lasts() -> None:
    t = PartyTracker(INTERNAL)
    snapshot = [(CALLER, CALLER_CHAN, "b1"), (AGENT, A1, "b1")]
    assert t.recover(snapshot, [CALLER], held={AGENT}, paused={CALLER}) == [
        CheckAgent(CALLER, A1, "agent1")
    ]  # muted already: no second pause
    assert t.unhold(AGENT) == [Unmute(CALLER)]


async def test_a_call_muted_before_the_restart_and_unheld_meanwhile_is_unmuted(
    store: EvidenceStore,
) -> None:
    ami = ListingAmi([channel(CALLER, CALLER_CHAN, "b1"), channel(AGENT, A1, "b1")])
    audio, _watch = await _recovered(store, ami, muted_before=True)
    assert ("MixMonitorMute", CALLER, "0") in ami.calls
    (pause,) = sidecar_doc(audio)["pauses"]
    assert (pause["held_by"], pause["agent_id"]) == ("agent", "agent1")
    assert pause["ended_at"] == "2026-11-24T09:05:00.000Z"  # ended by the restarted app (NOW)


async def test_a_call_muted_before_the_restart_and_still_held_stays_muted_until_the_unhold(
    store: EvidenceStore,
) -> None:
    ami = ListingAmi(
        [channel(CALLER, CALLER_CHAN, "b1"), channel(AGENT, A1, "b1")],
        held={CALLER},  # agent1's phone still holds
    )
    audio, watch = await _recovered(store, ami, muted_before=True)
    assert [c for c in ami.calls if c[0] == "MixMonitorMute"] == []  # muted already
    assert sidecar_doc(audio)["pauses"][0]["ended_at"] is None
    watch.handlers()["Unhold"]({"Event": "Unhold", "Uniqueid": AGENT, "Channel": A1})
    await watch.drain()
    assert ami.calls[-1] == ("MixMonitorMute", CALLER, "0")
    assert len(sidecar_doc(audio)["pauses"]) == 1
    assert sidecar_doc(audio)["pauses"][0]["ended_at"] is not None
