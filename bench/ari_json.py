"""Micro-benchmark: decoding the ARI events of one recorded call, json vs orjson (not a test).

    .venv/bin/python bench/ari_json.py [--calls 20000]

Decodes, ``--calls`` times, the text frames Asterisk 22 sends the app for one recorded call
(StasisStart with channelvars, two playbacks started and finished, a DTMF, a state change,
StasisEnd, hang-up request, ChannelDestroyed; shaped as the lab's Asterisk sends them) with
``json.loads`` and, when installed, ``orjson.loads``; prints CPU µs per call and per event.
"""

from __future__ import annotations

import argparse
import json
import time

_CHANNEL = {
    "id": "1764936000.1234",
    "name": "PJSIP/sipp-00000123",
    "state": "Up",
    "protocol_id": "1-12345@127.0.0.1",
    "caller": {"name": "sipp", "number": "4512345678"},
    "connected": {"name": "", "number": ""},
    "accountcode": "",
    "dialplan": {
        "context": "callconsent-in",
        "exten": "support",
        "priority": 3,
        "app_name": "Stasis",
        "app_data": "callconsent,support",
    },
    "creationtime": "2026-12-05T12:00:00.000+0000",
    "language": "da",
    "tenantid": "",
}
_START = {
    **_CHANNEL,
    "channelvars": {
        "CHANNEL(linkedid)": "1764936000.1234",
        "CALLERID(dnid)": "support",
        "CALLCONSENT_CALLERID_RAW_NUM": "4512345678",
        "CALLCONSENT_CALLERID_RAW_NAME": "sipp",
    },
}


def _event(kind: str, **fields: object) -> str:
    base = {
        "type": kind,
        "timestamp": "2026-12-05T12:00:01.234+0000",
        "asterisk_id": "00:00:00:00:00:00",
        "application": "callconsent",
    }
    return json.dumps({**base, **fields})


def _playback(kind: str, n: int, state: str) -> str:
    playback = {
        "id": f"cc-1764936000.1234-{n}",
        "media_uri": f"sound:/var/lib/callconsent/prompts/da/lab-training-v1-{n}",
        "target_uri": "channel:1764936000.1234",
        "language": "da",
        "state": state,
    }
    return _event(kind, playback=playback)


FRAMES = [
    _event("StasisStart", args=["support"], channel=_START),
    _playback("PlaybackStarted", 1, "playing"),
    _playback("PlaybackFinished", 1, "done"),
    _playback("PlaybackStarted", 2, "playing"),
    _event("ChannelDtmfReceived", digit="1", duration_ms=120, channel=_CHANNEL),
    _playback("PlaybackFinished", 2, "stopped"),
    _event("ChannelStateChange", channel=_CHANNEL),
    _event("StasisEnd", channel=_CHANNEL),
    _event("ChannelHangupRequest", cause=16, channel=_CHANNEL),
    _event("ChannelDestroyed", cause=16, cause_txt="Normal Clearing", channel=_CHANNEL),
]


def _measure(loads: object, calls: int) -> float:
    assert callable(loads)
    started = time.process_time()
    for _ in range(calls):
        for frame in FRAMES:
            loads(frame)
    return (time.process_time() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    decoders = {"json": json.loads}
    try:
        import orjson

        decoders["orjson"] = orjson.loads
    except ImportError:
        pass
    size = sum(len(f) for f in FRAMES)
    print(f"{len(FRAMES)} events, {size} bytes per call, {args.calls} calls")
    for name, loads in decoders.items():
        per_call = min(_measure(loads, args.calls) for _ in range(3))
        print(f"{name}: {per_call:.1f} µs per call, {per_call / len(FRAMES):.2f} µs per event")


if __name__ == "__main__":
    main()
