"""The floor under the live app's CPU: the consent flow's ARI part and nothing else (not a test,
not the product).

    python bench/floor_app.py NOTICE_URI QUESTION_URI      (bench/live.py --flows floor runs it)

A Stasis app ``callconsent-floor`` on the lab's ARI user, built on the product's own ARI client
(:class:`callconsent.ari.AriClient`: the same HTTP pool, websocket reader and per-channel lanes)
on uvloop, as ``serve`` runs. Per call (lab extension ``floor``, answered in the dialplan as the
hook does) it does only what the consent flow cannot do without: play the notice and the question
as one playlist, take the first 1 or 2 pressed after the question has started, set
``LABFLOOR_KEY`` and continue the channel (no key within 5 s of the question's end: continue
without one). The dialplan then records and dials as the peer does.

It prints the app's ``call_timing`` line for the notice (StasisStart -> playback started, split
where the client read the event and where it sent the play: the same fields and clocks as the
app's), so bench/live.py reports the floor's notice latency beside the app's.

What it leaves out is everything else the app does for a call: the plan and its evidence (audio
versions, sidecars, the ledger, the sealed caller), AMI (agent bridge, call ends, parties), the
timers of retries, logging (but for that one line), metrics. Its CPU per call is therefore what any consent app built
on this client and Python pays, whatever its rules and evidence: the floor for issue 14's target
of 2 ms per call.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from callconsent.ari import READ_AT, AriClient, AriError
from callconsent.stasis import USED_EVENTS
from callconsent.timing import call_timing

APP = "callconsent-floor"
KEY_TIMEOUT = 5.0


def _at(event: dict[str, Any]) -> float:
    """The event's own time (Asterisk's clock, as the app takes it), epoch seconds."""
    try:
        return datetime.fromisoformat(str(event.get("timestamp"))).timestamp()
    except ValueError:
        return time.time()


class Floor:
    """The sink: one small dict per call in progress."""

    def __init__(self, ari: AriClient, media: list[str]) -> None:
        self.ari = ari
        self.media = media
        self.calls: dict[str, dict[str, Any]] = {}

    async def on_connected(self) -> None:
        # the event types serve takes (it needs the hangup ones): the same traffic per call
        await self.ari.filter_events(allowed=USED_EVENTS)
        print("floor: connected", flush=True)

    async def on_channel_event(self, channel_id: str | None, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if channel_id is None:
            return
        call = self.calls.get(channel_id)
        if kind == "StasisStart":
            playback = uuid.uuid4().hex
            marks = {"start": _at(event)}
            if isinstance(event.get(READ_AT), float):
                marks["read"] = event[READ_AT]
            self.calls[channel_id] = {
                "playback": playback,
                "asking": False,
                "timer": None,
                "marks": marks,
            }
            marks["play_sent"] = time.time()
            await self.ari.play(channel_id, self.media, playback)
        elif call is None:
            return
        elif kind == "PlaybackStarted":
            marks = call["marks"]
            if "notice" not in marks:  # the same line as the app's, for bench/live.py
                marks["notice"] = _at(event)
                timing = call_timing(marks)
                print(
                    json.dumps({"event": "call_timing", "channel_id": channel_id, **timing}),
                    flush=True,
                )
        elif kind == "PlaybackContinuing":
            call["asking"] = True  # the question started: keys count from now
        elif kind == "PlaybackFinished":
            call["playing"] = False
            loop = asyncio.get_running_loop()
            call["timer"] = loop.call_later(
                KEY_TIMEOUT, lambda: asyncio.ensure_future(self.done(channel_id, ""))
            )
        elif kind == "ChannelDtmfReceived" and call["asking"] and event.get("digit") in ("1", "2"):
            await self.done(channel_id, str(event["digit"]))
        elif kind == "StasisEnd":
            self.forget(channel_id)

    async def done(self, channel_id: str, key: str) -> None:
        call = self.forget(channel_id)
        if call is None:
            return
        try:
            if call.get("playing", True):
                await self.ari.stop_playback(call["playback"])
            if key:
                await self.ari.set_variable(channel_id, "LABFLOOR_KEY", key)
            await self.ari.continue_in_dialplan(channel_id)
        except AriError as exc:  # the caller hung up meanwhile
            print(f"floor: {channel_id}: {exc}", file=sys.stderr, flush=True)

    def forget(self, channel_id: str) -> dict[str, Any] | None:
        call = self.calls.pop(channel_id, None)
        if call is not None and call["timer"] is not None:
            call["timer"].cancel()
        return call


async def main(media: list[str]) -> None:
    url = os.environ.get("FLOOR_ARI_URL", "http://127.0.0.1:8088")
    password = os.environ.get("CALLCONSENT_ARI_PASSWORD", "callconsent-lab")
    ari = AriClient(url, "callconsent", password, APP)
    await ari.run(Floor(ari, media))


if __name__ == "__main__":
    import uvloop

    uvloop.run(main(sys.argv[1:]))
