"""How the AGI adapter talks to the consent machine: pure functions, no I/O.

The consent rules themselves stay in :mod:`callconsent.consent`; this module only says which
AGI command carries out a machine action and which machine events an AGI reply means, and
checks what the request asks for.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from callconsent import names
from callconsent.agi.wire import AgiReply, AgiRequest
from callconsent.consent import (
    CallPlan,
    ConsentTimedOut,
    DigitReceived,
    Event,
    PlaybackFailed,
    PlaybackFinished,
    State,
)

__all__ = [
    "ALL_DIGITS",
    "CALL_INFO_EXPRESSION",
    "ENDED_SCRIPT",
    "FLOW_SCRIPT",
    "BadRequest",
    "CallerText",
    "FlowRequest",
    "check_request",
    "escape_digits",
    "parse_call_info",
    "play_events",
    "stream_file",
    "wait_events",
    "wait_milliseconds",
]

#: The script paths the server answers: the consent flow, and the hangup handler of a recorded
#: call (the sidecar is finalised once MixMonitor closed the file).
FLOW_SCRIPT: Final = names.AGI_FLOW_SCRIPT
ENDED_SCRIPT: Final = names.AGI_ENDED_SCRIPT
#: Escape digits of a prompt a digit counts during (question, retry, language menu).
ALL_DIGITS: Final = "0123456789*#"
_ROUTE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_UNIQUEID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$")
_FLOW_PARAMS: Final = frozenset({"route"})
#: Caller-controlled values read as base64 (no line break can reach the reply), then the
#: linked id, the channel's state (the hook answers first: "Up"), then a constant that proves
#: BASE64_ENCODE() exists (func_base64).
CALL_INFO_EXPRESSION: Final = (
    "${BASE64_ENCODE(${CALLERID(num)})}:${BASE64_ENCODE(${CALLERID(name)})}:"
    "${BASE64_ENCODE(${CALLERID(dnid)})}:${CHANNEL(linkedid)}:${CHANNEL(state)}:"
    "${BASE64_ENCODE(ok)}"
)
_BASE64_OK: Final = "b2s="
_LINKEDID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True, slots=True)
class FlowRequest:
    """A valid request for the consent flow: the route the hook named (None: by dialled number)."""

    uniqueid: str
    channel: str
    route: str | None


@dataclass(frozen=True, slots=True)
class BadRequest:
    reason: str  # the ledger reason
    detail: str  # for the log
    uniqueid_ok: bool = True  # the uniqueid can name the call in the ledger


def check_request(request: AgiRequest) -> FlowRequest | BadRequest:
    """The request for the consent flow, checked: the script path, only known parameters, a
    route of plain characters, a uniqueid that can name a file. Whether the route exists is the
    planner's to say."""
    if not _UNIQUEID.match(request.uniqueid) or not request.channel:
        return BadRequest("bad_agi_request", "bad uniqueid or channel", uniqueid_ok=False)
    if request.path != FLOW_SCRIPT:
        return BadRequest("bad_agi_request", f"unknown script {request.path!r}")
    unknown = set(request.params) - _FLOW_PARAMS
    if unknown:
        return BadRequest("bad_agi_request", f"unknown parameters {sorted(unknown)}")
    route = request.params.get("route") or None
    if route is not None and not _ROUTE.match(route):
        return BadRequest("bad_agi_request", "bad route name")
    return FlowRequest(request.uniqueid, request.channel, route)


@dataclass(frozen=True, slots=True)
class CallerText:
    """The caller's number and name and the dialled number, verbatim, the linked id, and
    whether the channel was answered (by the hook) before the AGI."""

    caller_number: str | None
    caller_name: str | None
    dialled_number: str | None
    linkedid: str | None
    answered: bool = False


def _decode(part: str) -> str | None:
    try:
        return base64.b64decode(part, validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return None


def parse_call_info(reply: AgiReply) -> CallerText | None:
    """The reply to ``GET FULL VARIABLE`` of :data:`CALL_INFO_EXPRESSION`; None when it is not
    one (e.g. func_base64 not loaded). An empty dialled number is None, as ARI gives it."""
    if not reply.ok or reply.result != 1 or reply.data is None:
        return None
    parts = reply.data.split(":")
    if len(parts) != 6 or parts[5] != _BASE64_OK:
        return None
    number, name, dnid = (_decode(p) for p in parts[:3])
    linkedid = parts[3] if _LINKEDID.match(parts[3]) else None
    return CallerText(number, name, dnid or None, linkedid, answered=parts[4] == "Up")


def stream_file(media: str) -> str:
    """The ``STREAM FILE`` argument for a prompt's media URI (``sound:<path without ext>``)."""
    name = media.removeprefix("sound:")
    if not name or any(c.isspace() or c in '"\\\0' for c in name):
        raise ValueError(f"cannot stream {media!r}")
    return name


def escape_digits(state: State, plan: CallPlan) -> str:
    """The digits that end a prompt in ``state``: every digit while a digit counts (question,
    retry, menu); during a notice only the route's objection digits (the notice then plays on
    from where it stopped), or none: digits in the notice are ignored."""
    if state is State.NOTICE:
        digits = {p.objection.digit for p in plan.purposes if p.objection is not None}
        return "".join(sorted(digits))
    return ALL_DIGITS


def play_events(reply: AgiReply, playback_id: str, at: datetime) -> list[Event] | None:
    """The events a ``STREAM FILE`` reply means: finished, or a digit (the prompt stopped).
    None: ``result=-1`` (hung up, or the file could not be played: the adapter asks the channel
    which). A reply that is not a result is a failed playback."""
    if reply.failed:
        return None
    if not reply.ok or reply.result is None:
        return [PlaybackFailed(playback_id, at)]
    digit = reply.digit
    if digit is not None:
        return [DigitReceived(digit, at)]
    if reply.result != 0:
        return [PlaybackFailed(playback_id, at)]
    return [PlaybackFinished(playback_id, at)]


def wait_events(reply: AgiReply, timer_id: str, at: datetime) -> list[Event] | None:
    """The events a ``WAIT FOR DIGIT`` reply means: a digit, or the timer ran out. None:
    ``result=-1`` or a reply that is not a result (the adapter asks the channel)."""
    if not reply.ok or reply.result is None or reply.result < 0:
        return None
    digit = reply.digit
    if digit is not None:
        return [DigitReceived(digit, at)]
    return [ConsentTimedOut(timer_id, at)]


def wait_milliseconds(seconds: float) -> str:
    return str(max(1, round(seconds * 1000)))
