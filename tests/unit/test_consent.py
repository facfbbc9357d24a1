"""The consent state machine, driven by events alone: no Asterisk, no sockets, no sleeping."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callconsent.consent import (
    Action,
    AdapterFailed,
    Answer,
    Answered,
    CallEntered,
    CallerHungUp,
    CallPlan,
    CancelTimer,
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
    StopPlayback,
    WriteLedger,
)

T0 = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)
_tick = count()


def at() -> datetime:
    return T0 + timedelta(milliseconds=100 * next(_tick))


def prompt(name: str) -> Prompt:
    return Prompt(name, f"sound:/prompts/da/{name}", "da", "ab" * 32)


def training(*, retries: int = 1, refuse: str | None = "2", sampled: bool = True) -> PurposePlan:
    question = ConsentQuestion(
        prompt("training.question"), prompt("training.retry"), "1", refuse, 5.0, retries
    )
    return PurposePlan("training", "6(1)(a)", 30, question, sampled)


def quality() -> PurposePlan:
    question = ConsentQuestion(prompt("quality.question"), prompt("quality.retry"), "3", "4")
    return PurposePlan("emergency_quality", "6(1)(a)", 30, question)


DOCUMENTATION = PurposePlan("documentation", "6(1)(f)", 90, None)


def objectable(*, record_anyway: bool = False) -> PurposePlan:
    objection = Objection("3", record_anyway, "LAB-CG-1" if record_anyway else None)
    return PurposePlan("documentation", "6(1)(f)", 90, None, objection=objection)


def plan(*purposes: PurposePlan, notices: int = 1) -> CallPlan:
    notice_prompts = tuple(prompt(f"notice{i}") for i in range(notices))
    return CallPlan("support", "da", notice_prompts, purposes or (training(),))


def menu_plan() -> CallPlan:
    english = CallPlan(
        "support", "en", (Prompt("notice0", "sound:/p/en/n", "en", "cd" * 32),), (training(),)
    )
    menu = LanguageMenu(Prompt("menu", "sound:/p/en/menu", "en", "ef" * 32), (("8", english),), 2.0)
    return CallPlan("support", "da", (prompt("notice0"),), (training(),), menu)


class Driver:
    """Feeds events, answering the machine's own playbacks and timers like an adapter would."""

    def __init__(self, call_plan: CallPlan) -> None:
        self.machine = ConsentMachine(call_plan, call_key="1700000000.1")
        self.actions: list[Action] = []

    def feed(self, event: Event) -> list[Action]:
        out = self.machine.handle(event)
        self.actions.extend(out)
        return out

    def playing(self) -> PlayPrompt:
        plays = [a for a in self.actions if isinstance(a, PlayPrompt)]
        return plays[-1]

    def timer(self) -> StartTimer:
        return [a for a in self.actions if isinstance(a, StartTimer)][-1]

    def enter(self) -> Driver:
        self.feed(CallEntered(at()))
        self.feed(Answered(at()))
        return self

    def play_through(self) -> Driver:
        """Let the current prompt start and finish."""
        pid = self.playing().playback_id
        self.feed(PlaybackStarted(pid, at()))
        self.feed(PlaybackFinished(pid, at()))
        return self

    def start_current(self) -> Driver:
        self.feed(PlaybackStarted(self.playing().playback_id, at()))
        return self

    def digit(self, d: str) -> Driver:
        self.feed(DigitReceived(d, at()))
        return self

    def time_out(self) -> Driver:
        self.feed(ConsentTimedOut(self.timer().timer_id, at()))
        return self

    def prepared(self, *, logged: bool = True) -> Driver:
        """The recording prepared and (``logged``) its ledger line written, as a working
        adapter answers."""
        self.feed(RecordingPrepared(at()))
        if logged:
            self.feed(LedgerWritten(at()))
        return self

    def result(self) -> SetResult:
        return next(a for a in self.actions if isinstance(a, SetResult))

    def ledger(self) -> WriteLedger:
        """The call's one line: the final one, or the one written before it was recorded (a
        final line follows that one only when the ledger refused it)."""
        entries = [a for a in self.actions if isinstance(a, WriteLedger)]
        final = [a for a in entries if a.final]
        assert len(final) <= 1 and len(entries) - len(final) <= 1, entries
        assert entries, "exactly one ledger entry per call"
        if final and len(entries) == 2:  # the line before recording was refused
            assert entries[0].final is False and entries[1] is final[0], entries
        return final[0] if final else entries[0]

    def recorded(self) -> tuple[str, ...] | None:
        """The purposes the machine asked to record, or None when it asked for no recording."""
        prepare = self.prepare()
        return None if prepare is None else prepare.purposes

    def prepare(self) -> PrepareRecording | None:
        return next((a for a in self.actions if isinstance(a, PrepareRecording)), None)


def test_new_call_is_answered_then_hears_the_notice() -> None:
    d = Driver(plan())
    assert d.feed(CallEntered(at())) == [Answer()]
    out = d.feed(Answered(at()))
    assert out == [PlayPrompt("1700000000.1-p1", prompt("notice0"))]
    assert d.machine.state is State.NOTICE


def test_digit_after_question_gives_consent_and_records() -> None:
    d = Driver(plan()).enter().play_through().play_through().digit("1")
    assert d.recorded() == ("training",)
    assert d.machine.state is State.PREPARING
    d.prepared()
    assert d.result() == SetResult("given", "digit", recording=True)
    outcome = d.ledger().outcome
    assert outcome.recorded_purposes == ("training",)
    training_outcome = outcome.purposes[0]
    assert (training_outcome.status, training_outcome.digit, training_outcome.attempts) == (
        "given",
        "1",
        1,
    )
    assert training_outcome.question_started_at is not None
    assert training_outcome.digit_at is not None
    assert training_outcome.digit_at > training_outcome.question_ended_at  # type: ignore[operator]
    # the line and the result "record" together; the call continues once the line is durable
    assert d.actions[-3:] == [d.ledger(), SetResult("given", "digit", True), ContinueDialplan()]
    assert d.ledger().final is False


def test_a_recorded_call_sets_its_result_with_its_ledger_line_and_continues_once_durable() -> None:
    d = Driver(plan()).enter().play_through().play_through().digit("1")
    out = d.feed(RecordingPrepared(at()))
    assert d.machine.state is State.LOGGING
    line = d.ledger()
    assert out == [line, SetResult("given", "digit", True)]  # the line first: it is awaited
    assert (line.final, line.outcome.status, line.outcome.recorded_purposes) == (
        False,
        "given",
        ("training",),
    )
    assert not any(isinstance(a, ContinueDialplan) for a in d.actions)
    assert d.feed(LedgerWritten(at())) == [ContinueDialplan()]
    assert d.machine.state is State.CONTINUED


def test_a_refused_ledger_line_sets_the_result_again_unrecorded_before_the_call_continues() -> None:
    d = Driver(plan()).enter().play_through().play_through().digit("1").prepared(logged=False)
    assert d.actions[-1] == SetResult("given", "digit", True)  # set while the line was written
    out = d.feed(AdapterFailed("storage_error", at()))
    assert out[:2] == [SetResult("error", "storage_error", False), ContinueDialplan()]
    (final,) = out[2:]
    assert isinstance(final, WriteLedger) and final.final
    assert (final.outcome.status, final.outcome.reason) == ("error", "storage_error")
    assert final.outcome.recorded_purposes == ()
    assert final.outcome.purposes[0].status == "given"  # the caller said yes; not recorded
    assert d.machine.state is State.CONTINUED
    continued = d.actions.index(ContinueDialplan())
    last_result = [a for a in d.actions[:continued] if isinstance(a, SetResult)][-1]
    assert last_result == SetResult("error", "storage_error", False)


def test_a_caller_gone_while_the_line_is_written_is_neither_continued_nor_written_twice() -> None:
    d = Driver(plan()).enter().play_through().play_through().digit("1").prepared(logged=False)
    assert d.feed(CallerHungUp(at())) == []
    assert d.machine.state is State.ENDED
    assert d.feed(LedgerWritten(at())) == []  # the answer to the line in flight: nothing more
    assert not any(isinstance(a, ContinueDialplan) for a in d.actions)
    assert d.ledger().final is False


def test_shutdown_while_the_line_is_written_waits_for_the_write_to_decide() -> None:
    d = Driver(plan()).enter().play_through().play_through().digit("1").prepared(logged=False)
    assert d.feed(ShutdownRequested(at())) == []
    assert d.machine.state is State.LOGGING
    assert d.feed(LedgerWritten(at())) == [ContinueDialplan()]


def test_refuse_digit_is_refusal_without_recording() -> None:
    d = Driver(plan()).enter().play_through().play_through().digit("2")
    assert d.prepare() is None
    assert d.result() == SetResult("refused", "digit", recording=False)
    assert d.ledger().outcome.recorded_purposes == ()
    assert d.machine.state is State.CONTINUED


def test_silence_is_refusal_by_timeout() -> None:
    d = Driver(plan()).enter().play_through().play_through()
    assert d.timer().seconds == 5.0
    d.time_out()
    assert d.result() == SetResult("refused", "timeout", recording=False)
    assert d.ledger().outcome.purposes[0].digit is None


def test_hangup_during_notice_is_refusal_by_hangup_and_nothing_continues() -> None:
    d = Driver(plan()).enter().start_current()
    d.feed(CallerHungUp(at()))
    assert d.machine.state is State.ENDED
    outcome = d.ledger().outcome
    assert (outcome.status, outcome.reason) == ("refused", "hangup")
    assert not any(
        isinstance(a, (ContinueDialplan, SetResult, PrepareRecording)) for a in d.actions
    )


def test_consent_digit_pressed_during_notice_is_flushed_and_silence_then_refuses() -> None:
    d = Driver(plan()).enter().start_current().digit("1")
    assert d.machine.state is State.NOTICE
    d.feed(PlaybackFinished(d.playing().playback_id, at()))
    d.play_through().time_out()
    assert d.result() == SetResult("refused", "timeout", recording=False)


def test_digit_before_the_question_has_started_is_flushed() -> None:
    d = Driver(plan()).enter().play_through()
    assert d.machine.state is State.QUESTION
    assert d.digit("1").machine.state is State.QUESTION
    d.play_through().time_out()
    assert d.result().status == "refused"


def test_digit_during_question_counts_and_stops_the_prompt() -> None:
    d = Driver(plan()).enter().play_through().start_current()
    question = d.playing().playback_id
    out = d.feed(DigitReceived("1", at()))
    assert out[0] == StopPlayback(question)
    assert d.recorded() == ("training",)
    # the stopped prompt reports its end afterwards: stale, nothing happens
    assert d.feed(PlaybackFinished(question, at())) == []


def test_invalid_digit_then_accept_gives_consent_on_second_attempt() -> None:
    d = Driver(plan()).enter().play_through().play_through().digit("5")
    assert d.machine.state is State.RETRY
    assert d.playing().prompt.prompt_id == "training.retry"
    d.play_through().digit("1").prepared()
    assert d.result() == SetResult("given", "digit", recording=True)
    assert d.ledger().outcome.purposes[0].attempts == 2


def test_two_invalid_digits_are_refusal_invalid() -> None:
    d = Driver(plan()).enter().play_through().play_through().digit("5").play_through().digit("7")
    assert d.result() == SetResult("refused", "invalid", recording=False)


@pytest.mark.parametrize("key", ["*", "#"])
def test_star_and_hash_are_invalid_keys_not_consent(key: str) -> None:
    d = Driver(plan(training(retries=0))).enter().play_through().play_through().digit(key)
    assert d.result() == SetResult("refused", "invalid", recording=False)


def test_no_retry_configured_first_invalid_digit_refuses() -> None:
    d = Driver(plan(training(retries=0))).enter().play_through().play_through().digit("9")
    assert d.result().reason == "invalid"


def test_without_refuse_digit_any_other_key_is_invalid() -> None:
    d = Driver(plan(training(refuse=None))).enter().play_through().play_through().digit("2")
    assert d.machine.state is State.RETRY


def test_timeout_after_retry_prompt_is_refusal() -> None:
    d = Driver(plan()).enter().play_through().play_through().digit("5").play_through().time_out()
    assert d.result() == SetResult("refused", "timeout", recording=False)


def test_documentation_only_route_records_after_notice_without_a_question() -> None:
    d = Driver(plan(DOCUMENTATION)).enter().play_through()
    assert not any(
        isinstance(a, PlayPrompt) and "question" in a.prompt.prompt_id for a in d.actions
    )
    assert d.recorded() == ("documentation",)
    d.prepared()
    assert d.result() == SetResult("not_required", "no_consent_needed", recording=True)


def test_yes_to_first_purpose_is_not_yes_to_the_second() -> None:
    d = Driver(plan(training(), quality())).enter().play_through()
    d.play_through().digit("1")  # training: yes
    assert d.playing().prompt.prompt_id == "quality.question"
    d.play_through().time_out()  # quality: silence
    assert d.recorded() == ("training",)
    statuses = {o.purpose: o.status for o in d.prepared().ledger().outcome.purposes}
    assert statuses == {"training": "given", "emergency_quality": "refused"}


def test_accept_digit_of_one_purpose_is_invalid_for_another() -> None:
    d = Driver(plan(quality())).enter().play_through().play_through().digit("1")
    assert d.machine.state is State.RETRY


def test_documentation_and_refused_training_records_documentation_only() -> None:
    d = Driver(plan(DOCUMENTATION, training())).enter().play_through().play_through().digit("2")
    assert d.recorded() == ("documentation",)
    d.prepared()
    assert d.result() == SetResult("refused", "digit", recording=True)


def test_unsampled_training_is_not_asked_and_not_recorded() -> None:
    d = Driver(plan(training(sampled=False))).enter().play_through()
    assert d.result() == SetResult("not_required", "not_sampled", recording=False)
    assert d.ledger().outcome.purposes[0].status == "not_sampled"
    assert sum(isinstance(a, PlayPrompt) for a in d.actions) == 1  # the notice only


def test_failed_notice_records_nothing_and_still_continues_the_call() -> None:
    d = Driver(plan(DOCUMENTATION)).enter()
    d.feed(PlaybackFailed(d.playing().playback_id, at()))
    assert d.prepare() is None
    assert d.result() == SetResult("error", "notice_failed", recording=False)
    assert ContinueDialplan() in d.actions
    assert d.ledger().outcome.purposes[0].status == "not_recorded"


def test_failed_question_refuses_that_purpose_only() -> None:
    d = Driver(plan(DOCUMENTATION, training())).enter().play_through()
    d.feed(PlaybackFailed(d.playing().playback_id, at()))
    assert d.recorded() == ("documentation",)
    statuses = {o.purpose: (o.status, o.reason) for o in d.prepared().ledger().outcome.purposes}
    assert statuses["training"] == ("refused", "notice_failed")


def test_all_notices_play_in_order_before_the_question() -> None:
    d = Driver(plan(notices=2)).enter().play_through()
    assert d.playing().prompt.prompt_id == "notice1"
    d.play_through()
    assert d.playing().prompt.prompt_id == "training.question"
    played = d.start_current().digit("1").prepared().ledger().outcome.notices
    assert [n.played for n in played] == [True, True]


def test_adapter_failure_while_waiting_continues_unrecorded_with_error() -> None:
    d = Driver(plan()).enter().play_through().play_through()
    out = d.feed(AdapterFailed("ari_error", at()))
    assert out[0] == CancelTimer(d.timer().timer_id)
    assert d.result() == SetResult("error", "ari_error", recording=False)
    assert ContinueDialplan() in out


def test_recording_preparation_failure_means_no_recording() -> None:
    d = Driver(plan()).enter().play_through().play_through().digit("1")
    d.feed(AdapterFailed("storage_error", at()))
    assert d.result() == SetResult("error", "storage_error", recording=False)
    outcome = d.ledger().outcome
    assert outcome.recorded_purposes == ()
    assert outcome.purposes[0].status == "given"  # the evidence of the yes is kept


def test_shutdown_continues_call_without_recording() -> None:
    d = Driver(plan()).enter().play_through()
    d.feed(ShutdownRequested(at()))
    assert d.result() == SetResult("error", "shutdown", recording=False)


def test_stale_timer_is_ignored() -> None:
    d = Driver(plan()).enter().play_through().play_through().digit("5")
    old_timer = d.timer().timer_id
    d.play_through()
    assert d.feed(ConsentTimedOut(old_timer, at())) == []
    assert d.machine.state is State.AWAITING_DIGIT


def test_late_events_after_continue_change_nothing() -> None:
    d = Driver(plan()).enter().play_through().play_through().digit("2")
    for late in (DigitReceived("1", at()), CallerHungUp(at()), AdapterFailed("x", at())):
        assert d.feed(late) == []
    assert d.machine.state is State.CONTINUED
    d.ledger()


def test_illegal_event_raises_and_leaves_state_unchanged() -> None:
    d = Driver(plan())
    with pytest.raises(IllegalEvent, match="Answered is not legal in state new"):
        d.feed(Answered(at()))
    assert d.machine.state is State.NEW


# -- every state x every event --------------------------------------------------------------


def _machine_in(state: State) -> Driver:
    if state in (State.MENU, State.MENU_WAIT):
        d = Driver(menu_plan()).enter()
        if state is State.MENU_WAIT:
            d.play_through()
        assert d.machine.state is state
        return d
    routes = {
        State.NEW: lambda d: d,
        State.ANSWERING: lambda d: d.feed(CallEntered(at())) and d,
        State.NOTICE: lambda d: d.enter(),
        State.QUESTION: lambda d: d.enter().play_through(),
        State.RETRY: lambda d: d.enter().play_through().play_through().digit("5"),
        State.AWAITING_DIGIT: lambda d: d.enter().play_through().play_through(),
        State.PREPARING: lambda d: d.enter().play_through().play_through().digit("1"),
        State.LOGGING: lambda d: (
            d.enter().play_through().play_through().digit("1").prepared(logged=False)
        ),
        State.CONTINUED: lambda d: d.enter().play_through().play_through().digit("2"),
        State.ENDED: lambda d: d.enter().feed(CallerHungUp(at())) and d,
    }
    d = routes[state](Driver(plan()))
    assert d.machine.state is state
    return d


def _events_for(d: Driver) -> list[Event]:
    pid = next((a.playback_id for a in reversed(d.actions) if isinstance(a, PlayPrompt)), "none")
    tid = next((a.timer_id for a in reversed(d.actions) if isinstance(a, StartTimer)), "none")
    return [
        CallEntered(at()),
        Answered(at()),
        PlaybackStarted(pid, at()),
        PlaybackContinuing(pid, at()),
        PlaybackFinished(pid, at()),
        PlaybackFailed(pid, at()),
        DigitReceived("1", at()),
        ConsentTimedOut(tid, at()),
        CallerHungUp(at()),
        RecordingPrepared(at()),
        LedgerWritten(at()),
        AdapterFailed("ari_error", at()),
        ShutdownRequested(at()),
    ]


_PROMPT_EVENTS = {
    "PlaybackStarted",
    "PlaybackContinuing",
    "PlaybackFinished",
    "PlaybackFailed",
    "DigitReceived",
    "ConsentTimedOut",
    "CallerHungUp",
    "AdapterFailed",
    "ShutdownRequested",
}
LEGAL = {
    State.MENU: _PROMPT_EVENTS,
    State.MENU_WAIT: _PROMPT_EVENTS,
    State.NEW: {"CallEntered", "CallerHungUp", "ShutdownRequested"},
    State.ANSWERING: {
        "Answered",
        "DigitReceived",
        "CallerHungUp",
        "AdapterFailed",
        "ShutdownRequested",
    },
    State.NOTICE: {
        "PlaybackStarted",
        "PlaybackContinuing",
        "PlaybackFinished",
        "PlaybackFailed",
        "DigitReceived",
        "ConsentTimedOut",
        "CallerHungUp",
        "AdapterFailed",
        "ShutdownRequested",
    },
    State.QUESTION: {
        "PlaybackStarted",
        "PlaybackContinuing",
        "PlaybackFinished",
        "PlaybackFailed",
        "DigitReceived",
        "ConsentTimedOut",
        "CallerHungUp",
        "AdapterFailed",
        "ShutdownRequested",
    },
    State.RETRY: {
        "PlaybackStarted",
        "PlaybackContinuing",
        "PlaybackFinished",
        "PlaybackFailed",
        "DigitReceived",
        "ConsentTimedOut",
        "CallerHungUp",
        "AdapterFailed",
        "ShutdownRequested",
    },
    State.AWAITING_DIGIT: {
        "PlaybackStarted",
        "PlaybackContinuing",
        "PlaybackFinished",
        "PlaybackFailed",
        "DigitReceived",
        "ConsentTimedOut",
        "CallerHungUp",
        "AdapterFailed",
        "ShutdownRequested",
    },
    State.PREPARING: {
        "PlaybackStarted",
        "PlaybackContinuing",
        "PlaybackFinished",
        "PlaybackFailed",
        "DigitReceived",
        "ConsentTimedOut",
        "CallerHungUp",
        "RecordingPrepared",
        "AdapterFailed",
        "ShutdownRequested",
    },
    State.LOGGING: {
        "PlaybackStarted",
        "PlaybackContinuing",
        "PlaybackFinished",
        "PlaybackFailed",
        "DigitReceived",
        "ConsentTimedOut",
        "CallerHungUp",
        "LedgerWritten",
        "AdapterFailed",
        "ShutdownRequested",
    },
    State.CONTINUED: {
        "PlaybackStarted",
        "PlaybackContinuing",
        "PlaybackFinished",
        "PlaybackFailed",
        "DigitReceived",
        "ConsentTimedOut",
        "CallerHungUp",
        "LedgerWritten",
        "AdapterFailed",
        "ShutdownRequested",
    },
    State.ENDED: {
        "PlaybackStarted",
        "PlaybackContinuing",
        "PlaybackFinished",
        "PlaybackFailed",
        "DigitReceived",
        "ConsentTimedOut",
        "CallerHungUp",
        "LedgerWritten",
        "AdapterFailed",
        "ShutdownRequested",
    },
}


@pytest.mark.parametrize("state", list(State))
def test_every_state_accepts_exactly_its_legal_events(state: State) -> None:
    for index in range(len(_events_for(_machine_in(state)))):
        d = _machine_in(state)
        event = _events_for(d)[index]
        before = copy.deepcopy(d.machine)
        name = type(event).__name__
        if name in LEGAL[state]:
            d.feed(event)
        else:
            with pytest.raises(IllegalEvent):
                d.feed(event)
            assert d.machine == before, f"{name} in {state} changed the machine"


@pytest.mark.parametrize("state", list(State))
def test_every_event_ending_the_flow_writes_exactly_one_ledger_entry(state: State) -> None:
    for index in range(len(_events_for(_machine_in(state)))):
        d = _machine_in(state)
        event = _events_for(d)[index]
        if type(event).__name__ not in LEGAL[state]:
            continue
        d.feed(event)
        if d.machine.finished:
            d.ledger()  # one line is the call's (a refused line before recording: its final)
        else:  # only a call to be recorded has its line written before it is continued
            lines = [a.final for a in d.actions if isinstance(a, WriteLedger)]
            assert lines == ([False] if d.machine.state is State.LOGGING else [])


# -- properties -------------------------------------------------------------------------------

_KINDS = st.sampled_from(
    [
        "start",
        "finish",
        "fail",
        "stale_finish",
        "digit",
        "timeout",
        "stale_timeout",
        "hangup",
        "prepared",
        "logged",
        "adapter_failed",
    ]
)
_DIGITS = st.sampled_from(list("0123456789*#"))


def _concrete(d: Driver, kind: str, digit: str) -> Event:
    pid = next((a.playback_id for a in reversed(d.actions) if isinstance(a, PlayPrompt)), "x")
    tid = next((a.timer_id for a in reversed(d.actions) if isinstance(a, StartTimer)), "x")
    return {
        "start": lambda: PlaybackStarted(pid, at()),
        "finish": lambda: PlaybackFinished(pid, at()),
        "fail": lambda: PlaybackFailed(pid, at()),
        "stale_finish": lambda: PlaybackFinished("stale", at()),
        "digit": lambda: DigitReceived(digit, at()),
        "timeout": lambda: ConsentTimedOut(tid, at()),
        "stale_timeout": lambda: ConsentTimedOut("stale", at()),
        "hangup": lambda: CallerHungUp(at()),
        "prepared": lambda: RecordingPrepared(at()),
        "logged": lambda: LedgerWritten(at()),
        "adapter_failed": lambda: AdapterFailed("ari_error", at()),
    }[kind]()


@settings(max_examples=400, deadline=None)
@given(
    steps=st.lists(st.tuples(_KINDS, _DIGITS), max_size=30),
    purposes=st.sampled_from([(training(),), (DOCUMENTATION, training()), (training(), quality())]),
)
def test_no_event_sequence_records_a_consent_purpose_without_an_active_accept_digit(
    steps: list[tuple[str, str]], purposes: tuple[PurposePlan, ...]
) -> None:
    d = Driver(plan(*purposes)).enter()
    accepted_while_asked: set[str] = set()
    logged_when_continued = False
    fed: list[Event] = []
    for kind, digit in steps:
        event = _concrete(d, kind, digit)
        state = d.machine.state
        asking = d.machine._asking
        try:
            out = d.feed(event)
        except IllegalEvent:
            continue
        fed.append(event)
        if ContinueDialplan() in out:
            logged_when_continued = any(isinstance(e, LedgerWritten) for e in fed)
        if (
            isinstance(event, DigitReceived)
            and asking is not None
            and state in (State.QUESTION, State.RETRY, State.AWAITING_DIGIT)
            and (state is not State.QUESTION or asking.started_at is not None)
        ):
            consent = purposes[asking.index].consent
            if consent is not None and digit == consent.accept_digit:
                accepted_while_asked.add(purposes[asking.index].purpose)
    prepared = d.prepare()
    results = [a for a in d.actions if isinstance(a, SetResult)]
    continues = [i for i, a in enumerate(d.actions) if isinstance(a, ContinueDialplan)]
    assert len(results) <= 2  # "record", then (the line refused) the unrecorded one
    assert len(continues) <= 1
    if prepared is not None:
        for purpose in prepared.purposes:
            if purpose != "documentation":
                assert purpose in accepted_while_asked
    if any(r.recording for r in results):
        assert prepared is not None
        assert any(isinstance(e, RecordingPrepared) for e in fed)
    if continues:  # the result in force when the call continued
        in_force = [a for a in d.actions[: continues[0]] if isinstance(a, SetResult)][-1]
        if in_force.recording:
            assert logged_when_continued  # the line durable first
    if d.machine.state is State.ENDED:
        assert not continues  # a caller who hung up is never continued
    if d.machine.finished:
        outcome = d.ledger().outcome
        for purpose_outcome in outcome.purposes:
            if purpose_outcome.status == "given":
                assert purpose_outcome.purpose in accepted_while_asked
                assert purpose_outcome.digit is not None


# -- language menu ----------------------------------------------------------------------------


def test_language_menu_digit_switches_the_whole_call_to_that_language() -> None:
    d = Driver(menu_plan()).enter()
    assert d.playing().prompt.prompt_id == "menu"
    d.start_current().digit("8")
    assert d.playing().prompt.language == "en"
    d.play_through().play_through().digit("1").prepared()
    outcome = d.ledger().outcome
    assert outcome.language == "en"
    assert outcome.notices[0].prompt.language == "en"


def test_no_menu_choice_keeps_the_routes_language_after_the_menu_timeout() -> None:
    d = Driver(menu_plan()).enter().play_through()
    assert d.machine.state is State.MENU_WAIT
    d.time_out()
    assert d.playing().prompt.prompt_id == "notice0"
    assert d.playing().prompt.language == "da"


def test_other_digit_in_the_menu_is_not_consent_and_keeps_danish() -> None:
    d = Driver(menu_plan()).enter().start_current().digit("1")
    assert d.machine.state is State.NOTICE
    assert d.playing().prompt.language == "da"
    d.play_through().play_through().time_out()
    assert d.result() == SetResult("refused", "timeout", recording=False)


def test_failed_menu_prompt_goes_on_in_the_routes_language() -> None:
    d = Driver(menu_plan()).enter()
    d.feed(PlaybackFailed(d.playing().playback_id, at()))
    assert d.machine.state is State.NOTICE


# -- objection (Art 21) -----------------------------------------------------------------------


def test_objection_digit_during_the_notice_means_no_documentation_recording() -> None:
    d = Driver(plan(objectable())).enter().start_current().digit("3")
    assert d.machine.state is State.NOTICE, "the notice plays on"
    d.feed(PlaybackFinished(d.playing().playback_id, at()))
    assert d.recorded() is None
    assert d.result() == SetResult("refused", "objection", recording=False)
    (documentation,) = d.ledger().outcome.purposes
    assert (documentation.status, documentation.digit) == ("objected", "3")
    assert documentation.digit_at is not None


def test_objection_on_compelling_grounds_still_records_and_says_so() -> None:
    d = Driver(plan(objectable(record_anyway=True))).enter().start_current().digit("3")
    d.feed(PlaybackFinished(d.playing().playback_id, at()))
    assert d.recorded() == ("documentation",)
    d.prepared()
    (documentation,) = d.ledger().outcome.purposes
    assert (documentation.status, documentation.reason) == ("not_required", "objection_overridden")


def test_objection_digit_after_the_notice_is_not_an_objection() -> None:
    d = Driver(plan(objectable(), training())).enter().play_through().play_through().digit("3")
    assert d.machine.state is State.RETRY  # an invalid answer to the consent question
    d.play_through().digit("2")
    assert d.recorded() == ("documentation",)


def test_objection_to_documentation_leaves_a_training_yes_intact() -> None:
    d = Driver(plan(objectable(), training())).enter().start_current().digit("3")
    d.feed(PlaybackFinished(d.playing().playback_id, at()))
    d.play_through().digit("1")
    assert d.recorded() == ("training",)


def test_every_transition_names_a_handler_of_the_machine() -> None:
    from callconsent.consent._table import TRANSITIONS

    missing = {
        name for name in TRANSITIONS.values() if not callable(getattr(ConsentMachine, name, None))
    }
    assert not missing
