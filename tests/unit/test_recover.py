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
    held_channels,
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
    """Lists ``channels`` (None: the action fails) and the device states ``devices`` (none by
    default; set ``self.devices = None`` to make DeviceStateList fail)."""

    def __init__(
        self,
        channels: list[dict[str, str]] | None,
        devices: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.devices: dict[str, str] | None = {} if devices is None else devices

    async def core_show_channels(self) -> list[dict[str, str]]:
        if self.channels is None:
            raise AmiError("CoreShowChannels", "not connected")
        return self.channels

    async def device_states(self) -> dict[str, str]:
        self.calls.append(("DeviceStateList",))
        if self.devices is None:
            raise AmiError("DeviceStateList", "Invalid/unknown command")
        return self.devices


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


def test_a_channel_is_on_hold_when_its_device_is() -> None:
    snapshot = [(CALLER, CALLER_CHAN, "b1"), (AGENT, A1, "b1"), (OUTSIDE, TRUNK, "")]
    states = {"PJSIP/agent1": "ONHOLD", "PJSIP/lab-caller": "INUSE", "PJSIP/lab-external": "INUSE"}
    assert held_channels(snapshot, states) == {AGENT}
    assert held_channels(snapshot, {"PJSIP/lab-caller": "ONHOLD"}) == {CALLER}
    assert held_channels(snapshot, {}) == set()
    local = [("1795510800.50", "Local/100@lab-00000003;1", "b1")]
    assert held_channels(local, {"Local/100@lab": "ONHOLD"}) == set()  # not a device's channel


def test_tracker_mutes_a_recovered_call_an_agent_holds() -> None:
    t = PartyTracker(INTERNAL)
    snapshot = [(CALLER, CALLER_CHAN, "b1"), (AGENT, A1, "b1")]
    assert t.recover(snapshot, [CALLER], held={AGENT}) == [
        Mute(CALLER, Pause("hold", "agent", "agent1")),
        CheckAgent(CALLER, A1, "agent1"),
    ]
    assert t.unhold(AGENT) == [Unmute(CALLER)]


async def test_a_call_put_on_hold_while_the_app_was_away_is_muted_until_the_unhold(
    store: EvidenceStore,
) -> None:
    audio = await documentation_recording(store)
    store._recordings.clear()  # a new process: it knows no recording
    ami = ListingAmi(
        [channel(CALLER, CALLER_CHAN, "b1"), channel(AGENT, A1, "b1")],
        {"PJSIP/agent1": "ONHOLD", "PJSIP/lab-caller": "INUSE"},
    )
    watch = PartyWatch(ami, store, NoAgents(), INTERNAL, clock=lambda: NOW)
    assert await recover(watch, ami, store, store._recordings_dir) == [CALLER]
    await watch.drain()
    assert ami.calls[:2] == [("DeviceStateList",), ("MixMonitorMute", CALLER, "1")]
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


async def test_a_recovered_call_nobody_holds_is_not_muted(store: EvidenceStore) -> None:
    audio = await documentation_recording(store)
    store._recordings.clear()
    ami = ListingAmi(
        [channel(CALLER, CALLER_CHAN, "b1"), channel(AGENT, A1, "b1")],
        {"PJSIP/agent1": "INUSE", "PJSIP/lab-caller": "INUSE"},
    )
    watch = PartyWatch(ami, store, NoAgents(), INTERNAL, clock=lambda: NOW)
    assert await recover(watch, ami, store, store._recordings_dir) == [CALLER]
    await watch.drain()
    assert [c[0] for c in ami.calls] == ["DeviceStateList"]
    assert sidecar_doc(audio).get("pauses", []) == []


async def test_unreadable_device_states_stop_the_recovered_recordings_and_say_why(
    store: EvidenceStore,
) -> None:
    """On hold or not, the app cannot tell (e.g. res_manager_devicestate not loaded)."""
    audio = await documentation_recording(store)
    store._recordings.clear()
    ami = ListingAmi([channel(CALLER, CALLER_CHAN, "b1"), channel(AGENT, A1, "b1")])
    ami.devices = None
    watch = PartyWatch(ami, store, NoAgents(), INTERNAL, clock=lambda: NOW)
    with capture_logs() as logs:
        assert await recover(watch, ami, store, store._recordings_dir, clock=lambda: NOW) == []
    assert ami.calls == [("DeviceStateList",), ("StopMixMonitor", CALLER)]
    doc = sidecar_doc(audio)
    assert doc["recording"]["stop_reason"] == WATCH_LOST
    assert [e["log_level"] for e in logs if e["event"] == "recover_hold_unknown"] == ["error"]
