"""Fakes for fast tests (no Asterisk needed)."""

from tests.support.ari_server import (
    FakeAriServer,
    RecordedCall,
    RecordingSink,
    channel_event,
    eventually,
    playback_event,
)

__all__ = [
    "FakeAriServer",
    "RecordedCall",
    "RecordingSink",
    "channel_event",
    "eventually",
    "playback_event",
]
