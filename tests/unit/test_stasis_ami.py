"""A recorded ARI call's end and late keys heard from AMI (callconsent.stasis_ami), not from an
ARI subscription: the StasisApp over the fake ARI and the real store, AMI events as headers (and,
for forged ones, as wire text through the real AMI reader and a fake AMI server)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callconsent import names
from callconsent.ami import Ami
from callconsent.stasis_ami import AmiCallEnds
from tests.support.ami_server import FakeAmiServer
from tests.support.late_keys import IN_STASIS, Objections, dtmf_end
from tests.support.stasis_fakes import (
    Harness,
    ari_error,
    channel_event,
    eventually,
    pcm_wav,
    write_audio,
)

A, B = "1764000000.42", "1764000000.43"


def harness(tmp_path: Path, *, ami: bool = True) -> tuple[Harness, AmiCallEnds, Objections]:
    objections = Objections()
    h = Harness(tmp_path, ami_ends=lambda: ami, objections=objections)
    ends = AmiCallEnds(recheck_seconds=0.05)
    ends.attach(h.app, h.ari)
    return h, ends, objections


async def recorded(h: Harness, channel_id: str, *, leave: bool = True) -> Path:
    """A documentation recording (route ``docs``: recorded after the notice); ``leave``: the
    channel has left Stasis (continued to the queue). Returns the audio path."""
    await h.start(channel_id, "docs")
    await h.play_through(channel_id)
    audio = Path(h.ari.result(channel_id)[names.VAR_RECORDING])
    if leave:
        await h.send(channel_id, channel_event("StasisEnd", channel_id))
    return audio


def hangup(uniqueid: str) -> dict[str, str]:
    return {"Event": "Hangup", "Uniqueid": uniqueid, "Linkedid": uniqueid, "Cause": "16"}


def kinds(h: Harness, uniqueid: str) -> list[str]:
    return [
        e["type"]
        for e in h.ledger()
        if uniqueid in (e.get("uniqueid"), (e.get("call") or {}).get("uniqueid"))
    ]


def state(audio: Path) -> str:
    return str(json.loads(audio.with_suffix(".json").read_text(encoding="utf-8"))["state"])


# -- which calls are subscribed ---------------------------------------------------------------


async def test_with_ami_logged_in_a_recorded_call_is_not_subscribed_over_ari(
    tmp_path: Path,
) -> None:
    h, _ends, _ = harness(tmp_path)
    audio = await recorded(h, A)
    assert h.ari.of("subscribe") == []
    assert state(audio) == "recording"
    assert h.app.ami_watched() == [A]


async def test_without_ami_a_recorded_call_is_still_subscribed_over_ari(tmp_path: Path) -> None:
    h, _ends, _ = harness(tmp_path, ami=False)
    await recorded(h, A)
    assert h.ari.of("subscribe") == [("subscribe", f"channel:{A}")]
    assert h.app.ami_watched() == []


async def test_the_app_without_an_ami_side_subscribes_as_before(tmp_path: Path) -> None:
    h = Harness(tmp_path)  # StasisApp's default: no AMI
    await recorded(h, A)
    assert h.ari.of("subscribe") == [("subscribe", f"channel:{A}")]


# -- the end ----------------------------------------------------------------------------------


async def test_an_ami_hangup_finalises_the_recording_exactly_once(tmp_path: Path) -> None:
    """The Hangup twice and ARI's ChannelDestroyed too: one final sidecar, one ledger line."""
    h, ends, _ = harness(tmp_path)
    audio = await recorded(h, A)
    write_audio(audio, pcm_wav(8000))

    ends.on_hangup(hangup(A))
    ends.on_hangup(hangup(A))
    await h.send(A, channel_event("ChannelDestroyed", A))
    await ends.drain()
    await eventually(lambda: h.app.active_calls == 0, within=10)

    assert state(audio) == "final"
    assert kinds(h, A) == ["call", "recording_final"]


async def test_a_hangup_of_a_call_still_in_the_flow_finalises_it_once_the_flow_ends(
    tmp_path: Path,
) -> None:
    """AMI may report the end before ARI's StasisEnd of a call that was just continued."""
    h, ends, _ = harness(tmp_path)
    await h.start(A, "docs")
    ends.on_hangup(hangup(A))  # the notice still plays: the flow is ARI's
    await ends.drain()
    assert h.app.active_calls == 1
    # the recording is prepared, the call continued: the flow has finished, AMI's end counts
    flow = asyncio.create_task(h.play_through(A))
    await eventually(lambda: names.VAR_RECORDING in h.ari.result(A))
    audio = Path(h.ari.result(A)[names.VAR_RECORDING])
    write_audio(audio, pcm_wav(8000))
    await flow

    await eventually(lambda: h.app.active_calls == 0, within=10)
    assert state(audio) == "final"
    assert kinds(h, A) == ["call", "recording_final"]


async def test_a_hangup_of_a_channel_the_app_does_not_record_changes_nothing(
    tmp_path: Path,
) -> None:
    h, ends, _ = harness(tmp_path)
    audio = await recorded(h, A)
    for uniqueid in (B, "../" + A, A + "\n"):
        ends.on_hangup(hangup(uniqueid))
    await ends.drain()
    assert state(audio) == "recording"
    assert h.app.ami_watched() == [A]


# -- forged and untrusted text ----------------------------------------------------------------

SNAPSHOT = (
    "Channel: PJSIP/lab-caller-00000000\r\n"
    "ChannelState: 6\r\n"
    "ChannelStateDesc: Up\r\n"
    "CallerIDNum: {num}\r\n"
    "CallerIDName: Mallory\r\n"
    "ConnectedLineNum: <unknown>\r\n"
    "ConnectedLineName: <unknown>\r\n"
    "Language: da\r\n"
    "AccountCode: \r\n"
    "Context: callconsent-lab-inbound\r\n"
    "Exten: queue-docs\r\n"
    "Priority: 3\r\n"
    "Uniqueid: {uniqueid}\r\n"
    "Linkedid: {uniqueid}\r\n"
)


def hangup_wire(uniqueid: str, num: str = "4512345678") -> bytes:
    """A Hangup as Asterisk 22 writes it, the caller's number as sent (line breaks and all)."""
    head = "Event: Hangup\r\nPrivilege: call,all\r\n"
    tail = "Cause: 16\r\nCause-txt: Normal Clearing\r\n\r\n"
    return (head + SNAPSHOT.format(num=num, uniqueid=uniqueid) + tail).encode()


@pytest.fixture
async def server() -> AsyncIterator[FakeAmiServer]:
    srv = FakeAmiServer()
    await srv.start()
    yield srv
    await srv.close()


async def over_ami(server: FakeAmiServer, ends: AmiCallEnds) -> Ami:
    ami = Ami(host="127.0.0.1", port=server.port, username="u", password="p", timeout=2.0)
    for event, handler in ends.handlers().items():
        ami.on_event(event, handler)
    ami.on_untrusted(ends.on_untrusted)
    await ami.connect(wait=2.0)
    return ami


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.01)


async def test_a_caller_who_forges_another_calls_hangup_finalises_nothing_of_it(
    tmp_path: Path, server: FakeAmiServer
) -> None:
    """Caller A's number carries a whole forged ``Hangup`` of call B: neither Hangup is
    trusted; the app asks ARI, which says both channels are still up: nothing is finalised."""
    h, ends, _ = harness(tmp_path)
    audio_a, audio_b = await recorded(h, A), await recorded(h, B)
    forged = f"4512345678\r\n\r\nEvent: Hangup\r\nUniqueid: {B}\r\nLinkedid: {B}"
    ami = await over_ami(server, ends)
    await server.push(f"Event: Newexten\r\n{SNAPSHOT.format(num=forged, uniqueid=A)}\r\n".encode())
    await settle()
    await ends.drain()
    await ami.close()

    assert state(audio_a) == state(audio_b) == "recording"
    assert sorted(h.app.ami_watched()) == [A, B]
    assert sorted(c[1] for c in h.ari.of("get_channel")) == [A, A, B, B]  # asked, not believed


async def test_an_untrusted_hangup_of_a_recorded_call_finalises_it_once_ari_says_it_is_gone(
    tmp_path: Path, server: FakeAmiServer
) -> None:
    """A's own Hangup, made untrusted by the line breaks in its number, hides its end: the
    app asks ARI (404) and finalises A; B, named by the forged line but still up, stays."""
    h, ends, _ = harness(tmp_path)
    audio_a, audio_b = await recorded(h, A), await recorded(h, B)
    write_audio(audio_a, pcm_wav(8000))
    h.ari.gone = {A}
    ami = await over_ami(server, ends)
    await server.push(hangup_wire(A, num=f"4512345678\r\nUniqueid: {B}"))
    await settle()
    await ends.drain()
    await ami.close()

    await eventually(lambda: h.app.ami_watched() == [B], within=10)
    await eventually(lambda: "recording_final" in kinds(h, A), within=10)
    assert state(audio_a) == "final" and state(audio_b) == "recording"


async def test_a_trusted_hangup_over_the_wire_finalises_its_call(
    tmp_path: Path, server: FakeAmiServer
) -> None:
    h, ends, _ = harness(tmp_path)
    audio = await recorded(h, A)
    write_audio(audio, pcm_wav(8000))
    ami = await over_ami(server, ends)
    await server.push(hangup_wire(A))
    await settle()
    await ends.drain()
    await ami.close()

    await eventually(lambda: "recording_final" in kinds(h, A), within=10)
    assert h.ari.of("get_channel") == []  # a trusted Hangup needs no look-up


# -- after an AMI gap -------------------------------------------------------------------------


async def test_the_recheck_after_an_ami_gap_finalises_gone_calls_and_keeps_live_ones(
    tmp_path: Path,
) -> None:
    h, ends, _ = harness(tmp_path)
    audio_a, audio_b = await recorded(h, A), await recorded(h, B)
    write_audio(audio_a, pcm_wav(8000))
    h.ari.gone = {A}

    assert await ends.recheck() == {A}
    await ends.drain()

    await eventually(lambda: "recording_final" in kinds(h, A), within=10)
    assert state(audio_a) == "final" and state(audio_b) == "recording"
    assert h.app.ami_watched() == [B]
    assert h.ari.of("subscribe") == []  # B's end still comes from AMI
    ends.on_hangup(hangup(B))  # ... as it does
    write_audio(audio_b, pcm_wav(8000))
    await ends.drain()
    await eventually(lambda: "recording_final" in kinds(h, B), within=10)


async def test_a_failed_look_up_at_the_recheck_keeps_the_call_watched(tmp_path: Path) -> None:
    h, ends, _ = harness(tmp_path)
    audio = await recorded(h, A)
    h.ari.fail["get_channel"] = ari_error("GET", f"/channels/{A}")
    assert await ends.recheck() == set()
    assert state(audio) == "recording" and h.app.ami_watched() == [A]


async def test_an_ari_reconnect_does_not_subscribe_an_ami_watched_call_again(
    tmp_path: Path,
) -> None:
    """The app's ARI reconnect (the websocket dropped): a recorded call still up stays with
    AMI; one gone is finalised, as without AMI."""
    h, _ends, _ = harness(tmp_path)
    await recorded(h, A)
    audio_b = await recorded(h, B)
    write_audio(audio_b, pcm_wav(8000))
    h.ari.in_stasis, h.ari.gone = [], {B}

    await h.app.on_connected()

    await eventually(lambda: "recording_final" in kinds(h, B), within=10)
    assert h.ari.of("subscribe") == []
    assert h.app.ami_watched() == [A]


async def test_an_ari_reconnect_while_ami_is_away_subscribes_the_call_over_ari(
    tmp_path: Path,
) -> None:
    """Asterisk restarted and ARI is back before AMI: ARI reports the call's end from now on."""
    logged_in = [True]
    objections = Objections()
    h = Harness(tmp_path, ami_ends=lambda: logged_in[0], objections=objections)
    await recorded(h, A)
    logged_in[0] = False
    h.ari.in_stasis = []

    await h.app.on_connected()

    assert h.ari.of("subscribe") == [("subscribe", f"channel:{A}")]
    assert h.app.ami_watched() == []
    await h.digit(A, "3")  # late keys come over the subscription now
    assert objections.late == [(A, "3", "docs")]


# -- late keys --------------------------------------------------------------------------------


async def test_a_key_pressed_after_the_flow_reaches_the_objection_adapter(tmp_path: Path) -> None:
    h, ends, objections = harness(tmp_path)
    await recorded(h, A)
    ends.on_dtmf_end(dtmf_end(A, "3"))
    await ends.drain()
    assert objections.late == [(A, "3", "docs")]


@pytest.mark.parametrize(
    "event",
    [
        dtmf_end(A, "3", where=IN_STASIS),  # in Stasis: ARI's (already handled there)
        dtmf_end(A, "3", direction="Sent"),  # sent to the caller, not pressed by them
        dtmf_end(B, "3"),  # a channel the app does not record
        dtmf_end(A, "3x"),  # not one key
        {**dtmf_end(A, "3"), "Uniqueid": "../" + A},
    ],
    ids=["on_the_stasis_line", "sent", "other_channel", "not_a_key", "bad_uniqueid"],
)
async def test_keys_that_are_not_the_callers_late_keys_reach_no_one(
    tmp_path: Path, event: dict[str, str]
) -> None:
    h, ends, objections = harness(tmp_path)
    await recorded(h, A)
    ends.on_dtmf_end(event)
    await ends.drain()
    assert objections.late == []


async def test_a_key_in_the_flow_is_the_flows_and_not_a_late_key(tmp_path: Path) -> None:
    """Pressed during the notice: ARI feeds it to the machine; AMI's copy counts for nothing,
    whichever comes first."""
    h, ends, objections = harness(tmp_path)
    await h.start(A, "docs")
    ends.on_dtmf_end(dtmf_end(A, "3", where=IN_STASIS))
    await ends.drain()
    assert objections.late == []


async def test_a_late_key_in_stasis_still_comes_from_ari_once(tmp_path: Path) -> None:
    """Finished but not yet out of Stasis: ARI reports the key (as before); AMI's copy, on
    the Stasis() line, is not counted again."""
    h, ends, objections = harness(tmp_path)
    await recorded(h, A, leave=False)
    await h.digit(A, "3")
    ends.on_dtmf_end(dtmf_end(A, "3", where=IN_STASIS))
    await ends.drain()
    assert objections.late == [(A, "3", "docs")]


async def test_without_ami_late_keys_come_from_the_ari_subscription_only(tmp_path: Path) -> None:
    h, ends, objections = harness(tmp_path, ami=False)
    await recorded(h, A)
    ends.on_dtmf_end(dtmf_end(A, "3"))  # AMI up later: the subscription reports the key
    await h.digit(A, "3")
    await ends.drain()
    assert objections.late == [(A, "3", "docs")]
