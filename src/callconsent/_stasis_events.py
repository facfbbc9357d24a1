"""ARI events as consent-machine events, for the ARI adapter (:mod:`callconsent.stasis`)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from callconsent.ari import APPLICATION_REPLACED
from callconsent.clock import Clock
from callconsent.consent import (
    CallerHungUp,
    DigitReceived,
    Event,
    PlaybackContinuing,
    PlaybackFailed,
    PlaybackFinished,
    PlaybackStarted,
)

#: Every ARI event type the app reads (:func:`callconsent._stasis_events.translate`,
#: :meth:`StasisApp.on_channel_event`, the client's ``ApplicationReplaced``). Asterisk is told
#: to send the app these only: once the app subscribed to a recorded channel, the others come
#: by the dozen per call (a ChannelVarset per variable set, a ChannelDialplan per dialplan step,
#: Dial, ChannelStateChange, ChannelConnectedLine, ...), each costing both processes CPU.
#: A handler for another type must add it here.
USED_EVENTS = (
    "StasisStart",
    "StasisEnd",
    "PlaybackStarted",
    "PlaybackContinuing",
    "PlaybackFinished",
    "ChannelDtmfReceived",
    "ChannelHangupRequest",
    "ChannelDestroyed",
    APPLICATION_REPLACED,
)

_HANGUP_EVENTS = frozenset({"ChannelHangupRequest", "StasisEnd", "ChannelDestroyed"})


def event_time(event: dict[str, Any], clock: Clock) -> datetime:
    """The event's own time stamp (UTC), or the clock's time when it has none."""
    stamp = event.get("timestamp")
    if isinstance(stamp, str):
        with contextlib.suppress(ValueError):
            parsed = datetime.fromisoformat(stamp)
            if parsed.tzinfo is not None:
                return parsed.astimezone(UTC)
    return clock()


def translate(kind: Any, event: dict[str, Any], clock: Clock) -> Event | None:
    """The machine event for one ARI event of a call, or None for one the machine ignores."""
    at = event_time(event, clock)
    if kind == "ChannelDtmfReceived":
        return DigitReceived(str(event.get("digit", "")), at)
    if kind in ("PlaybackStarted", "PlaybackContinuing", "PlaybackFinished"):
        playback = event.get("playback") or {}
        playback_id = str(playback.get("id", ""))
        if kind == "PlaybackStarted":
            return PlaybackStarted(playback_id, at)
        if kind == "PlaybackContinuing":  # a playlist went on to its next item
            return PlaybackContinuing(playback_id, at)
        if playback.get("state") == "failed":
            return PlaybackFailed(playback_id, at)
        return PlaybackFinished(playback_id, at)
    if kind in _HANGUP_EVENTS:
        return CallerHungUp(at)
    return None
