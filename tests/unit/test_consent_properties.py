"""Property tests of the consent machine (issue 11): ~2,000 random event sequences over ten
plans; never a recording without an active consent digit or a purpose that needs none (after
every notice, no objection), every call ends in a terminal state, nothing is left stuck.
bench/consent_properties.py runs 100,000 of the same walks."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callconsent.consent import CallPlan, ContinueDialplan, PrepareRecording, SetResult
from tests.support import consent_walk
from tests.support.consent_walk import DIGITS, KINDS, PLANS, walk

STEPS = st.lists(st.tuples(st.sampled_from(KINDS), st.sampled_from(DIGITS)), max_size=40)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=st.sampled_from(PLANS), steps=STEPS, playlists=st.booleans())
def test_no_sequence_records_without_a_basis_and_every_call_ends(
    plan: CallPlan, steps: list[tuple[str, str]], playlists: bool
) -> None:
    w = walk(plan, steps, playlists=playlists)
    assert w.violations == [], (w.violations, [type(e).__name__ for e in w.fed])


def test_the_walk_reports_a_recording_without_a_digit_when_one_is_forced() -> None:
    """The property check itself can fail: training recorded after a timeout (the outcome
    altered after the fact) is reported."""
    w = walk(PLANS[0], [("start", "1"), ("finish", "1"), ("timeout", "1")])
    assert w.violations == [] and w.recorded == ()
    assert w.machine.outcome is not None
    w.actions.append(PrepareRecording(replace(w.machine.outcome, recorded_purposes=("training",))))
    consent_walk.check_recording(w)
    assert "recorded_without_digit:training" in w.violations


def test_a_yes_after_the_question_started_is_recorded_and_keeps_every_property() -> None:
    w = walk(
        PLANS[1],
        [("start", ""), ("finish", ""), ("start", ""), ("digit", "1"), ("prepared", "")],
    )
    assert w.violations == [] and w.recorded == ("documentation", "training")


def test_a_yes_after_a_playlists_switch_to_the_question_is_recorded() -> None:
    steps = [("start", ""), ("continue", ""), ("digit", "1"), ("prepared", "")]
    w = walk(PLANS[1], steps, playlists=True)
    assert w.violations == [] and w.recorded == ("documentation", "training")


def test_the_walk_reports_a_yes_counted_before_a_playlists_switch() -> None:
    """The property check knows a joined playback's start is the notice's: a recording made
    on a yes pressed before the switch is reported."""
    w = walk(PLANS[0], [("start", ""), ("digit", "1")], playlists=True)
    assert w.violations == [] and w.recorded == ()
    assert w.machine.outcome is not None
    w.actions.append(PrepareRecording(replace(w.machine.outcome, recorded_purposes=("training",))))
    consent_walk.check_recording(w)
    assert "recorded_without_digit:training" in w.violations


def test_the_walk_reports_a_call_continued_recorded_before_its_ledger_line_was_durable() -> None:
    steps = [("start", ""), ("finish", ""), ("start", ""), ("digit", "1"), ("prepared", "")]
    w = walk(PLANS[1], steps)  # the line is never answered: the caller hangs up meanwhile
    assert w.violations == [] and w.result == SetResult("given", "digit", recording=True)
    w.actions.append(ContinueDialplan())
    consent_walk.check_recording(w)
    assert "recording_before_ledger" in w.violations


def test_the_walk_reports_a_result_set_twice_unless_a_recording_is_undone() -> None:
    steps = [("start", ""), ("finish", ""), ("start", ""), ("digit", "2")]
    w = walk(PLANS[0], steps)
    assert w.violations == [] and w.result == SetResult("refused", "digit", recording=False)
    w.actions.append(SetResult("refused", "digit", recording=False))
    consent_walk.check_recording(w)
    assert "twice" in w.violations
