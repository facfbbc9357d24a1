"""ARI events as the client sees them, and the sink the application implements."""

from __future__ import annotations

from typing import Any, Protocol

#: One decoded ARI event (a JSON object). The client itself reads only these fields:
#:
#: - ``type``: the event type, e.g. ``"StasisStart"``, ``"ChannelDtmfReceived"``.
#: - ``channel.id``: the channel the event is about (most channel events).
#: - ``playback.target_uri`` / ``recording.target_uri``: ``"channel:<id>"`` for playback and
#:   recording events on a channel.
#:
#: Everything else is passed through to the sink untouched, except that a ``StasisStart``
#: gets :data:`READ_AT`.
AriEvent = dict[str, Any]

#: Added to each ``StasisStart``: when the client read it off the websocket (epoch seconds), so
#: the app can tell the event's way from Asterisk from its own queue (``call_timing``). ARI's
#: own keys never start with an underscore.
READ_AT = "_callconsent_read_at"

#: The event that puts a channel in Stasis: its lane stays open until one of the two below.
STASIS_START = "StasisStart"
#: Events after which Asterisk sends nothing more for a channel in Stasis.
STASIS_END = "StasisEnd"
CHANNEL_DESTROYED = "ChannelDestroyed"
APPLICATION_REPLACED = "ApplicationReplaced"

_TARGET_PREFIX = "channel:"


class EventSink(Protocol):
    """What :meth:`AriClient.run` feeds. Implemented by the application."""

    async def on_connected(self) -> None:
        """Called after every (re)connect of the events websocket, before any event of it.

        Events that happened while disconnected are lost and StasisStart is not replayed:
        reconcile here, e.g. with :meth:`AriClient.application_channel_ids`. An exception is
        logged and does not stop the client.
        """

    async def on_channel_event(self, channel_id: str | None, event: AriEvent) -> None:
        """Handle one event. Calls for one channel are strictly ordered and never overlap.

        ``channel_id`` is ``None`` for events that concern no channel (one global queue).
        An exception is logged with the channel id; later events are still delivered.
        """


def channel_id_of(event: AriEvent) -> str | None:
    """The channel an event is about, or ``None`` when it concerns no channel."""
    channel = event.get("channel")
    if isinstance(channel, dict):
        channel_id = channel.get("id")
        if isinstance(channel_id, str) and channel_id:
            return channel_id
    for key in ("playback", "recording"):
        obj = event.get(key)
        if isinstance(obj, dict):
            target = obj.get("target_uri")
            if isinstance(target, str) and target.startswith(_TARGET_PREFIX):
                return target[len(_TARGET_PREFIX) :] or None
    return None
