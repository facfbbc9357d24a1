"""The agent-consent rule (R15): which purposes need the answering agent's consent, and what a
call's recording becomes once the agent has (or has not) consented. Pure: no I/O, no clock.

A training recording needs the caller's yes AND the agent's standing consent (S002: "Samtykke skal
derfor opnås fra alle parter i samtalen"). Documentation (6(1)(c)/(e)/(f)) and the emergency
exception rest on the organisation's own basis and need no agent consent.

The caller's side is decided first (the consent machine); this module then splits the purposes to
record into those recorded whatever the agent says and those that wait for the agent:

    start = recording_start(("documentation", "training"))
    start.record_at == "hook"; start.pending == ("training",)
    after = agent_decided(start, agent_given=False)
    after.kept == ("documentation",); after.dropped == ("training",); after.tombstone is False
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from callconsent import names

#: Purposes that need the answering agent's own consent besides the caller's.
#: An agent id as the queue names its member (and the registry stores it).
AGENT_ID_RE: Final = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
AGENT_CONSENT_PURPOSES: Final = frozenset({"training"})

RecordAt = Literal["hook", "bridge", ""]
Whisper = Literal["documentation", "documentation_training", "training", "none"]


def needs_agent(purpose: str) -> bool:
    return purpose in AGENT_CONSENT_PURPOSES


@dataclass(frozen=True, slots=True)
class RecordingStart:
    """Where a call's recording starts, decided when the caller's consent flow ends.

    ``record_at``: ``hook`` (MixMonitor in the hook for ``now``), ``bridge`` (nothing until an
    agent consents) or ``""`` (nothing is recorded). ``pending``: purposes waiting for the agent.
    """

    record_at: RecordAt
    now: tuple[str, ...]
    pending: tuple[str, ...]

    @property
    def waits_for_agent(self) -> bool:
        return bool(self.pending)


def recording_start(recorded_purposes: Iterable[str]) -> RecordingStart:
    purposes = tuple(recorded_purposes)
    now = tuple(p for p in purposes if not needs_agent(p))
    pending = tuple(p for p in purposes if needs_agent(p))
    if now:
        return RecordingStart(names.RECORD_AT_HOOK, now, pending)
    if pending:
        return RecordingStart(names.RECORD_AT_BRIDGE, (), pending)
    return RecordingStart("", (), ())


def bridge_variables(
    recorded_purposes: Iterable[str],
    caller_uniqueid: str,
    whisper_dir: str,
    *,
    agent_wait: float = names.AGENT_WAIT_SECONDS,
) -> list[tuple[str, str]]:
    """The channel variables the app sets on the caller, before the result variables: where the
    recording starts and, inherited (``__``) by the queue member's channel, what the agent gosub
    needs. ``CALLCONSENT_RECORD_AT`` comes first, so a failure part-way never lets the hook
    record a call that waits for the agent (the result is then never set: "unavailable")."""
    start = recording_start(recorded_purposes)
    out: list[tuple[str, str]] = []
    if start.waits_for_agent:
        out += [
            (names.VAR_RECORD_AT, start.record_at),
            ("__" + names.VAR_CALLER, caller_uniqueid),
            ("__" + names.VAR_AGENT_PURPOSES, ",".join(start.pending)),
            ("__" + names.VAR_AGENT_WAIT, f"{agent_wait:g}"),
        ]
    if whisper_dir:
        if not start.waits_for_agent:  # for the agent gosub's log line
            out.append(("__" + names.VAR_CALLER, caller_uniqueid))
        out += [
            ("__" + names.VAR_PURPOSES, ",".join(start.now)),
            ("__" + names.VAR_WHISPER_DIR, whisper_dir),
        ]
    return out


@dataclass(frozen=True, slots=True)
class AgentOutcome:
    """What the recording becomes after the agent's decision.

    ``kept``: purposes the recording is now for; ``dropped``: purposes removed (the agent refused,
    or no decision arrived); ``start_recording``: the app must start MixMonitor now (nothing was
    started in the hook); ``tombstone``: nothing is left to record, the sidecar becomes a
    tombstone; ``reason``: ``agent_consent`` (given), ``agent_refused`` or the given reason.
    """

    kept: tuple[str, ...]
    dropped: tuple[str, ...]
    start_recording: bool
    tombstone: bool
    reason: str

    @property
    def status(self) -> Literal["given", "refused"]:
        return "given" if not self.dropped else "refused"


def agent_decided(
    start: RecordingStart, *, agent_given: bool, reason: str | None = None
) -> AgentOutcome:
    """The recording after the agent's decision. ``agent_given`` must already combine every
    check (AstDB flag seen by the dialplan AND the registry): anything unsure is False."""
    if agent_given and start.pending:
        return AgentOutcome(
            kept=start.now + start.pending,
            dropped=(),
            start_recording=start.record_at == names.RECORD_AT_BRIDGE,
            tombstone=False,
            reason=reason or "agent_consent",
        )
    return AgentOutcome(
        kept=start.now,
        dropped=start.pending,
        start_recording=False,
        tombstone=not start.now,
        reason=reason or "agent_refused",
    )


def whisper(now: Iterable[str], agent_purposes_kept: bool) -> Whisper:
    """The whisper the agent hears (requirements text 12), from what is actually recorded.

    The dialplan (``[callconsent-agent]``) applies the same rule; this is its reference.
    """
    docs = any(True for _ in now)
    if docs and agent_purposes_kept:
        return "documentation_training"
    if docs:
        return "documentation"
    if agent_purposes_kept:
        return "training"
    return "none"
