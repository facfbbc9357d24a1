"""The consent rules: a pure state machine with no I/O.

Everything that decides whether a call may be recorded lives in this package; this file runs
the flow. Events (frozen dataclasses) go in through :meth:`ConsentMachine.handle`; actions (frozen
dataclasses) come out as values for an adapter to carry out. Time arrives inside events, so
nothing here reads a clock or sleeps. The transition table (:data:`callconsent.consent._table.
TRANSITIONS`, plain data) names the handler for every legal (state, event) pair; any other pair
raises :class:`IllegalEvent` and changes nothing. Beside it: the question being asked (its
evidence and what a key means, :mod:`callconsent.consent._question`) and the outcomes' wording
(:mod:`callconsent.consent._outcomes`).

The rules (Datatilsynet; GDPR Art 4(11), 7, Recital 32):
- the state before any answer is "refused": only an active keypress of the accept digit, received
  after that purpose's question has started, is consent;
- digits pressed during the notice are ignored (flushed);
- with ``playlists`` (the ARI adapter), the last notice and the first question after it play as
  one playback: its switch (:class:`PlaybackContinuing`) ends the notice and starts the question;
- silence, hangup, invalid digits (after the allowed retries), a failed prompt and any adapter
  error are refusal;
- each consent purpose has its own question: a yes to one is not a yes to another;
- a purpose that needs no consent is recorded only when every notice was played in full;
- a call is continued to be recorded only once its ledger line is durable (its result may be
  set meanwhile): a refused line means no recording, the result set again unrecorded first;
- whatever the outcome, the call is continued to the dialplan (never hung up by us).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from callconsent.consent._outcomes import (
    CONSENT_STATUSES,
    call_status,
    ended_early,
    question_to_join,
    without_consent,
)
from callconsent.consent._question import Asking
from callconsent.consent._table import TRANSITIONS, IllegalEvent, State
from callconsent.consent._types import (
    Action,
    AdapterFailed,
    Answer,
    Answered,
    CallEntered,
    CallerHungUp,
    CallOutcome,
    CallPlan,
    CancelTimer,
    ConsentQuestion,
    ConsentTimedOut,
    ContinueDialplan,
    DigitReceived,
    Event,
    LedgerWritten,
    NoticeEvidence,
    PlaybackContinuing,
    PlaybackFailed,
    PlaybackFinished,
    PlaybackStarted,
    PlayPrompt,
    PrepareRecording,
    Prompt,
    PurposeOutcome,
    PurposePlan,
    RecordingPrepared,
    SetResult,
    ShutdownRequested,
    StartTimer,
    StopPlayback,
    WriteLedger,
)

__all__ = ["ConsentMachine", "IllegalEvent"]


def _action_id(call_key: str, kind: str, counter: int) -> str:
    return f"{call_key}-{kind}{counter}"


@dataclass
class ConsentMachine:
    """One call's consent flow. ``call_key`` makes playback and timer ids unique per call;
    ``playlists``: the adapter can play two prompts as one playback (:attr:`PlayPrompt.then`)."""

    plan: CallPlan
    call_key: str
    playlists: bool = False
    state: State = State.NEW
    entered_at: datetime | None = None
    _counter: int = 0
    _playback: str | None = None  # the playback whose end we wait for
    _joined: bool = False  # that playback is the last notice, then the first question
    _timer: str | None = None  # the timer whose expiry counts
    _notice_index: int = 0
    _notices: list[NoticeEvidence] = field(default_factory=list)
    _outcomes: list[PurposeOutcome] = field(default_factory=list)
    _asking: Asking | None = None
    _failure: str | None = None  # reason when an error or a failed notice ended the flow
    _objection: DigitReceived | None = None  # the objection digit, pressed during a notice
    outcome: CallOutcome | None = None

    # -- public ---------------------------------------------------------------------------
    def handle(self, event: Event) -> list[Action]:
        """Feed one event; return the actions to carry out, in order."""
        name = TRANSITIONS.get((self.state, type(event)))
        if name is None:
            raise IllegalEvent(self.state, event)
        handler: Callable[[Event], list[Action]] = getattr(self, name)
        return handler(event)

    @property
    def finished(self) -> bool:
        return self.state in (State.CONTINUED, State.ENDED)

    # -- helpers --------------------------------------------------------------------------
    def _next_id(self, kind: str) -> str:
        self._counter += 1
        return _action_id(self.call_key, kind, self._counter)

    @staticmethod
    def playback_ids(call_key: str, limit: int = 32) -> list[str]:
        """Every id the first ``limit`` actions of a call's machine could give a playback: after a
        restart the app stops them without knowing which one is playing."""
        return [_action_id(call_key, "p", n) for n in range(1, limit + 1)]

    def _play(self, prompt: Prompt, state: State, then: Prompt | None = None) -> list[Action]:
        self.state = state
        self._playback = self._next_id("p")
        self._joined = then is not None
        return [PlayPrompt(self._playback, prompt, then)]

    def _start_timer(self, seconds: float, state: State = State.AWAITING_DIGIT) -> list[Action]:
        self.state = state
        self._timer = self._next_id("t")
        return [StartTimer(self._timer, seconds)]

    def _cancel_timer(self) -> list[Action]:
        if self._timer is None:
            return []
        timer, self._timer = self._timer, None
        return [CancelTimer(timer)]

    def _stop_playback(self) -> list[Action]:
        if self._playback is None:
            return []
        playback, self._playback = self._playback, None
        return [StopPlayback(playback)]

    # -- language menu --------------------------------------------------------------------
    def _choose_language(self, digit: str | None) -> list[Action]:
        menu = self.plan.menu
        assert menu is not None  # only the menu states call this
        actions = self._cancel_timer() + self._stop_playback()
        chosen = dict(menu.options).get(digit) if digit is not None else None
        self.plan = chosen if chosen is not None else replace(self.plan, menu=None)
        return actions + self._next_notice()

    # -- notices --------------------------------------------------------------------------
    def _next_notice(self) -> list[Action]:
        if self._notice_index < len(self.plan.notices):
            notice = self.plan.notices[self._notice_index]
            self._notices.append(NoticeEvidence(notice))
            then = None
            if self.playlists and self._notice_index == len(self.plan.notices) - 1:
                then = question_to_join(notice, self.plan.purposes[len(self._outcomes) :])
            return self._play(notice, State.NOTICE, then)
        return self._next_purpose()

    def _switch(self, at: datetime) -> list[Action]:
        """The joined playback ended the last notice (played in full) and started the question
        at ``at``; a purpose without consent before that question is decided now."""
        self._joined = False
        self._notices[-1] = replace(self._notices[-1], ended_at=at, played=True)
        self._notice_index += 1
        return self._next_purpose(playing_since=at)

    # -- purposes -------------------------------------------------------------------------
    def _next_purpose(self, playing_since: datetime | None = None) -> list[Action]:
        """Decide the purposes up to the next question and ask it (``playing_since``: it is
        already playing, joined to the notice)."""
        while len(self._outcomes) < len(self.plan.purposes):
            index = len(self._outcomes)
            purpose = self.plan.purposes[index]
            if purpose.consent is None:
                self._outcomes.append(without_consent(purpose, self._objection))
            elif not purpose.sampled:
                self._outcomes.append(PurposeOutcome.of(purpose, "not_sampled", "not_sampled"))
            else:
                self._asking = Asking(index=index, attempts=1, started_at=playing_since)
                if playing_since is not None:
                    self.state = State.QUESTION
                    return []
                return self._play(purpose.consent.question, State.QUESTION)
        return self._decide()

    def _current_question(self) -> tuple[PurposePlan, ConsentQuestion, Asking]:
        asking = self._asking
        assert asking is not None  # guaranteed by the states that call this
        purpose = self.plan.purposes[asking.index]
        assert purpose.consent is not None
        return purpose, purpose.consent, asking

    def _conclude(self, status: str, reason: str, digit: str | None, at: datetime | None) -> None:
        purpose, _consent, asking = self._current_question()
        self._outcomes.append(asking.outcome(purpose, status, reason, digit, at))
        self._asking = None

    def _digit(self, event: DigitReceived) -> list[Action]:
        _purpose, consent, asking = self._current_question()
        if self.state is State.QUESTION and asking.started_at is None:
            return []  # pressed before the question started: flushed
        actions = self._cancel_timer() + self._stop_playback()
        answer = asking.answer(consent, event.digit)
        if answer is None:  # an invalid key within the retries: the retry prompt, then again
            return actions + self._play(consent.retry, State.RETRY)
        self._conclude(*answer, event.digit, event.at)
        return actions + self._next_purpose()

    # -- decision -------------------------------------------------------------------------
    def _decide(self) -> list[Action]:
        if self._failure is None and any(o.recorded for o in self._outcomes):
            self.state = State.PREPARING
            status, reason = self._status()
            return [PrepareRecording(self._make_outcome(status, reason, recording=True))]
        return self._finish(recording=False)

    def _finish(self, *, recording: bool) -> list[Action]:
        status, reason = self._status()
        outcome = self._make_outcome(status, reason, recording=recording)
        if recording:  # the result is set while the line is written; continued once durable
            self.state = State.LOGGING
            return [WriteLedger(outcome, final=False), SetResult(status, reason, True)]
        self.state = State.CONTINUED
        return [SetResult(status, reason, False), ContinueDialplan(), WriteLedger(outcome)]

    def _status(self) -> tuple[str, str]:
        return call_status(self._failure, self._outcomes)

    def _make_outcome(self, status: str, reason: str, *, recording: bool) -> CallOutcome:
        outcome = CallOutcome(
            route=self.plan.route,
            language=self.plan.language,
            status=status,
            reason=reason,
            notices=tuple(self._notices),
            purposes=tuple(self._outcomes),
            recorded_purposes=tuple(o.purpose for o in self._outcomes if o.recorded)
            if recording
            else (),
            entered_at=self.entered_at,
        )
        self.outcome = outcome
        return outcome

    def _refuse_remaining(self, reason: str) -> None:
        """Every purpose not yet decided ends as refused (consent) or unrecorded (no consent)."""
        if self._asking is not None:
            self._conclude("refused", reason, None, None)
        self._outcomes = ended_early(self.plan.purposes, self._outcomes, reason)

    # -- transitions ----------------------------------------------------------------------
    def _on_entered(self, event: CallEntered) -> list[Action]:
        self.entered_at = event.at
        self.state = State.ANSWERING
        return [Answer()]

    def _on_answered(self, _event: Answered) -> list[Action]:
        if self.plan.menu is not None:
            return self._play(self.plan.menu.prompt, State.MENU)
        return self._next_notice()

    def _on_playback_started(self, event: PlaybackStarted) -> list[Action]:
        if event.playback_id != self._playback or self.state is State.MENU:
            return []  # a stopped or earlier playback: stale; the menu needs no evidence
        if self.state is State.NOTICE:
            self._notices[-1] = replace(self._notices[-1], started_at=event.at)
        else:
            _p, _c, asking = self._current_question()
            asking.started(event.at)  # unless joined: that question started at the switch
        return []

    def _on_playback_continuing(self, event: PlaybackContinuing) -> list[Action]:
        if (
            event.playback_id != self._playback
            or not self._joined
            or self.state is not State.NOTICE
        ):
            return []  # stale, or a playback that was not joined
        return self._switch(event.at)

    def _on_playback_finished(self, event: PlaybackFinished) -> list[Action]:
        if event.playback_id != self._playback:
            return []
        self._playback = None
        if self.state is State.MENU:
            assert self.plan.menu is not None
            return self._start_timer(self.plan.menu.timeout_seconds, State.MENU_WAIT)
        if self.state is State.NOTICE and self._joined:
            self._switch(event.at)  # the whole playlist ended, its switch unreported: both played
        elif self.state is State.NOTICE:
            self._notices[-1] = replace(self._notices[-1], ended_at=event.at, played=True)
            self._notice_index += 1
            return self._next_notice()
        _p, consent, asking = self._current_question()
        asking.finished(event.at)
        return self._start_timer(consent.timeout_seconds)

    def _on_playback_failed(self, event: PlaybackFailed) -> list[Action]:
        if event.playback_id != self._playback:
            return []
        self._playback = None
        if self.state is State.MENU:
            return self._choose_language(None)  # no menu: the route's own language
        if self.state is State.NOTICE:
            # R4: a notice that was not played in full means no recording on this call; a
            # joined playback would go on to the question: stopped
            stop = [StopPlayback(event.playback_id)] if self._joined else []
            self._joined = False
            self._failure = "notice_failed"
            self._refuse_remaining("notice_failed")
            return stop + self._finish(recording=False)
        self._conclude("refused", "notice_failed", None, None)
        return self._next_purpose()

    def _on_digit(self, event: DigitReceived) -> list[Action]:
        if self.state in (State.MENU, State.MENU_WAIT):
            return self._choose_language(event.digit)
        if self.state is State.NOTICE and self._objection is None:
            if any(p.objection and p.objection.digit == event.digit for p in self.plan.purposes):
                self._objection = event  # noted; the notice plays on
            return []
        if self.state in (State.NOTICE, State.ANSWERING):
            return []  # digits before the question are flushed
        return self._digit(event)

    def _on_timeout(self, event: ConsentTimedOut) -> list[Action]:
        if event.timer_id != self._timer:
            return []  # a cancelled timer that fired anyway
        self._timer = None
        if self.state is State.MENU_WAIT:
            return self._choose_language(None)
        self._conclude("refused", "timeout", None, None)
        return self._next_purpose()

    def _on_hangup(self, _event: CallerHungUp) -> list[Action]:
        actions = self._cancel_timer()
        self._playback = None
        self._refuse_remaining("hangup")
        asked = any(o.status in CONSENT_STATUSES for o in self._outcomes)
        status = "refused" if asked else "not_required"
        outcome = self._make_outcome(status, "hangup", recording=False)
        self.state = State.ENDED
        return [*actions, WriteLedger(outcome)]

    def _on_failure(self, event: AdapterFailed | ShutdownRequested) -> list[Action]:
        actions = self._cancel_timer() + self._stop_playback()
        self._failure = event.reason
        self._refuse_remaining(event.reason)
        return actions + self._finish(recording=False)

    def _on_prepared(self, _event: RecordingPrepared) -> list[Action]:
        return self._finish(recording=True)

    def _on_logged(self, _event: LedgerWritten) -> list[Action]:
        self.state = State.CONTINUED  # the result saying "record" was set with the line
        return [ContinueDialplan()]

    def _on_hangup_logging(self, _event: CallerHungUp) -> list[Action]:
        self.state = State.ENDED  # the line in flight is the call's; nothing is continued
        return []

    def _ignore(self, _event: Event) -> list[Action]:
        return []
