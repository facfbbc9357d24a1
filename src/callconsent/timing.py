"""The per-call latencies the live app logs once per call (``call_timing``; bench/live.py
reads them): pure arithmetic on the epoch-second milestones an adapter noted (Stasis: the
StasisStart's time, ARI's PlaybackStarted; FastAGI: the session's request, the STREAM FILE
sent). The time of
the decisive keypress (``digit_at``) is logged too: the benchmark measures the keypress ->
MixMonitor running from it (to the AMI MixMonitor's answer, ``agent_recording_started``, when the
recording starts at the bridge; to ``continued_at`` when the hook starts it next)."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any, Final

from callconsent.consent import DigitReceived, Event, PlaybackStarted

#: ``call_timing`` fields: (name, from milestone, to milestone), in milliseconds.
TIMINGS: Final = (
    ("notice_ms", "start", "notice"),  # the call entered -> the first prompt started
    # ... split at the app's request to play it: the event's way to the app, the answer's round
    # trip and the app's own work; then Asterisk's part (the request -> playback started)
    ("notice_app_ms", "start", "play_sent"),
    ("notice_play_ms", "play_sent", "notice"),
    # ... and the app's part split where the ARI client read the StasisStart: Asterisk writing
    # it to the websocket and the app's reader reaching it; then the app's queue and work
    ("notice_event_ms", "start", "read"),
    ("notice_queue_ms", "read", "play_sent"),
    # the decisive keypress -> the decision (a recording: its sidecar made, the channel
    # subscribed; its ledger line is written next, inside continue_ms)
    ("decide_ms", "digit", "decided"),
    # the decision -> the channel continued (ours; a recorded call's ledger line durable first,
    # written while its result is set)
    ("continue_ms", "decided", "continued"),
)


#: Milestones logged as they are (epoch seconds).
MOMENTS: Final = (("digit_at", "digit"), ("continued_at", "continued"))


def call_timing(marks: Mapping[str, float]) -> dict[str, float]:
    """The latencies (ms) between the milestones a call reached, and the moments of
    :data:`MOMENTS`; what it did not reach is left out."""
    out = {
        name: round((marks[end] - marks[begin]) * 1000, 1)
        for name, begin, end in TIMINGS
        if begin in marks and end in marks
    }
    out.update({name: round(marks[mark], 3) for name, mark in MOMENTS if mark in marks})
    return out


def mark(marks: MutableMapping[str, float], event: Event, *, finished: bool) -> None:
    """Note the milestones events carry: the first prompt started, and the last digit before
    the decision (``finished``: the machine has decided)."""
    if isinstance(event, PlaybackStarted):
        marks.setdefault("notice", event.at.timestamp())
    elif isinstance(event, DigitReceived) and not finished:
        marks["digit"] = event.at.timestamp()


def log_timing(bound: Any, marks: Mapping[str, float]) -> None:
    """The call's one ``call_timing`` line (on the call's bound logger), if it reached any."""
    timing = call_timing(marks)
    if timing:
        bound.info("call_timing", **timing)
