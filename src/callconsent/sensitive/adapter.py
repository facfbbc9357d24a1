"""The sensitive-flag adapter (R22): hears the agent's flag code and finishes the evidence.

The agent presses the flag code (default ``*7``) while bridged. features.conf runs
``[callconsent-sensitive]`` on the agent's channel (the agent gosub enabled it there), which
beeps to the agent only and raises::

    UserEvent(CallconsentSensitive,Caller: <caller uniqueid>,Agent: <agent id>,At: <UTC time>)

This adapter applies the flag to the call's evidence (:meth:`EvidenceStore.flag_sensitive`; the
rules are :func:`callconsent.sensitive.rules.flag`). When the recording held only consent purposes
(training) it is deleted, and the app stops the caller's MixMonitor (AMI ``StopMixMonitor``):
the dialplan on the agent's channel cannot stop a recording on the caller's. Documentation keeps
recording, now ``restricted``. Nothing is played to the caller.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import structlog

from callconsent.agents.rules import AGENT_ID_RE
from callconsent.ami import AmiError
from callconsent.clock import Clock, utc_now
from callconsent.evidence.fsio import parse_stamp
from callconsent.evidence.paths import UNIQUEID_RE
from callconsent.sensitive import rules as sensitive

log = structlog.get_logger("callconsent.sensitive.adapter")


class FlagAmi(Protocol):
    async def stop_mixmonitor(self, channel: str) -> None: ...


class FlagStore(Protocol):
    async def flag_sensitive(
        self, uniqueid: str, at: datetime, *, agent_id: str | None
    ) -> sensitive.Flagging: ...


class SensitiveFlagHandler:
    def __init__(self, ami: FlagAmi, store: FlagStore, *, clock: Clock = utc_now) -> None:
        self._ami = ami
        self._store = store
        self._clock = clock

    async def on_flag_event(self, headers: dict[str, str]) -> None:
        """One ``CallconsentSensitive`` UserEvent (AMI headers, any case)."""
        h = {k.lower(): v for k, v in headers.items()}
        await self.flag(
            h.get("caller", "").strip(), h.get("agent", "").strip(), self._when(h.get("at", ""))
        )

    async def flag(self, caller: str, agent: str, at: datetime) -> sensitive.Flagging | None:
        """Apply the agent's flag to call ``caller``; None when it could not be applied."""
        agent_id = agent if AGENT_ID_RE.fullmatch(agent) else None
        bound = log.bind(call_id=caller, agent=agent_id)
        if not UNIQUEID_RE.fullmatch(caller) or ".." in caller:
            bound.warning("sensitive_event_invalid")
            return None
        try:
            done = await self._store.flag_sensitive(caller, at, agent_id=agent_id)
        except (OSError, ValueError) as exc:
            bound.error("storage_error", action="flag_sensitive", error=str(exc))
            return None
        if done.outcome == "deleted":  # training only: its recording must not go on
            try:
                await self._ami.stop_mixmonitor(caller)
            except AmiError as exc:  # the audio is deleted already; the rest ends at hangup
                bound.warning("sensitive_stop_failed", error=str(exc))
        return done

    def _when(self, stamp: str) -> datetime:
        """The dialplan's UTC time of the key press; now when it is missing or malformed."""
        try:
            return parse_stamp(stamp.strip())
        except (ValueError, TypeError):
            return self._clock()
