"""Fewer ARI requests per call, on the real Asterisk: the StasisStart event shows what the app
reads (ari.conf ``channelvars``), and one ``ARRAY()`` write sets many variables, every value
arriving as sent (commas, quotes, backslashes, brackets included)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp

from callconsent import names
from callconsent.ari import AriClient
from tests.harness.asterisk import AsteriskLab
from tests.harness.sipp import Call, Pause, run_call

HARNESS_APP = "callconsent-harness"
VALUES = {
    "LAB_PLAIN": "/var/spool/asterisk/recording/2026/12/05/1.2.wav",
    "__LAB_INHERITED": "training,documentation",
    "LAB_QUOTES": 'say "hi", then \\ leave',
    "LAB_BRACKETS": "(a,[b]),c)",
    "LAB_EXPRESSION": "${SHELL(id)}$[1+1]",
    "LAB_EMPTY": "",
    "LAB_LAST": "last",
}


async def _in_stasis(asterisk: AsteriskLab, call: Call) -> tuple[dict[str, Any], dict[str, str]]:
    """Run ``call`` into the harness app; on StasisStart set VALUES in one request and read
    each back. Returns the StasisStart event and what was read."""
    loop = asyncio.get_running_loop()
    ari = AriClient(asterisk.ari_url, asterisk.ari_user, asterisk.ari_password, HARNESS_APP)
    read: dict[str, str] = {}
    start: dict[str, Any] = {}
    try:
        async with (
            aiohttp.ClientSession(headers=asterisk.ari_headers()) as http,
            http.ws_connect(asterisk.ari_ws_url(HARNESS_APP), heartbeat=10) as ws,
        ):
            sipp_task = loop.run_in_executor(None, run_call, call)
            deadline = time.monotonic() + 30
            while not start and time.monotonic() < deadline:
                msg = await ws.receive(timeout=deadline - time.monotonic())
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                event = json.loads(msg.data)
                if event.get("type") != "StasisStart":
                    continue
                cid = event["channel"]["id"]
                if await ari.get_variable(cid, "LAB_CALLID") != call.call_id:
                    continue  # someone else's call
                start = event
                await ari.set_variables(cid, list(VALUES.items()))
                for name in VALUES:
                    read[name] = await ari.get_variable(cid, name.lstrip("_"))
                await ari.continue_in_dialplan(cid)
            await sipp_task
    finally:
        await ari.close()
    assert start, "no StasisStart for our call"
    return start, read


async def test_one_array_write_sets_every_value_as_sent(asterisk: AsteriskLab) -> None:
    _, read = await _in_stasis(asterisk, Call(to="harness", timeline=[Pause(2.0)]))
    assert read == {name: value for name, value in VALUES.items()}


async def test_stasis_start_shows_the_variables_the_app_reads(asterisk: AsteriskLab) -> None:
    start, _ = await _in_stasis(asterisk, Call(to="harness", timeline=[Pause(2.0)]))
    shown = start["channel"].get("channelvars")
    assert isinstance(shown, dict), start["channel"]
    assert set(names.STASIS_START_VARS) <= set(shown)
    assert shown["CHANNEL(linkedid)"] == start["channel"]["id"]  # an inbound call leads itself
    assert shown["CALLERID(dnid)"] == "harness"
