"""The consent machine's states and its transition table, as plain data.

Every legal (state, event type) pair maps to the name of the :class:`callconsent.consent.
ConsentMachine` method that handles it; a pair missing here is an illegal event. Reading this
file is reading the rules' shape: which events each state listens to, and which it ignores.
"""

from __future__ import annotations

import enum
from typing import Final

from callconsent.consent._types import (
    AdapterFailed,
    Answered,
    CallEntered,
    CallerHungUp,
    ConsentTimedOut,
    DigitReceived,
    Event,
    LedgerWritten,
    PlaybackContinuing,
    PlaybackFailed,
    PlaybackFinished,
    PlaybackStarted,
    RecordingPrepared,
    ShutdownRequested,
)


class State(enum.Enum):
    NEW = "new"  # the call entered the app; nothing done yet
    ANSWERING = "answering"  # Answer sent
    MENU = "menu"  # playing the language menu; a digit chooses
    MENU_WAIT = "menu_wait"  # menu finished, timer running
    NOTICE = "notice"  # playing a notice (the last may have the question queued); digits ignored
    QUESTION = "question"  # playing a consent question; a digit counts once it has started
    RETRY = "retry"  # playing the invalid-key prompt; a digit counts
    AWAITING_DIGIT = "awaiting_digit"  # prompt finished, timer running
    PREPARING = "preparing"  # the adapter prepares the recording (paths, sidecar)
    LOGGING = "logging"  # the ledger line and the result "record" are written; no continue yet
    CONTINUED = "continued"  # the result is set and the call continued to the dialplan
    ENDED = "ended"  # the caller hung up before a decision; nothing is recorded


_LIVE: Final = (
    State.MENU,
    State.MENU_WAIT,
    State.NOTICE,
    State.QUESTION,
    State.RETRY,
    State.AWAITING_DIGIT,
)
_PROMPTING: Final = (State.MENU, State.NOTICE, State.QUESTION, State.RETRY)
_BEFORE_DECISION: Final = (State.ANSWERING, *_LIVE, State.PREPARING)


def _build() -> dict[tuple[State, type[Event]], str]:
    rows: dict[tuple[State, type[Event]], str] = {
        (State.NEW, CallEntered): "_on_entered",
        (State.NEW, CallerHungUp): "_on_hangup",
        (State.NEW, ShutdownRequested): "_on_failure",
        (State.ANSWERING, Answered): "_on_answered",
        (State.ANSWERING, DigitReceived): "_on_digit",
        (State.PREPARING, RecordingPrepared): "_on_prepared",
        # the write in flight decides: durable, the call is continued and recorded; refused, the
        # result is set again, unrecorded, and the call continues without a recording
        (State.LOGGING, LedgerWritten): "_on_logged",
        (State.LOGGING, AdapterFailed): "_on_failure",
        (State.LOGGING, CallerHungUp): "_on_hangup_logging",
        (State.LOGGING, ShutdownRequested): "_ignore",
        (State.LOGGING, DigitReceived): "_ignore",
    }
    for state in _PROMPTING:
        rows[(state, PlaybackStarted)] = "_on_playback_started"
        rows[(state, PlaybackContinuing)] = "_on_playback_continuing"
        rows[(state, PlaybackFinished)] = "_on_playback_finished"
        rows[(state, PlaybackFailed)] = "_on_playback_failed"
    for state in _LIVE:
        rows[(state, DigitReceived)] = "_on_digit"
        rows[(state, ConsentTimedOut)] = "_on_timeout"
    # a stopped prompt may still report its start or end after the flow moved on: stale, ignored
    for state in (
        State.MENU_WAIT,
        State.AWAITING_DIGIT,
        State.PREPARING,
        State.LOGGING,
        State.CONTINUED,
        State.ENDED,
    ):
        for stale in (
            PlaybackStarted,
            PlaybackContinuing,
            PlaybackFinished,
            PlaybackFailed,
            ConsentTimedOut,
        ):
            rows.setdefault((state, stale), "_ignore")
    rows[(State.PREPARING, DigitReceived)] = "_ignore"
    for state in _BEFORE_DECISION:
        rows[(state, CallerHungUp)] = "_on_hangup"
        rows[(state, AdapterFailed)] = "_on_failure"
        rows[(state, ShutdownRequested)] = "_on_failure"
    # after the call went back to the dialplan, the app may still hear of it; nothing changes
    for state in (State.CONTINUED, State.ENDED):
        for late in (DigitReceived, CallerHungUp, AdapterFailed, ShutdownRequested, LedgerWritten):
            rows[(state, late)] = "_ignore"
    return rows


class IllegalEvent(Exception):
    """An event that cannot happen in the current state. The machine is left unchanged."""

    def __init__(self, state: State, event: Event) -> None:
        super().__init__(f"{type(event).__name__} is not legal in state {state.value}")
        self.state = state
        self.event = event


#: (state, event type) -> the name of the ConsentMachine method that handles it.
TRANSITIONS: Final = _build()
