"""The agent-consent rule (R15): which purposes wait for the agent, and what the recording becomes."""

from __future__ import annotations

import pytest

from callconsent import names
from callconsent.agents.rules import (
    agent_decided,
    bridge_variables,
    needs_agent,
    recording_start,
    whisper,
)


def test_only_training_needs_the_agents_consent() -> None:
    assert needs_agent("training")
    assert not needs_agent("documentation")
    assert not needs_agent("emergency_quality")


@pytest.mark.parametrize(
    ("recorded", "record_at", "now", "pending"),
    [
        ((), "", (), ()),
        (("documentation",), "hook", ("documentation",), ()),
        (("documentation", "training"), "hook", ("documentation",), ("training",)),
        (("training",), "bridge", (), ("training",)),
        (("training", "emergency_quality"), "hook", ("emergency_quality",), ("training",)),
    ],
)
def test_recording_start_splits_what_waits_for_the_agent(
    recorded: tuple[str, ...], record_at: str, now: tuple[str, ...], pending: tuple[str, ...]
) -> None:
    start = recording_start(recorded)
    assert (start.record_at, start.now, start.pending) == (record_at, now, pending)


def test_training_only_with_agent_consent_starts_the_recording_at_the_bridge() -> None:
    out = agent_decided(recording_start(("training",)), agent_given=True)
    assert (out.kept, out.dropped, out.start_recording, out.tombstone) == (
        ("training",),
        (),
        True,
        False,
    )
    assert (out.status, out.reason) == ("given", "agent_consent")


def test_training_only_without_agent_consent_is_a_tombstone() -> None:
    out = agent_decided(recording_start(("training",)), agent_given=False)
    assert (out.kept, out.dropped, out.start_recording, out.tombstone) == (
        (),
        ("training",),
        False,
        True,
    )
    assert (out.status, out.reason) == ("refused", "agent_refused")


def test_documentation_and_training_keeps_documentation_when_the_agent_refuses() -> None:
    out = agent_decided(recording_start(("documentation", "training")), agent_given=False)
    assert (out.kept, out.dropped, out.start_recording, out.tombstone) == (
        ("documentation",),
        ("training",),
        False,
        False,
    )


def test_documentation_and_training_with_agent_consent_needs_no_new_recording() -> None:
    out = agent_decided(recording_start(("documentation", "training")), agent_given=True)
    assert out.kept == ("documentation", "training") and not out.start_recording


def test_an_unknown_decision_is_a_refusal_with_its_own_reason() -> None:
    out = agent_decided(recording_start(("training",)), agent_given=False, reason="agent_unknown")
    assert (out.status, out.reason, out.tombstone) == ("refused", "agent_unknown", True)


@pytest.mark.parametrize(
    ("now", "kept", "expected"),
    [
        (("documentation",), True, "documentation_training"),
        (("documentation",), False, "documentation"),
        ((), True, "training"),
        ((), False, "none"),
    ],
)
def test_whisper_says_what_is_recorded(now: tuple[str, ...], kept: bool, expected: str) -> None:
    assert whisper(now, kept) == expected
    assert expected in names.WHISPER_PROMPTS


def test_bridge_variables_set_record_at_first_and_inherit_what_the_gosub_needs() -> None:
    variables = bridge_variables(("training",), "1764.1", "/p/da")
    assert variables == [
        ("CALLCONSENT_RECORD_AT", "bridge"),
        ("__CALLCONSENT_CALLER", "1764.1"),
        ("__CALLCONSENT_AGENT_PURPOSES", "training"),
        ("__CALLCONSENT_AGENT_WAIT", "2"),
        ("__CALLCONSENT_PURPOSES", ""),
        ("__CALLCONSENT_WHISPER_DIR", "/p/da"),
    ]


@pytest.mark.parametrize(("seconds", "value"), [(2.0, "2"), (4.0, "4"), (3.5, "3.5")])
def test_the_gosub_waits_as_long_as_the_config_says(seconds: float, value: str) -> None:
    variables = dict(bridge_variables(("training",), "1764.1", "/p/da", agent_wait=seconds))
    assert variables["__CALLCONSENT_AGENT_WAIT"] == value


def test_bridge_variables_for_a_call_that_waits_for_no_agent() -> None:
    assert bridge_variables(("documentation",), "1764.1", "") == []
    assert bridge_variables(("documentation",), "1764.1", "/p/da") == [
        ("__CALLCONSENT_CALLER", "1764.1"),
        ("__CALLCONSENT_PURPOSES", "documentation"),
        ("__CALLCONSENT_WHISPER_DIR", "/p/da"),
    ]
