"""Who takes part in a recorded call (R1, R15 at transfers): the pure tracker and classifier."""

from __future__ import annotations

import pytest

from callconsent.parties.hold import Mute, Unmute
from callconsent.parties.tracker import (
    CheckAgent,
    Classifier,
    Decision,
    PartyTracker,
    StopAll,
    agent_id_of,
    channel_base,
)

INTERNAL = Classifier(("PJSIP/agent*", "Local/agent@lab-agent"))
CALLER, AGENT1, AGENT2, OUTSIDE = "1764000000.1", "1764000000.2", "1764000000.3", "1764000000.4"
A1, A2 = "PJSIP/agent1-0000000a", "PJSIP/agent2-0000000b"
TRUNK = "PJSIP/trunk-0000000c"


def party(decisions: list[Decision]) -> list[Decision]:
    """The party decisions (R1), without the recording's pauses (R2: tested in test_hold)."""
    return [d for d in decisions if not isinstance(d, Mute | Unmute)]


def bridged(tracker: PartyTracker, bridge: str, *members: tuple[str, str]) -> list[Decision]:
    out: list[Decision] = []
    for uniqueid, channel in members:
        out.extend(tracker.enter(bridge, uniqueid, channel))
    return party(out)


@pytest.fixture
def tracker() -> PartyTracker:
    t = PartyTracker(INTERNAL)
    t.watch(CALLER)
    return t


@pytest.mark.parametrize(
    ("channel", "base"),
    [
        ("PJSIP/agent1-0000000a", "PJSIP/agent1"),
        ("Local/agent@lab-agent-00000003;1", "Local/agent@lab-agent"),
        ("Local/agent@lab-agent-00000003;2", "Local/agent@lab-agent"),
        ("PJSIP/my-trunk-000001ff", "PJSIP/my-trunk"),
        ("PJSIP/agent1", "PJSIP/agent1"),  # no suffix: as it is
    ],
)
def test_channel_base_strips_only_asterisks_unique_suffix(channel: str, base: str) -> None:
    assert channel_base(channel) == base


@pytest.mark.parametrize(
    ("channel", "internal"),
    [
        (A1, True),
        ("Local/agent@lab-agent-00000003;1", True),
        (TRUNK, False),
        ("Local/0045123@outbound-00000003;1", False),
        ("", False),  # unreadable: external (fail safe)
        ("agent1", False),  # no technology
        ("pjsip/agent1-0000000a", False),  # patterns are case-sensitive, as Asterisk's names
    ],
)
def test_only_channels_matching_the_internal_patterns_are_internal(
    channel: str, internal: bool
) -> None:
    assert INTERNAL.is_internal(channel) is internal


def test_agent_id_is_the_endpoint_name_and_hostile_names_are_none() -> None:
    assert agent_id_of(A2) == "agent2"
    assert agent_id_of("Local/agent@lab-agent-00000003;1") == "agent"
    assert agent_id_of("PJSIP/a$b-0000000a") is None
    assert agent_id_of("garbage") is None


def test_the_first_agent_is_accepted_without_a_second_check(tracker: PartyTracker) -> None:
    assert bridged(tracker, "b1", (CALLER, "PJSIP/caller-1"), (AGENT1, A1)) == []
    assert bridged(PartyTracker(INTERNAL), "b1", (AGENT1, A1), (CALLER, "x")) == []


def test_a_transfer_to_another_agent_asks_for_that_agents_consent(tracker: PartyTracker) -> None:
    bridged(tracker, "b1", (CALLER, "PJSIP/caller-1"), (AGENT1, A1))
    assert party(tracker.leave("b1", CALLER)) == []  # blind transfer: the caller leaves the bridge
    assert tracker.dial(CALLER, A2) == []  # an internal dial decides nothing yet
    assert bridged(tracker, "b2", (CALLER, "PJSIP/caller-1"), (AGENT2, A2)) == [
        CheckAgent(CALLER, A2, "agent2")
    ]
    assert bridged(tracker, "b2", (AGENT2, A2)) == []  # once per party


def test_a_dial_to_an_outside_channel_stops_everything_before_it_answers(
    tracker: PartyTracker,
) -> None:
    bridged(tracker, "b1", (CALLER, "PJSIP/caller-1"), (AGENT1, A1))
    tracker.leave("b1", CALLER)
    assert tracker.dial(CALLER, TRUNK) == [StopAll(CALLER, "external")]
    assert bridged(tracker, "b2", (CALLER, "x"), (OUTSIDE, TRUNK)) == []  # decided once


def test_an_outside_party_bridged_with_the_caller_alone_stops_everything(
    tracker: PartyTracker,
) -> None:
    bridged(tracker, "b1", (CALLER, "PJSIP/caller-1"), (AGENT1, A1))
    tracker.leave("b1", CALLER)  # attended transfer: the caller moves to the outside party
    assert bridged(tracker, "b2", (OUTSIDE, TRUNK), (CALLER, "x")) == [StopAll(CALLER, "external")]


def test_the_last_agent_leaving_a_three_way_call_stops_everything(tracker: PartyTracker) -> None:
    first = bridged(tracker, "b1", (CALLER, "c"), (AGENT1, A1), (OUTSIDE, TRUNK))
    assert first == [CheckAgent(CALLER, TRUNK, None, external=True)]  # an outsider joined
    assert party(tracker.leave("b1", AGENT1)) == [StopAll(CALLER, "external")]


def test_an_agent_hanging_up_alone_with_the_caller_decides_nothing(tracker: PartyTracker) -> None:
    bridged(tracker, "b1", (CALLER, "c"), (AGENT1, A1))
    assert party(tracker.leave("b1", AGENT1)) == []  # the call ends; nothing more is heard
    tracker.hangup(CALLER)
    assert not tracker.watching(CALLER)
    assert tracker.members("b1") == {}


def test_an_outside_first_party_stops_everything(tracker: PartyTracker) -> None:
    assert bridged(tracker, "b1", (CALLER, "c"), (OUTSIDE, TRUNK)) == [StopAll(CALLER, "external")]


def test_calls_that_are_not_watched_get_no_decisions() -> None:
    tracker = PartyTracker(INTERNAL)
    assert bridged(tracker, "b1", (CALLER, "c"), (OUTSIDE, TRUNK)) == []
    assert tracker.dial(CALLER, TRUNK) == []


def test_watching_a_call_already_bridged_accepts_its_party() -> None:
    tracker = PartyTracker(INTERNAL)
    bridged(tracker, "b1", (CALLER, "c"), (AGENT1, A1))
    assert tracker.watch(CALLER) == []
    assert bridged(tracker, "b1", (AGENT2, A2)) == [CheckAgent(CALLER, A2, "agent2")]


def test_entering_a_new_bridge_leaves_the_old_one(tracker: PartyTracker) -> None:
    bridged(tracker, "b1", (CALLER, "c"), (AGENT1, A1))
    bridged(tracker, "b2", (CALLER, "c"))  # moved without a BridgeLeave first
    assert tracker.members("b1") == {AGENT1: A1}
    assert tracker.members("b2") == {CALLER: "c"}


LOCAL1, LOCAL2 = "Local/0070@agents-00000000;1", "Local/0070@agents-00000000;2"
L1, L2 = "1764000000.8", "1764000000.9"


def _consulting(tracker: PartyTracker, target: tuple[str, str]) -> None:
    """Attended transfer: agent1 leaves the caller's bridge to consult the target, reached
    through a Local channel whose ;2 half is bridged with the target."""
    bridged(tracker, "b1", (CALLER, "c"), (AGENT1, A1))
    tracker.leave("b1", AGENT1)
    bridged(tracker, "b2", (L1, LOCAL1), (AGENT1, A1))
    bridged(tracker, "b3", target, (L2, LOCAL2))


def test_attended_transfer_outside_through_a_local_channel_stops_at_the_hand_over(
    tracker: PartyTracker,
) -> None:
    _consulting(tracker, (OUTSIDE, TRUNK))
    tracker.leave("b2", L1)
    assert party(tracker.enter("b1", L1, LOCAL1)) == [StopAll(CALLER, "external")]


def test_attended_transfer_to_an_agent_through_a_local_channel_asks_that_agent_once(
    tracker: PartyTracker,
) -> None:
    _consulting(tracker, (AGENT2, A2))
    tracker.leave("b2", L1)
    assert party(tracker.enter("b1", L1, LOCAL1)) == [CheckAgent(CALLER, A2, "agent2")]
    tracker.leave("b1", L1)  # Asterisk swaps the Local channel for the agent
    assert party(tracker.enter("b1", AGENT2, A2)) == []


def test_a_local_channel_whose_other_half_is_not_bridged_counts_as_external(
    tracker: PartyTracker,
) -> None:
    bridged(tracker, "b1", (CALLER, "c"), (AGENT1, A1))
    tracker.leave("b1", AGENT1)
    assert party(tracker.enter("b1", L1, LOCAL1)) == [StopAll(CALLER, "external")]
