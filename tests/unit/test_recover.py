"""After a restart (R1, R36): recorded calls in progress are found and watched again, and the
app stops every recording when it cannot tell who is on the calls."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from callconsent.ami import AmiError
from callconsent.parties.adapter import PartyWatch
from callconsent.parties.recover import WATCH_LOST, recover
from callconsent.parties.tracker import CheckAgent, Classifier, PartyTracker, StopAll
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
    def __init__(self, channels: list[dict[str, str]] | None) -> None:
        super().__init__()
        self.channels = channels

    async def core_show_channels(self) -> list[dict[str, str]]:
        if self.channels is None:
            raise AmiError("CoreShowChannels", "not connected")
        return self.channels


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
