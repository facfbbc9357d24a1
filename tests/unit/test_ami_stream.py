"""The AMI client reads the stream itself (callconsent.ami over a fake AMI server): a trusted
event reaches its handler with the keys it asked for, an untrusted one reaches no handler and
stops the recording of every call it names (callconsent.untrusted), answers still resolve."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from callconsent.ami import Ami, AmiError, Untrusted
from callconsent.untrusted import UNTRUSTED_EVENT, UntrustedEventGuard
from tests.support import ami_samples as s
from tests.support.ami_server import FakeAmiServer

CALLER = "1796455236.0"
AGENT_KEYS = ("Caller", "Agent", "Flag")
NOW = datetime(2026, 12, 5, 7, 0, tzinfo=UTC)


class Seen:
    def __init__(self) -> None:
        self.user: list[dict[str, str]] = []
        self.bridge: list[dict[str, str]] = []
        self.untrusted: list[Untrusted] = []

    async def on_user(self, headers: dict[str, str]) -> None:
        self.user.append(headers)

    def on_bridge(self, headers: dict[str, str]) -> None:
        self.bridge.append(headers)


@pytest.fixture
async def server() -> AsyncIterator[FakeAmiServer]:
    srv = FakeAmiServer(astdb={("callconsent", "agent/agent1"): "1"})
    await srv.start()
    yield srv
    await srv.close()


async def _connected(server: FakeAmiServer, seen: Seen) -> Ami:
    ami = Ami(host="127.0.0.1", port=server.port, username="u", password="p", timeout=2.0)
    ami.on_user_event("CallconsentAgent", seen.on_user, keys=AGENT_KEYS)
    ami.on_event("BridgeEnter", seen.on_bridge)
    ami.on_untrusted(seen.untrusted.append)
    await ami.connect(wait=2.0)
    return ami


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.01)


async def test_a_plain_user_event_reaches_its_handler_with_only_the_dialplans_keys(
    server: FakeAmiServer,
) -> None:
    seen = Seen()
    ami = await _connected(server, seen)
    await server.push(s.USEREVENT.encode() + b"\r\n")
    await _settle()
    await ami.close()
    assert seen.user == [
        {"Caller": CALLER, "Agent": "agent1", "Flag": "0", "Uniqueid": "1796455252.1"}
    ]
    assert seen.untrusted == []


async def test_a_forged_user_event_reaches_no_handler_and_is_reported_with_its_ids(
    server: FakeAmiServer,
) -> None:
    seen = Seen()
    ami = await _connected(server, seen)
    await server.push(
        s.USEREVENT_FORGED.encode() + b"\r\n" + s.BRIDGEENTER_FORGED.encode() + b"\r\n"
    )
    await _settle()
    await ami.close()
    assert seen.user == [] and seen.bridge == []
    assert [u.event for u in seen.untrusted] == ["UserEvent", "BridgeEnter"]
    assert all({"1700000000.1", CALLER} <= u.ids for u in seen.untrusted)


async def test_events_split_at_every_byte_and_inside_a_utf8_character_read_the_same(
    server: FakeAmiServer,
) -> None:
    seen = Seen()
    ami = await _connected(server, seen)
    data = s.BRIDGEENTER.replace("<unknown>", "Søren Ærø").encode() + b"\r\n"
    for i in range(len(data)):
        await server.push(data[i : i + 1])
    await _settle()
    await ami.close()
    assert len(seen.bridge) == 1
    assert seen.bridge[0]["BridgeUniqueid"] == "a2867057-1a6a-4295-98be-320c9e0ac06e"
    assert seen.bridge[0]["ConnectedLineName"] == "Søren Ærø"


async def test_an_action_answer_still_resolves_and_a_forged_answer_does_not(
    server: FakeAmiServer,
) -> None:
    seen = Seen()
    ami = await _connected(server, seen)
    assert await ami.db_get("callconsent", "agent/agent1") == "1"
    assert await ami.db_get("callconsent", "agent/nobody") is None
    # a forged "answer" inside an event: reported, never taken as an answer
    await server.push(
        s.NEWCHANNEL.replace(
            "CallerIDNum: +4520007101", "CallerIDNum: 1\r\nResponse: Success"
        ).encode()
        + b"\r\n"
    )
    await _settle()
    await ami.close()
    assert [u.problems for u in seen.untrusted] == [("response_in_event",)]


def _channel(uniqueid: str, number: str) -> list[str]:
    return [
        f"Channel: PJSIP/lab-{uniqueid}",
        f"Uniqueid: {uniqueid}",
        f"Linkedid: {uniqueid}",
        f"CallerIDNum: {number}",
        "BridgeId: ",
    ]


async def test_the_channels_in_progress_are_listed_for_the_restart_recovery(
    server: FakeAmiServer,
) -> None:
    server.channels = [_channel("1700000000.1", "+4520007101"), _channel("1700000000.2", "1")]
    ami = await _connected(server, Seen())
    listed = await ami.core_show_channels()
    await ami.close()
    assert [c["Uniqueid"] for c in listed] == ["1700000000.1", "1700000000.2"]


async def test_a_channels_hold_flag_is_read_with_getvar_and_a_gone_channel_says_so(
    server: FakeAmiServer,
) -> None:
    server.channel_vars = {
        "1700000000.1": {"CHANNEL(onhold)": "1"},
        "1700000000.2": {"CHANNEL(onhold)": "0"},
    }
    ami = await _connected(server, Seen())
    held = [await ami.channel_on_hold(u) for u in ("1700000000.1", "1700000000.2")]
    with pytest.raises(AmiError) as gone:
        await ami.channel_on_hold("1700000000.3")
    await ami.close()
    assert held == [True, False]
    assert gone.value.channel_gone
    asked = [a for a in server.actions if a.get("Action") == "Getvar"]
    assert {(a["Channel"], a["Variable"]) for a in asked} == {
        ("1700000000.1", "CHANNEL(onhold)"),
        ("1700000000.2", "CHANNEL(onhold)"),
        ("1700000000.3", "CHANNEL(onhold)"),
    }


async def test_a_channel_list_with_forged_caller_text_fails_rather_than_hide_a_call(
    server: FakeAmiServer,
) -> None:
    """A caller's line breaks in one item must not drop that item from the list silently: the
    recovery would then not watch the call again. The listing fails (the caller stops all)."""
    forged = "+4520007101\r\nUniqueid: 1700000000.9"
    server.channels = [_channel("1700000000.1", forged), _channel("1700000000.2", "1")]
    ami = await _connected(server, Seen())
    with pytest.raises(AmiError, match="untrusted"):
        await ami.core_show_channels()
    await ami.close()


class FakeStore:
    def __init__(self, live: set[str]) -> None:
        self.live = live
        self.stops: list[dict[str, Any]] = []

    def recording_live(self, uniqueid: str) -> bool:
        return uniqueid in self.live

    async def stop_in_call(self, uniqueid: str, at: datetime, **kw: Any) -> Any:
        self.stops.append({"uniqueid": uniqueid, "at": at, **kw})
        return None


class StopAmi:
    def __init__(self) -> None:
        self.stopped: list[str] = []

    async def stop_mixmonitor(self, channel: str) -> None:
        self.stopped.append(channel)


async def test_an_untrusted_event_stops_the_live_recording_of_every_call_it_names() -> None:
    store, ami = FakeStore({CALLER, "1700000000.1"}), StopAmi()
    guard = UntrustedEventGuard(ami, store, clock=lambda: NOW)
    guard.on_untrusted(
        Untrusted("DialBegin", ("duplicated",), frozenset({CALLER, "1700000000.1", "x/../y"}))
    )
    await guard.drain()
    assert sorted(ami.stopped) == sorted([CALLER, "1700000000.1"])
    assert sorted(stop["uniqueid"] for stop in store.stops) == sorted([CALLER, "1700000000.1"])
    assert {(st["reason"], st["scope"], st["party"]) for st in store.stops} == {
        (UNTRUSTED_EVENT, "all", "external")
    }


async def test_an_untrusted_event_about_no_recorded_call_stops_nothing() -> None:
    store, ami = FakeStore(set()), StopAmi()
    guard = UntrustedEventGuard(ami, store, clock=lambda: NOW)
    guard.on_untrusted(Untrusted("Newchannel", ("truncated",), frozenset({CALLER})))
    await guard.drain()
    assert ami.stopped == [] and store.stops == []


class LateAmi(StopAmi):
    """StopMixMonitor fails until the hook has started MixMonitor (``fails`` times)."""

    def __init__(self, fails: int) -> None:
        super().__init__()
        self.fails = fails
        self.tries = 0

    async def stop_mixmonitor(self, channel: str) -> None:
        self.tries += 1
        if self.tries <= self.fails:
            raise AmiError("StopMixMonitor", "Could not stop monitoring channel")
        self.stopped.append(channel)


async def test_a_stop_that_comes_before_mixmonitor_started_is_repeated_until_it_stops() -> None:
    store, ami = FakeStore({CALLER}), LateAmi(fails=3)
    guard = UntrustedEventGuard(ami, store, clock=lambda: NOW, retry_seconds=0.01)
    report = Untrusted("DialBegin", ("truncated",), frozenset({CALLER}))
    guard.on_untrusted(report)
    guard.on_untrusted(report)  # a second event about the same call: one stop only
    await guard.drain()
    assert (ami.tries, ami.stopped) == (4, [CALLER])
    assert len(store.stops) == 1


async def test_an_untrusted_burst_runs_the_withdrawal_markers_recovery_once() -> None:
    runs: list[str] = []
    gate = asyncio.Event()

    async def withdrawals() -> int:
        runs.append("withdrawals")
        await gate.wait()
        return 0

    async def requests() -> int:
        runs.append("requests")
        return 0

    store, ami = FakeStore(set()), StopAmi()
    guard = UntrustedEventGuard(ami, store, clock=lambda: NOW, recover=(withdrawals, requests))
    for _ in range(5):  # one forged event cut in three, and two more
        guard.on_untrusted(Untrusted("UserEvent", ("cut",), frozenset()))
    await asyncio.sleep(0)
    gate.set()
    await guard.drain()
    assert runs == ["withdrawals", "requests"]
    guard.on_untrusted(Untrusted("UserEvent", ("cut",), frozenset()))  # a later one: again
    await guard.drain()
    assert runs == ["withdrawals", "requests", "withdrawals", "requests"]
