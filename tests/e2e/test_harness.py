"""The harness itself works: a real SIP call's keypress reaches ARI; the sandbox script behaves."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import time
from typing import Any

import aiohttp
import pytest

from tests.harness.asterisk import SANDBOX_SCRIPT, AsteriskLab, sandbox
from tests.harness.sipp import Call, CallResult, Digit, Pause, run_call, sip_display_name

HARNESS_APP = "callconsent-harness"


async def _stasis_call(
    asterisk: AsteriskLab, call: Call, digits_wanted: int = 1
) -> tuple[CallResult, dict[str, Any], list[tuple[float, dict[str, Any]]]]:
    """Run ``call`` into the harness Stasis app; answer it, collect DTMF, then continue it.

    Returns the sipp result, the StasisStart event and (arrival time, event) for each DTMF event.
    """
    loop = asyncio.get_running_loop()
    async with (
        aiohttp.ClientSession(headers=asterisk.ari_headers()) as http,
        http.ws_connect(asterisk.ari_ws_url(HARNESS_APP), heartbeat=10) as ws,
    ):
        sipp_task = loop.run_in_executor(None, run_call, call)
        start: dict[str, Any] | None = None
        channel_id = ""
        dtmf: list[tuple[float, dict[str, Any]]] = []
        deadline = time.monotonic() + 30
        while len(dtmf) < digits_wanted:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                msg = await ws.receive(timeout=remaining)
            except TimeoutError:
                break
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            event = json.loads(msg.data)
            kind = event.get("type")
            if kind == "StasisStart" and start is None:
                cid = event["channel"]["id"]
                var = await (
                    await http.get(
                        f"{asterisk.ari_url}/channels/{cid}/variable",
                        params={"variable": "LAB_CALLID"},
                    )
                ).json()
                if var.get("value") != call.call_id:
                    continue  # someone else's call
                start, channel_id = event, cid
                resp = await http.post(f"{asterisk.ari_url}/channels/{cid}/answer")
                assert resp.status == 204, await resp.text()
            elif kind == "ChannelDtmfReceived" and event["channel"]["id"] == channel_id:
                dtmf.append((time.time(), event))
        if channel_id:
            # Back to the dialplan: it logs and hangs up, so Asterisk sends the BYE.
            await http.post(f"{asterisk.ari_url}/channels/{channel_id}/continue")
        result = await sipp_task
    assert start is not None, f"no StasisStart for our call\n{result.describe()}"
    return result, start, dtmf


async def test_dtmf_from_sipp_reaches_ari(asterisk: AsteriskLab, log_mark: int) -> None:
    call = Call(to="harness", timeline=[Pause(1.0), Digit("1"), Pause(4.0)])
    result, _start, dtmf = await _stasis_call(asterisk, call)

    assert result.ok, result.describe()
    assert [e["digit"] for _t, e in dtmf] == ["1"], result.describe()
    # The digit ends ~1.16 s after the answer (ARI reports it at key release): the timeline is
    # timed from the answer, precise enough for "during the notice" vs "after the question".
    assert result.answered_at is not None
    delay = dtmf[0][0] - result.answered_at
    assert 1.0 <= delay <= 2.0, f"digit arrived {delay:.3f} s after answer"
    assert 100 <= dtmf[0][1]["duration_ms"] <= 400
    # continue -> Hangup in the dialplan: Asterisk hung up, the caller answered its BYE.
    assert result.remote_hangup, result.describe()
    end = asterisk.wait_labend(result.call_id, since=log_mark)
    assert end.uniqueid


async def test_every_digit_is_decoded(asterisk: AsteriskLab) -> None:
    digits = "0123456789*#"
    timeline: list[Pause | Digit] = [Pause(0.5)]
    for d in digits:
        timeline += [Digit(d, seconds=0.1), Pause(0.2)]
    timeline.append(Pause(1.0))
    call = Call(to="harness", timeline=timeline)
    result, _start, dtmf = await _stasis_call(asterisk, call, digits_wanted=len(digits))
    assert result.ok, result.describe()
    assert "".join(e["digit"] for _t, e in dtmf) == digits


HOSTILE_NAME = 'Evil "Q" \\ ../../etc; $HOME %0d%0a [call_id] ]]> <x>' + "N" * 200


@pytest.mark.parametrize(
    ("number", "seen_number"),
    [
        # Asterisk cuts the user part at ";" (it treats the rest as user parameters) ...
        ("+45;../$HOME%0d%0a" + "9" * 200, "+45"),
        # ... percent-decodes it (a real CR LF reaches the dialplan and ARI) and keeps 79 chars.
        ("+45../$HOME%0d%0a&x=y," + "9" * 200, ("+45../$HOME\r\n&x=y," + "9" * 200)[:79]),
    ],
)
async def test_hostile_caller_id_is_sent_well_formed(
    asterisk: AsteriskLab, number: str, seen_number: str
) -> None:
    """Hostile caller ID travels in a well-formed INVITE; what Asterisk makes of it (measured).

    The app must treat CALLERID as untrusted text: quotes stay backslash-escaped in the name, the
    number can carry CR LF, both are cut to 79 characters.
    """
    call = Call(
        to="harness",
        caller_name=HOSTILE_NAME,
        caller_number=number,
        timeline=[Pause(0.3), Digit("9"), Pause(1.0)],
    )
    result, start, dtmf = await _stasis_call(asterisk, call)
    assert result.ok, result.describe()
    assert [e["digit"] for _t, e in dtmf] == ["9"]
    caller = start["channel"]["caller"]
    assert caller["name"] == sip_display_name(HOSTILE_NAME)[1:-1][:79]
    assert caller["number"] == seen_number


def test_plain_route_reaches_the_bridged_destination(asterisk: AsteriskLab, log_mark: int) -> None:
    result = run_call(Call(to="plain", timeline=[Pause(1.5)]))
    assert result.ok, result.describe()
    assert result.local_hangup
    dest = asterisk.wait_labdest(result.call_id, since=log_mark)
    end = asterisk.wait_labend(result.call_id, since=log_mark)
    assert dest.uniqueid == end.uniqueid
    # The caller was really bridged with the echoing "agent" (what MixMonitor option b needs).
    assert any("joined 'simple_bridge'" in line for line in asterisk.call_log(dest, since=log_mark))


def test_sandbox_up_twice_is_harmless(asterisk: AsteriskLab) -> None:
    sandbox("up")
    sandbox("up")
    status = sandbox("status", check=False)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "state: up" in status.stdout
    assert "ari: ok" in status.stdout
    assert asterisk.ari("GET", "asterisk/info")["system"]["version"].startswith("22.")
    # Exactly one bind mount (the lab folder) after repeated ups.
    mounts = status.stdout.split("mounts:", 1)[1].split()
    assert mounts == [str(asterisk.root) + str(asterisk.lab_dir)]


def _check_ports(**ports: int) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update({f"CALLCONSENT_{k.upper()}_PORT": str(v) for k, v in ports.items()})
    return subprocess.run(
        [str(SANDBOX_SCRIPT), "check-ports"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_check_ports_accepts_the_running_sandbox(asterisk: AsteriskLab) -> None:
    proc = _check_ports()
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("kind", ["tcp", "udp"])
def test_busy_port_gives_a_clear_message(asterisk: AsteriskLab, kind: str) -> None:
    sock_type = socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, sock_type) as held:
        held.bind(("127.0.0.1", 0))
        if kind == "tcp":
            held.listen()
        port = held.getsockname()[1]
        proc = _check_ports(**({"http": port} if kind == "tcp" else {"sip": port}))
    assert proc.returncode != 0
    assert f"port {port}/{kind}" in proc.stderr
    assert "busy" in proc.stderr
    assert f"pid={os.getpid()}" in proc.stderr  # names the holder
