"""What Asterisk 22 reports for a play request with a list of media URIs (a playlist), on the
real Asterisk: the app joins the last notice and the first consent question in one play, and
reads these events as the notice's end and the question's start."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp

from callconsent.ari import AriClient
from tests.harness.asterisk import AsteriskLab
from tests.harness.sipp import Call, Pause, run_call

HARNESS_APP = "callconsent-harness"


#: a short sound of the chroot's Asterisk (0.2 s)
BEEP = "sound:/usr/share/asterisk/sounds/en_US_f_Allison/beep"
MISSING = "sound:/usr/share/asterisk/sounds/en_US_f_Allison/no-such-prompt"


async def _play_list(asterisk: AsteriskLab, media: list[str]) -> list[dict[str, Any]]:
    """Run a call into the harness app, play ``media`` as one playlist and return the Playback*
    events of that playback, up to its PlaybackFinished with nothing after it for 1 s."""
    loop = asyncio.get_running_loop()
    ari = AriClient(asterisk.ari_url, asterisk.ari_user, asterisk.ari_password, HARNESS_APP)
    call = Call(to="harness", timeline=[Pause(8.0)])
    events: list[dict[str, Any]] = []
    try:
        async with (
            aiohttp.ClientSession(headers=asterisk.ari_headers()) as http,
            http.ws_connect(asterisk.ari_ws_url(HARNESS_APP), heartbeat=10) as ws,
        ):
            sipp_task = loop.run_in_executor(None, run_call, call)
            deadline = time.monotonic() + 30
            channel = ""
            while time.monotonic() < deadline:
                try:
                    msg = await ws.receive(timeout=1.0 if events else deadline - time.monotonic())
                except TimeoutError:
                    break  # a quiet second after the playback's events
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                event = json.loads(msg.data)
                kind = event.get("type", "")
                if kind == "StasisStart" and not channel:
                    cid = event["channel"]["id"]
                    if await ari.get_variable(cid, "LAB_CALLID") != call.call_id:
                        continue  # someone else's call
                    channel = cid
                    await ari.play(cid, media, f"{cid}-list", "da")
                elif kind.startswith("Playback") and event["playback"]["id"] == f"{channel}-list":
                    events.append(event)
            if channel:
                await ari.continue_in_dialplan(channel)
            await sipp_task
    finally:
        await ari.close()
    return events


def _shape(events: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(e["type"], e["playback"]["state"], e["playback"]["media_uri"]) for e in events]


async def test_a_playlist_reports_the_switch_as_playback_continuing(asterisk: AsteriskLab) -> None:
    events = await _play_list(asterisk, [BEEP, BEEP])
    assert _shape(events) == [
        ("PlaybackStarted", "playing", BEEP),
        ("PlaybackContinuing", "continuing", BEEP),
        ("PlaybackStarted", "playing", BEEP),
        ("PlaybackFinished", "done", BEEP),
    ], events


async def test_a_missing_first_item_looks_played_in_full(asterisk: AsteriskLab) -> None:
    """Asterisk cannot play the first item, yet reports it as if it had played (no ``failed``
    state, PlaybackContinuing as after a played item): a playlist cannot show a missing notice,
    so the app joins a notice and a question only when both files exist (``Prompt.version``)."""
    events = await _play_list(asterisk, [MISSING, BEEP])
    assert _shape(events) == [
        ("PlaybackStarted", "playing", MISSING),
        ("PlaybackContinuing", "continuing", MISSING),
        ("PlaybackStarted", "playing", BEEP),
        ("PlaybackFinished", "done", BEEP),
    ], events


async def test_a_missing_single_prompt_or_last_item_is_reported_failed(
    asterisk: AsteriskLab,
) -> None:
    """Played alone, or as the last item (the question), a missing file is ``failed``."""
    events = await _play_list(asterisk, [MISSING])
    assert _shape(events) == [
        ("PlaybackStarted", "playing", MISSING),
        ("PlaybackFinished", "failed", MISSING),
    ], events
    events = await _play_list(asterisk, [BEEP, MISSING])
    assert _shape(events) == [
        ("PlaybackStarted", "playing", BEEP),
        ("PlaybackContinuing", "continuing", BEEP),
        ("PlaybackStarted", "playing", MISSING),
        ("PlaybackFinished", "failed", MISSING),
    ], events
