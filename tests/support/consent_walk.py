"""Random walks through the consent machine and the properties every walk must keep (issue 11).

Shared by tests/unit/test_consent_properties.py (hypothesis, ~2,000 walks in the test run) and
bench/consent_properties.py (100,000 walks, prints figures). A walk is a plan and a list of
steps ``(kind, digit)``, on a machine with or without ``playlists`` (the last notice and the
first question as one playback, its switch a ``PlaybackContinuing``); :func:`walk` feeds them as events (an event the machine refuses as
illegal in its state is skipped, as an adapter never sends it), then ends the call with a
hangup and returns what happened and every property it broke:

* ``recorded_without_digit``: a consent purpose is recorded although no accept digit of that
  purpose arrived after its question (or retry) prompt had started (or had been played; joined
  to a notice: after the playback's switch to it);
* ``recorded_without_notice``: a purpose without consent is recorded although a notice was not
  played to its end, or the caller objected (and the objection is not overridden);
* ``recording_without_prepare``: the result says "recording" before the recording was prepared;
* ``recording_before_ledger``: the call is continued with a result saying "recording" before the
  call's ledger line (the one written before recording) was durable (the result may be set while
  the line is written);
* ``twice``: the call continued more than once, or the result set more than once other than a
  "recording" replaced by an unrecorded one;
* ``continued_after_hangup``: a call whose caller hung up is continued to the dialplan;
* ``stuck``: a live state with neither a prompt playing nor a timer running (nothing would ever
  move it on);
* ``not_terminal``: after the hangup the machine is not in a terminal state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from callconsent.consent import (
    Action,
    AdapterFailed,
    Answered,
    CallEntered,
    CallerHungUp,
    CallPlan,
    ConsentMachine,
    ConsentQuestion,
    ConsentTimedOut,
    ContinueDialplan,
    DigitReceived,
    Event,
    IllegalEvent,
    LanguageMenu,
    LedgerWritten,
    Objection,
    PlaybackContinuing,
    PlaybackFailed,
    PlaybackFinished,
    PlaybackStarted,
    PlayPrompt,
    PrepareRecording,
    Prompt,
    PurposePlan,
    RecordingPrepared,
    SetResult,
    ShutdownRequested,
    StartTimer,
    State,
    WriteLedger,
)

#: Event kinds, weighted by repetition: prompts and digits often, the call-ending ones rarely.
KINDS: Final = (
    *("start",) * 3, *("finish",) * 3, *("continue",) * 2, *("digit",) * 4, *("timeout",) * 2, *("prepared",) * 2,
    *("logged",) * 2, "fail", "stale_finish", "stale_timeout", "hangup", "adapter_failed",
    "shutdown",
)  # fmt: skip
DIGITS: Final = tuple("0123456789*#")
_LIVE: Final = frozenset(
    {State.MENU, State.MENU_WAIT, State.NOTICE, State.QUESTION, State.RETRY, State.AWAITING_DIGIT}
)
T0: Final = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


def _prompt(name: str, lang: str = "da") -> Prompt:
    return Prompt(name, f"sound:/prompts/{lang}/{name}", lang, "ab" * 32)


def _asked(purpose: str, accept: str, refuse: str | None, retries: int = 1) -> PurposePlan:
    question = ConsentQuestion(
        _prompt(f"{purpose}.question"), _prompt(f"{purpose}.retry"), accept, refuse, 5.0, retries
    )
    return PurposePlan(purpose, "6(1)(a)", 30, question)


_DOC: Final = PurposePlan("documentation", "6(1)(f)", 90, None)
_TRAINING: Final = _asked("training", "1", "2")
_QUALITY: Final = _asked("emergency_quality", "3", "4")


def _plan(*purposes: PurposePlan, notices: int = 1, menu: LanguageMenu | None = None) -> CallPlan:
    return CallPlan("r", "da", tuple(_prompt(f"notice{i}") for i in range(notices)), purposes, menu)


def _menu_plan() -> CallPlan:
    english = CallPlan("r", "en", (_prompt("notice0", "en"),), (_DOC, _TRAINING))
    return _plan(_TRAINING, menu=LanguageMenu(_prompt("menu", "en"), (("8", english),), 2.0))


PLANS: Final = (
    _plan(_TRAINING),
    _plan(_DOC, _TRAINING),
    _plan(_TRAINING, _QUALITY),
    _plan(_DOC, notices=2),
    _plan(_DOC, notices=0),
    _plan(PurposePlan("documentation", "6(1)(f)", 90, None, objection=Objection("3")), _TRAINING),
    _plan(PurposePlan("documentation", "6(1)(f)", 90, None, objection=Objection("3", True, "G"))),
    _plan(_asked("training", "1", None, retries=0)),
    _plan(PurposePlan("training", "6(1)(a)", 30, _TRAINING.consent, sampled=False), _DOC),
    _menu_plan(),
)


@dataclass
class Walk:
    plan: CallPlan
    machine: ConsentMachine
    actions: list[Action] = field(default_factory=list)
    fed: list[Event] = field(default_factory=list)
    states: list[State] = field(default_factory=list)  # the state each fed event arrived in
    logged_when_continued: bool = False  # a LedgerWritten was fed before the continue came
    violations: list[str] = field(default_factory=list)
    _tick: int = 0

    def at(self) -> datetime:
        self._tick += 1
        return T0 + timedelta(milliseconds=100 * self._tick)

    def feed(self, event: Event) -> bool:
        before = self.machine.state
        try:
            out = self.machine.handle(event)
        except IllegalEvent:
            return False
        self.fed.append(event)
        self.states.append(before)
        self.actions.extend(out)
        if any(isinstance(a, ContinueDialplan) for a in out):
            self.logged_when_continued = any(isinstance(e, LedgerWritten) for e in self.fed)
        return True

    @property
    def recorded(self) -> tuple[str, ...]:
        prepared = [a for a in self.actions if isinstance(a, PrepareRecording)]
        return prepared[-1].purposes if prepared else ()

    @property
    def result(self) -> SetResult | None:
        results = [a for a in self.actions if isinstance(a, SetResult)]
        return results[-1] if results else None


def _event(w: Walk, kind: str, digit: str) -> Event:
    pid = next((a.playback_id for a in reversed(w.actions) if isinstance(a, PlayPrompt)), "x")
    tid = next((a.timer_id for a in reversed(w.actions) if isinstance(a, StartTimer)), "x")
    now = w.at()
    match kind:
        case "start":
            return PlaybackStarted(pid, now)
        case "finish":
            return PlaybackFinished(pid, now)
        case "continue":
            return PlaybackContinuing(pid, now)
        case "fail":
            return PlaybackFailed(pid, now)
        case "stale_finish":
            return PlaybackFinished("stale", now)
        case "digit":
            return DigitReceived(digit, now)
        case "timeout":
            return ConsentTimedOut(tid, now)
        case "stale_timeout":
            return ConsentTimedOut("stale", now)
        case "hangup":
            return CallerHungUp(now)
        case "prepared":
            return RecordingPrepared(now)
        case "logged":
            return LedgerWritten(now)
        case "adapter_failed":
            return AdapterFailed("ari_error", now)
        case _:
            return ShutdownRequested(now)


def walk(plan: CallPlan, steps: list[tuple[str, str]], *, playlists: bool = False) -> Walk:
    """Run ``steps`` on a fresh machine for ``plan``, then hang up; check every property."""
    w = Walk(plan, ConsentMachine(plan, call_key="1764000000.1", playlists=playlists))
    w.feed(CallEntered(w.at()))
    w.feed(Answered(w.at()))
    for kind, digit in steps:
        w.feed(_event(w, kind, digit))
        _check_live(w)
    w.feed(CallerHungUp(w.at()))  # every call ends with a hangup
    if not w.machine.finished:
        w.violations.append("not_terminal")
    check_recording(w)
    return w


def _check_live(w: Walk) -> None:
    m = w.machine
    # white-box: the machine's pending playback or timer is what moves a live state on
    if m.state in _LIVE and m._playback is None and m._timer is None:
        w.violations.append(f"stuck:{m.state.value}")


def check_recording(w: Walk) -> None:
    results = [a for a in w.actions if isinstance(a, SetResult)]
    continued = [i for i, a in enumerate(w.actions) if isinstance(a, ContinueDialplan)]
    replaced = len(results) == 2 and results[0].recording and not results[1].recording
    if len(results) > 2 or (len(results) == 2 and not replaced) or len(continued) > 1:
        w.violations.append("twice")
    if w.machine.state is State.ENDED and continued:
        w.violations.append("continued_after_hangup")
    if any(r.recording for r in results):
        said = next(i for i, a in enumerate(w.actions) if isinstance(a, SetResult) and a.recording)
        prepare = _index_of(w.actions, PrepareRecording)
        prepared_at = _index_of(w.fed, RecordingPrepared)
        if prepare is None or prepared_at is None or said < prepare:
            w.violations.append("recording_without_prepare")
    in_force = (
        [a for a in w.actions[: continued[0]] if isinstance(a, SetResult)] if continued else []
    )
    if in_force and in_force[-1].recording:
        line = _index_of(
            [a for a in w.actions if isinstance(a, WriteLedger) and not a.final], WriteLedger
        )
        if line is None or not w.logged_when_continued:
            w.violations.append("recording_before_ledger")
    plan = w.machine.plan  # as the call went on: a language menu may have switched it
    by_name = {p.purpose: p for p in plan.purposes}
    for purpose in w.recorded:
        p = by_name[purpose]
        if p.consent is None:
            if not _notices_played(w, plan) or _objected(w, plan, p):
                w.violations.append(f"recorded_without_notice:{purpose}")
        elif not _accepted(w, p.consent):
            w.violations.append(f"recorded_without_digit:{purpose}")


def _index_of(items: list[Event] | list[Action], kind: type) -> int | None:
    return next((i for i, e in enumerate(items) if isinstance(e, kind)), None)


def _notices_played(w: Walk, plan: CallPlan) -> bool:
    ids = {a.playback_id: a.prompt for a in w.actions if isinstance(a, PlayPrompt)}
    # a playlist's switch ends its first item: the notice
    ends = PlaybackFinished | PlaybackContinuing
    finished = {e.playback_id for e in w.fed if isinstance(e, ends)}
    played = {ids[i].prompt_id for i in finished if i in ids}
    return all(n.prompt_id in played for n in plan.notices)


def _objected(w: Walk, plan: CallPlan, purpose: PurposePlan) -> bool:
    objection = purpose.objection
    if objection is None or objection.record_anyway:
        return False
    return any(
        isinstance(e, DigitReceived) and e.digit == objection.digit and state is State.NOTICE
        for e, state in zip(w.fed, w.states, strict=True)
    )


def _accepted(w: Walk, consent: ConsentQuestion) -> bool:
    """An accept digit arrived after this purpose's question (or retry) prompt had started
    (joined to a notice: once the playback switched to it, or ended)."""
    plays = [a for a in w.actions if isinstance(a, PlayPrompt)]
    asked = {a.playback_id for a in plays if a.prompt in (consent.question, consent.retry)}
    joined = {a.playback_id for a in plays if a.then == consent.question}
    started = False
    for e in w.fed:
        if isinstance(e, PlaybackStarted | PlaybackFinished) and e.playback_id in asked:
            started = True  # Asterisk may report the end of a prompt without its start
        elif isinstance(e, PlaybackContinuing | PlaybackFinished) and e.playback_id in joined:
            started = True
        elif started and isinstance(e, DigitReceived) and e.digit == consent.accept_digit:
            return True
    return False
