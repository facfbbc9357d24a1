"""The consent machine with ``playlists`` on (the ARI adapter): the last notice and the first
consent question play as one playback; its switch (PlaybackContinuing) ends the notice and
starts the question. Pure: events in, actions out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest

from callconsent.consent import (
    Action,
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
    LanguageMenu,
    Objection,
    PlaybackContinuing,
    PlaybackFailed,
    PlaybackFinished,
    PlaybackStarted,
    PlayPrompt,
    PrepareRecording,
    Prompt,
    PurposePlan,
    SetResult,
    StartTimer,
    State,
    StopPlayback,
    WriteLedger,
)

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
_tick = count()


def at() -> datetime:
    return T0 + timedelta(milliseconds=100 * next(_tick))


def prompt(name: str, lang: str = "da") -> Prompt:
    return Prompt(name, f"sound:/prompts/{lang}/{name}", lang, "ab" * 32)


def asked(purpose: str, accept: str = "1", refuse: str = "2", lang: str = "da") -> PurposePlan:
    question = ConsentQuestion(
        prompt(f"{purpose}.question", lang), prompt(f"{purpose}.retry", lang), accept, refuse, 5.0
    )
    return PurposePlan(purpose, "6(1)(a)", 30, question)


TRAINING = asked("training")
QUESTION = prompt("training.question")
RETRY = prompt("training.retry")
QUALITY = asked("quality", "3", "4")
QUALITY_QUESTION = prompt("quality.question")
DOCUMENTATION = PurposePlan("documentation", "6(1)(f)", 90, None)


def plan(*purposes: PurposePlan, notices: int = 1) -> CallPlan:
    return CallPlan("support", "da", tuple(prompt(f"notice{i}") for i in range(notices)), purposes)


class Call:
    def __init__(self, call_plan: CallPlan, *, playlists: bool = True) -> None:
        self.machine = ConsentMachine(call_plan, call_key="1764900000.1", playlists=playlists)
        self.actions: list[Action] = []
        self.feed(CallEntered(at()))
        self.feed(Answered(at()))

    def feed(self, event: Event) -> list[Action]:
        out = self.machine.handle(event)
        self.actions.extend(out)
        return out

    @property
    def plays(self) -> list[PlayPrompt]:
        return [a for a in self.actions if isinstance(a, PlayPrompt)]

    @property
    def pid(self) -> str:
        return self.plays[-1].playback_id

    def started(self) -> list[Action]:
        return self.feed(PlaybackStarted(self.pid, at()))

    def switched(self, when: datetime | None = None) -> list[Action]:
        return self.feed(PlaybackContinuing(self.pid, when or at()))

    def finished(self) -> list[Action]:
        return self.feed(PlaybackFinished(self.pid, at()))

    def digit(self, d: str) -> list[Action]:
        return self.feed(DigitReceived(d, at()))

    def ledger(self) -> WriteLedger:
        (line,) = [a for a in self.actions if isinstance(a, WriteLedger)]
        return line


def test_the_last_notice_and_the_first_question_are_one_play() -> None:
    c = Call(plan(TRAINING))
    assert c.plays == [PlayPrompt(c.pid, prompt("notice0"), QUESTION)]
    assert c.machine.state is State.NOTICE


def test_without_playlists_the_notice_and_the_question_are_two_plays() -> None:
    """The FastAGI adapter's machine (STREAM FILE plays one file): unchanged."""
    c = Call(plan(TRAINING), playlists=False)
    assert c.plays[0].then is None
    c.started(), c.finished()
    assert [p.prompt.prompt_id for p in c.plays] == ["notice0", "training.question"]
    assert c.plays[1].then is None


def test_the_switch_ends_the_notice_played_in_full_and_starts_the_question_then() -> None:
    c = Call(plan(TRAINING))
    c.started()
    switch = at()
    assert c.switched(switch) == []  # nothing to send: the question is already playing
    assert c.machine.state is State.QUESTION
    c.started()  # Asterisk reports the question item's start just after the switch
    assert c.finished() == [StartTimer("1764900000.1-t2", 5.0)]
    c.digit("1")
    prepare = next(a for a in c.actions if isinstance(a, PrepareRecording))
    (notice,) = prepare.outcome.notices
    assert notice.played and notice.ended_at == switch and notice.started_at is not None
    (training,) = prepare.outcome.purposes
    assert (training.status, training.question_started_at) == ("given", switch)
    assert training.question_ended_at is not None and training.question_ended_at > switch
    assert len(c.plays) == 1


def test_a_digit_before_the_switch_is_flushed_and_one_after_it_counts() -> None:
    c = Call(plan(TRAINING))
    c.started()
    assert c.digit("1") == []  # during the notice: not consent, the playback goes on
    assert c.machine.state is State.NOTICE
    c.switched()
    out = c.digit("1")  # the question is playing: consent; the playback is stopped
    assert out[0] == StopPlayback(c.pid)
    assert isinstance(out[1], PrepareRecording) and out[1].purposes == ("training",)


def test_a_digit_at_the_switch_without_a_start_event_counts() -> None:
    c = Call(plan(TRAINING))
    c.switched()  # no PlaybackStarted seen: the switch alone starts the question
    assert isinstance(c.digit("2")[1], SetResult)
    assert c.ledger().outcome.purposes[0].status == "refused"


def test_an_objection_during_the_joined_notice_is_decided_at_the_switch() -> None:
    objectable = replace(DOCUMENTATION, objection=Objection("3"))
    c = Call(plan(objectable, TRAINING))
    assert c.plays[0].then == QUESTION
    c.started()
    c.digit("3")  # noted: the notice plays on
    c.switched()
    c.digit("1")
    prepare = next(a for a in c.actions if isinstance(a, PrepareRecording))
    assert [(o.purpose, o.status) for o in prepare.outcome.purposes] == [
        ("documentation", "objected"),
        ("training", "given"),
    ]
    assert prepare.purposes == ("training",)


def test_a_notice_failing_before_the_switch_is_notice_failed_and_the_playlist_stopped() -> None:
    c = Call(plan(DOCUMENTATION, TRAINING))
    c.started()
    out = c.feed(PlaybackFailed(c.pid, at()))
    assert out[:3] == [
        StopPlayback(c.pid),
        SetResult("error", "notice_failed", False),
        ContinueDialplan(),
    ]
    outcome = c.ledger().outcome
    assert not outcome.notices[0].played and outcome.recorded_purposes == ()
    assert {o.status for o in outcome.purposes} == {"not_recorded", "refused"}


def test_a_question_failing_after_the_switch_refuses_that_purpose_only() -> None:
    c = Call(plan(DOCUMENTATION, TRAINING))
    c.started(), c.switched()
    out = c.feed(PlaybackFailed(c.pid, at()))
    assert StopPlayback(c.pid) not in out
    prepare = next(a for a in out if isinstance(a, PrepareRecording))
    assert prepare.outcome.notices[0].played
    assert [(o.purpose, o.status) for o in prepare.outcome.purposes] == [
        ("documentation", "not_required"),
        ("training", "refused"),
    ]


def test_a_playlist_ending_without_its_switch_reported_counts_both_as_played() -> None:
    c = Call(plan(TRAINING))
    c.started()
    assert c.finished() == [StartTimer("1764900000.1-t2", 5.0)]
    c.digit("1")
    prepare = next(a for a in c.actions if isinstance(a, PrepareRecording))
    assert prepare.outcome.notices[0].played and prepare.purposes == ("training",)


@pytest.mark.parametrize("when", ["notice", "question"])
def test_hangup_during_a_playlist_records_nothing(when: str) -> None:
    c = Call(plan(DOCUMENTATION, TRAINING))
    c.started()
    if when == "question":
        c.switched()
    out = c.feed(CallerHungUp(at()))
    assert [type(a) for a in out] == [WriteLedger] and c.machine.state is State.ENDED
    outcome = c.ledger().outcome
    assert outcome.notices[0].played is (when == "question")
    assert outcome.recorded_purposes == ()
    training = outcome.purposes[1]
    assert training.status == "refused" and training.reason == "hangup"
    assert (training.question_started_at is not None) is (when == "question")


def test_an_invalid_key_after_the_switch_stops_it_and_plays_the_retry_alone() -> None:
    c = Call(plan(TRAINING))
    c.started(), c.switched()
    joined = c.pid
    out = c.digit("7")
    assert out == [StopPlayback(joined), PlayPrompt(c.pid, RETRY)]
    c.started(), c.finished()
    c.digit("1")
    prepare = next(a for a in c.actions if isinstance(a, PrepareRecording))
    assert prepare.outcome.purposes[0].attempts == 2


def test_only_the_last_of_several_notices_is_joined() -> None:
    c = Call(plan(TRAINING, notices=2))
    assert c.plays[0].then is None
    c.started()
    assert c.finished() == [PlayPrompt(c.pid, prompt("notice1"), QUESTION)]


def test_only_the_first_question_is_joined_and_the_next_one_plays_alone() -> None:
    c = Call(plan(TRAINING, QUALITY))
    assert c.plays[0].then == QUESTION
    c.started(), c.switched()
    out = c.digit("1")
    assert out == [StopPlayback(c.plays[0].playback_id), PlayPrompt(c.pid, QUALITY_QUESTION)]
    c.started(), c.finished()
    c.digit("3")
    prepare = next(a for a in c.actions if isinstance(a, PrepareRecording))
    assert prepare.purposes == ("training", "quality")


def test_the_first_question_asked_is_joined_past_unasked_purposes() -> None:
    unsampled = replace(TRAINING, sampled=False)
    c = Call(plan(DOCUMENTATION, unsampled, QUALITY))
    assert c.plays[0].then == QUALITY_QUESTION
    c.started(), c.switched()
    assert c.machine.state is State.QUESTION
    c.digit("4")
    prepare = next(a for a in c.actions if isinstance(a, PrepareRecording))
    statuses = [(o.purpose, o.status) for o in prepare.outcome.purposes]
    assert statuses == [
        ("documentation", "not_required"),
        ("training", "not_sampled"),
        ("quality", "refused"),
    ]


def test_a_route_without_a_question_plays_its_notice_alone() -> None:
    c = Call(plan(DOCUMENTATION))
    assert c.plays[0].then is None
    c.started()
    assert isinstance(c.finished()[0], PrepareRecording)


@pytest.mark.parametrize(
    "spoil",
    [
        lambda p: replace(p, version=""),  # the file is missing: it would look played
        lambda p: replace(p, media=p.media + ",x"),  # a comma would split the media list
    ],
)
@pytest.mark.parametrize("which", ["notice", "question"])
def test_a_missing_file_or_a_comma_plays_the_notice_and_question_apart(
    spoil: Callable[[Prompt], Prompt], which: str
) -> None:
    notice, question = prompt("notice0"), QUESTION
    if which == "notice":
        notice = spoil(notice)
    else:
        question = spoil(question)
    training = PurposePlan("training", "6(1)(a)", 30, ConsentQuestion(question, RETRY))
    c = Call(CallPlan("support", "da", (notice,), (training,)))
    assert c.plays[0].then is None


def test_a_language_menu_plays_alone_and_the_chosen_notice_joins_its_question() -> None:
    english = CallPlan("support", "en", (prompt("notice0", "en"),), (asked("training", lang="en"),))
    menu = LanguageMenu(prompt("menu", "en"), (("8", english),), 2.0)
    c = Call(replace(plan(TRAINING), menu=menu))
    assert c.plays[0] == PlayPrompt(c.pid, prompt("menu", "en"))
    c.started()
    c.digit("8")
    assert c.plays[-1].prompt == prompt("notice0", "en")
    assert c.plays[-1].then == prompt("training.question", "en")
    c.started(), c.switched()
    c.digit("1")
    assert c.machine.plan.language == "en"
    prepare = next(a for a in c.actions if isinstance(a, PrepareRecording))
    assert prepare.purposes == ("training",)


def test_a_switch_of_another_playback_or_state_changes_nothing() -> None:
    c = Call(plan(TRAINING))
    assert c.feed(PlaybackContinuing("someone-else", at())) == []
    assert c.machine.state is State.NOTICE
    c.started(), c.switched()
    assert c.switched() == []  # a second switch of the same playback: nothing more to switch
    assert c.machine.state is State.QUESTION
    c.finished()
    assert c.machine.state is State.AWAITING_DIGIT
    assert c.feed(PlaybackContinuing(c.pid, at())) == []  # late, ignored
    c.feed(ConsentTimedOut([a for a in c.actions if isinstance(a, StartTimer)][-1].timer_id, at()))
    assert c.ledger().outcome.purposes[0].reason == "timeout"
