"""The per-call latencies the live app logs once per call (``call_timing``; bench/live.py
reads them): pure arithmetic on the epoch-second milestones the ARI adapter noted."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

#: ``call_timing`` fields: (name, from milestone, to milestone), in milliseconds.
TIMINGS: Final = (
    ("notice_ms", "start", "notice"),  # StasisStart -> the first prompt started (Asterisk's clock)
    ("record_ms", "digit", "recording"),  # the decisive keypress -> MixMonitor running (same)
    ("continue_ms", "decided", "continued"),  # the decision -> the channel continued (ours)
)


def call_timing(marks: Mapping[str, float]) -> dict[str, float]:
    """The latencies (ms) between the milestones a call reached; those it missed are left out."""
    return {
        name: round((marks[end] - marks[begin]) * 1000, 1)
        for name, begin, end in TIMINGS
        if begin in marks and end in marks
    }
