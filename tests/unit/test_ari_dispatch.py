"""Per-channel ordered dispatch: isolation between channels, no lost events, flat memory."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import structlog

from callconsent.ari import READ_AT, AriClient, channel_id_of
from callconsent.ari._dispatch import Dispatcher

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `tests.support` without a conftest
from tests.support import (
    FakeAriServer,
    RecordingSink,
    channel_event,
    eventually,
    playback_event,
)
from tests.support.memory import kept_state


@pytest.fixture
async def server() -> AsyncIterator[FakeAriServer]:
    async with FakeAriServer() as fake:
        yield fake


@pytest.fixture
async def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
async def client(server: FakeAriServer, sink: RecordingSink) -> AsyncIterator[AriClient]:
    ari = AriClient(
        server.base_url, "asterisk", "secret", "callconsent", backoff_initial=0.02, backoff_max=0.2
    )
    task = asyncio.create_task(ari.run(sink))
    await server.wait_connected()
    await sink.wait_for(lambda: sink.connected == 1)
    yield ari
    await ari.stop()
    assert task.done() and task.exception() is None
    await ari.close()


async def wait_idle(client: AriClient) -> None:
    await eventually(lambda: not client.active_channels)


async def test_events_for_one_channel_are_delivered_in_order(
    server: FakeAriServer, client: AriClient, sink: RecordingSink
) -> None:
    digits = [str(i % 10) for i in range(50)]
    for digit in digits:
        await server.send_event(channel_event("ChannelDtmfReceived", "c1", digit=digit))
    await sink.wait_for(lambda: len(sink.events("c1")) == 50)
    assert [e["digit"] for e in sink.events("c1")] == digits


async def test_a_stasis_start_carries_when_the_client_read_it_and_other_events_do_not(
    server: FakeAriServer, client: AriClient, sink: RecordingSink
) -> None:
    before = time.time()
    await server.send_event(channel_event("StasisStart", "c1"))
    await server.send_event(channel_event("ChannelDtmfReceived", "c1", digit="1"))
    await sink.wait_for(lambda: len(sink.events("c1")) == 2)
    start, digit = sink.events("c1")
    assert before <= start[READ_AT] <= time.time()
    assert READ_AT not in digit


async def test_slow_handler_on_one_channel_does_not_delay_another_channel(
    server: FakeAriServer, client: AriClient, sink: RecordingSink
) -> None:
    sink.gates["slow"] = asyncio.Event()  # the handler for "slow" awaits until released
    started = time.monotonic()
    await server.send_event(channel_event("StasisStart", "slow"))
    await server.send_event(channel_event("StasisStart", "fast"))
    await server.send_event(channel_event("ChannelDtmfReceived", "fast", digit="1"))
    await sink.wait_for(lambda: sink.types("fast") == ["StasisStart", "ChannelDtmfReceived"])
    assert time.monotonic() - started < 0.5
    assert sink.types("slow") == []
    sink.gates["slow"].set()
    await sink.wait_for(lambda: sink.types("slow") == ["StasisStart"])


async def test_handler_sleeping_two_seconds_does_not_delay_other_channels(
    server: FakeAriServer, client: AriClient, sink: RecordingSink
) -> None:
    async def sleepy(channel_id: str | None, event: dict[str, object]) -> None:
        if channel_id == "slow":
            await asyncio.sleep(2)
        await RecordingSink.on_channel_event(sink, channel_id, event)

    sink.on_channel_event = sleepy  # type: ignore[method-assign]
    await server.send_event(channel_event("StasisStart", "slow"))
    for i in range(20):
        await server.send_event(channel_event("StasisStart", f"other-{i}"))
    await sink.wait_for(lambda: all(sink.events(f"other-{i}") for i in range(20)), within=0.5)
    assert sink.events("slow") == []


async def test_events_arriving_while_handler_awaits_are_not_lost(
    server: FakeAriServer, client: AriClient, sink: RecordingSink
) -> None:
    sink.gates["c1"] = asyncio.Event()
    await server.send_event(channel_event("StasisStart", "c1"))
    await sink.wait_for(lambda: any(kind == "blocked" for kind, _, _ in sink.log))
    for digit in "1234#":
        await server.send_event(channel_event("ChannelDtmfReceived", "c1", digit=digit))
    await server.send_event(channel_event("StasisEnd", "c1"))
    await asyncio.sleep(0.05)  # let the frames arrive while the handler is still awaiting
    assert sink.types("c1") == []
    sink.gates["c1"].set()
    await sink.wait_for(lambda: len(sink.events("c1")) == 7)
    assert sink.types("c1") == ["StasisStart"] + ["ChannelDtmfReceived"] * 5 + ["StasisEnd"]
    assert [e["digit"] for e in sink.events("c1")[1:6]] == list("1234#")


async def test_playback_events_are_routed_to_their_channel(
    server: FakeAriServer, client: AriClient, sink: RecordingSink
) -> None:
    await server.send_event(channel_event("StasisStart", "c1"))
    await server.send_event(playback_event("PlaybackStarted", "c1", "pb1"))
    await server.send_event(playback_event("PlaybackFinished", "c1", "pb1"))
    await sink.wait_for(lambda: len(sink.events("c1")) == 3)
    assert sink.types("c1") == ["StasisStart", "PlaybackStarted", "PlaybackFinished"]


async def test_events_without_a_channel_go_to_the_global_queue(
    server: FakeAriServer, client: AriClient, sink: RecordingSink
) -> None:
    await server.send_event({"type": "DeviceStateChanged", "device_state": {"name": "x"}})
    await server.send_event(
        {"type": "PlaybackFinished", "playback": {"id": "p", "target_uri": "bridge:b1"}}
    )
    await sink.wait_for(lambda: len(sink.events(None)) == 2)
    assert sink.types(None) == ["DeviceStateChanged", "PlaybackFinished"]


def test_channel_id_of_reads_channel_playback_and_recording_targets() -> None:
    assert channel_id_of({"type": "X", "channel": {"id": "c1"}}) == "c1"
    assert channel_id_of({"type": "X", "playback": {"target_uri": "channel:c/2"}}) == "c/2"
    assert channel_id_of({"type": "X", "recording": {"target_uri": "channel:c3"}}) == "c3"
    assert channel_id_of({"type": "X", "playback": {"target_uri": "bridge:b"}}) is None
    assert channel_id_of({"type": "X", "channel": "not an object"}) is None
    assert channel_id_of({"type": "X"}) is None


async def test_handler_exception_is_logged_with_channel_id_and_dispatch_continues(
    server: FakeAriServer, client: AriClient, sink: RecordingSink
) -> None:
    sink.fail_types = {"ChannelDtmfReceived"}
    with structlog.testing.capture_logs() as logs:
        await server.send_event(channel_event("ChannelDtmfReceived", "c1", digit="1"))
        await server.send_event(channel_event("ChannelDtmfReceived", "c1", digit="2"))
        await server.send_event(channel_event("StasisEnd", "c1"))
        await sink.wait_for(lambda: len(sink.events("c1")) == 3)
    failures = [e for e in logs if e["event"] == "ari_handler_failed"]
    assert [(e["channel_id"], e["log_level"]) for e in failures] == [("c1", "error")] * 2


async def test_channel_queue_is_torn_down_after_stasis_end_once_drained(
    server: FakeAriServer, client: AriClient, sink: RecordingSink
) -> None:
    sink.gates["c1"] = asyncio.Event()
    await server.send_event(channel_event("StasisStart", "c1"))
    await server.send_event(channel_event("StasisEnd", "c1"))
    await asyncio.sleep(0.05)
    assert client.active_channels == {"c1"}  # still draining: the handler awaits
    sink.gates["c1"].set()
    await wait_idle(client)
    assert sink.types("c1") == ["StasisStart", "StasisEnd"]


async def test_channel_queue_is_torn_down_after_channel_destroyed(
    server: FakeAriServer, client: AriClient, sink: RecordingSink
) -> None:
    await server.send_event(channel_event("StasisStart", "c1"))
    await server.send_event(channel_event("ChannelDestroyed", "c1"))
    await wait_idle(client)


async def test_memory_stays_flat_over_many_calls(
    server: FakeAriServer, client: AriClient, sink: RecordingSink
) -> None:
    await asyncio.sleep(0.01)
    tasks_before = len(asyncio.all_tasks())
    for call in range(300):
        channel_id = f"call-{call}"
        await server.send_event(channel_event("StasisStart", channel_id))
        await server.send_event(channel_event("ChannelDtmfReceived", channel_id, digit="1"))
        await server.send_event(channel_event("StasisEnd", channel_id))
    await sink.wait_for(lambda: len(sink.log) == 1 + 900, within=3)
    await wait_idle(client)
    await asyncio.sleep(0.01)
    assert len(asyncio.all_tasks()) <= tasks_before


async def test_late_event_after_teardown_is_delivered_and_not_kept(
    server: FakeAriServer, client: AriClient, sink: RecordingSink
) -> None:
    await server.send_event(channel_event("StasisStart", "c1"))
    await server.send_event(channel_event("StasisEnd", "c1"))
    await wait_idle(client)
    await server.send_event(channel_event("ChannelVarset", "c1", variable="X", value="1"))
    await sink.wait_for(lambda: len(sink.events("c1")) == 3)
    await wait_idle(client)


async def test_subscribed_channel_keeps_its_queue_after_stasis_end_until_destroyed(
    server: FakeAriServer, client: AriClient, sink: RecordingSink
) -> None:
    await server.send_event(channel_event("StasisStart", "c1"))
    await client.subscribe("channel:c1")
    await server.send_event(channel_event("StasisEnd", "c1"))
    await server.send_event(channel_event("ChannelUserevent", "c1", eventname="withdraw"))
    await sink.wait_for(lambda: len(sink.events("c1")) == 3)
    assert client.active_channels == {"c1"}
    await server.send_event(channel_event("ChannelDestroyed", "c1"))
    await wait_idle(client)
    assert sink.types("c1")[-1] == "ChannelDestroyed"


async def test_unsubscribing_after_stasis_end_closes_the_queue(
    server: FakeAriServer, client: AriClient, sink: RecordingSink
) -> None:
    await server.send_event(channel_event("StasisStart", "c1"))
    await client.subscribe("channel:c1")
    await server.send_event(channel_event("StasisEnd", "c1"))
    await sink.wait_for(lambda: len(sink.events("c1")) == 2)
    assert client.active_channels == {"c1"}
    await client.unsubscribe("channel:c1")
    await wait_idle(client)


async def test_queues_of_channels_gone_during_a_disconnect_are_closed_on_reconnect(
    server: FakeAriServer, client: AriClient, sink: RecordingSink
) -> None:
    for channel_id in ("gone", "still-here", "subscribed-gone", "subscribed-alive"):
        await server.send_event(channel_event("StasisStart", channel_id))
    await sink.wait_for(lambda: len(sink.log) == 5)
    await client.subscribe("channel:subscribed-gone")
    await client.subscribe("channel:subscribed-alive")
    server.add_channel("subscribed-alive")  # left Stasis, still exists (GET /channels/{id})
    server.app_channel_ids = ["still-here"]  # StasisEnd/ChannelDestroyed were lost in the gap
    await server.drop_websockets()
    await sink.wait_for(lambda: sink.connected == 2)
    await eventually(lambda: client.active_channels == {"still-here", "subscribed-alive"})


# -- the dispatcher alone: what it keeps of channels long gone ------------------------------

CALLS = 5000  # more channels than any fixed-size memory of ended channels would hold


async def _many_calls(dispatcher: Dispatcher, calls: int) -> None:
    for n in range(calls):
        dispatcher.dispatch(channel_event("StasisStart", f"call-{n}"))
        dispatcher.dispatch(channel_event("StasisEnd", f"call-{n}"))
    await eventually(lambda: not dispatcher.active_channels, within=10)


async def test_nothing_is_kept_of_thousands_of_channels_once_their_lanes_are_gone() -> None:
    dispatcher = Dispatcher()
    dispatcher.start(RecordingSink())
    await _many_calls(dispatcher, CALLS)
    assert kept_state(dispatcher) == {}


async def test_a_late_event_thousands_of_channels_after_the_teardown_opens_no_lasting_lane() -> (
    None
):
    sink = RecordingSink()
    dispatcher = Dispatcher()
    dispatcher.start(sink)
    await _many_calls(dispatcher, CALLS)
    dispatcher.dispatch(channel_event("ChannelVarset", "call-0", variable="X", value="1"))
    await sink.wait_for(
        lambda: sink.types("call-0") == ["StasisStart", "StasisEnd", "ChannelVarset"]
    )
    await eventually(lambda: not dispatcher.active_channels)


async def test_a_subscribed_channel_keeps_its_lane_when_its_first_event_is_not_stasis_start() -> (
    None
):
    sink = RecordingSink()
    dispatcher = Dispatcher()
    dispatcher.start(sink)
    dispatcher.hold("c1")  # subscribed after a reconnect: no StasisStart will come
    dispatcher.dispatch(channel_event("ChannelUserevent", "c1", eventname="withdraw"))
    await sink.wait_for(lambda: len(sink.events("c1")) == 1)
    await asyncio.sleep(0.01)
    assert dispatcher.active_channels == {"c1"}
    dispatcher.dispatch(channel_event("ChannelDestroyed", "c1"))
    await eventually(lambda: not dispatcher.active_channels)
    assert kept_state(dispatcher) == {}


async def test_a_subscribed_channel_outside_stasis_loses_its_lane_when_released() -> None:
    sink = RecordingSink()
    dispatcher = Dispatcher()
    dispatcher.start(sink)
    dispatcher.hold("c1")  # subscribed after a reconnect: it left Stasis before
    dispatcher.dispatch(channel_event("ChannelUserevent", "c1", eventname="withdraw"))
    await sink.wait_for(lambda: len(sink.events("c1")) == 1)
    dispatcher.release("c1")  # unsubscribed: no ChannelDestroyed will come
    await eventually(lambda: not dispatcher.active_channels)
    assert kept_state(dispatcher) == {}
