"""The agent-bridge adapter (R15): hears the Queue member gosub and acts on the agent's consent.

The gosub (``[callconsent-agent]`` in ``dialplan/callconsent.conf``) runs on the answering agent's
channel before the bridge. When the call has purposes that need the agent's consent it raises::

    UserEvent(CallconsentAgent,Caller: <caller uniqueid>,Agent: <member name>,Flag: <0|1>)

(AMI adds the agent channel's own ``Uniqueid``), then waits up to ``CALLCONSENT_AGENT_WAIT``
seconds (``agent_consent.answer_wait_seconds``, default 2) for the app to set
``CALLCONSENT_AGENT_RESULT`` on the agent channel, and whispers what is recorded.

This adapter decides nothing itself: the agent counts as consenting only when the AstDB flag the
dialplan read is ``1`` AND the registry says ``given`` (a failed mirror never records); the rule
for what the recording becomes is :func:`callconsent.agents.rules.agent_decided`, applied to the
evidence by the store. For a training-only call it then starts MixMonitor on the CALLER's channel
(option ``b``: bridged audio only, and the caller's ``*9`` can stop it). Fail closed: any error
leaves the agent-consent purposes unrecorded; the call itself is never touched.

The whisper never says less than what is recorded: when the gosub's wait ends before the app's
answer (a loaded machine, the app away), it whispers "not for training" and raises
``UserEvent(CallconsentAgentLate,Caller: ...)``; whatever the app decided meanwhile, it then
refuses the agent-consent purposes (``agent_not_told``) and stops the recording if nothing else
is recorded (:meth:`BridgeHandler.on_agent_late`, after the call's decision has run to its end).
For a later agent of a call already recorded with an earlier agent's consent (transferred back
into a queue) only the time from then on is at stake: the consent purposes end there, as when
an agent without standing consent joins, and what was recorded before stays.
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime
from typing import Any, Final, Literal, Protocol

import structlog

from callconsent import metrics, names
from callconsent.agents.evidence import NOT_TOLD, AgentEvidence, NotTold
from callconsent.agents.registry import AgentConsent, AgentRegistryError, lookup
from callconsent.agents.rules import AGENT_ID_RE, AgentOutcome
from callconsent.ami import AmiError, AmiOps
from callconsent.clock import Clock, utc_now
from callconsent.parties.stops import Scope, Stop

log = structlog.get_logger("callconsent.agents.bridge")

_UNIQUEID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: MixMonitor options: ONE argument, ``b`` (bridged audio only) + ``i(VAR)`` (its id, for *9).
MIXMONITOR_OPTIONS: Final = f"bi({names.VAR_MIXMONITOR_ID})"
#: At most this many later agents' channels are remembered for a late event (oldest dropped: a
#: late event follows its agent's within seconds; one that finds nothing refuses it all).
LATER_AGENTS_KEPT: Final = 1024


class BridgeAmi(AmiOps, Protocol):
    async def stop_mixmonitor(self, channel: str) -> None: ...


class AgentStore(Protocol):
    """The part of :class:`callconsent.store.EvidenceStore` this adapter uses."""

    def waiting_for_agent(self, uniqueid: str) -> bool: ...
    def recording_live(self, uniqueid: str) -> bool: ...
    async def live_purposes(self, uniqueid: str) -> tuple[bool, bool]: ...
    async def agent_decided(
        self, uniqueid: str, agent: AgentEvidence, *, given: bool, reason: str | None = None
    ) -> tuple[AgentOutcome, str] | None: ...
    async def agent_recording_failed(self, uniqueid: str, at: datetime, reason: str) -> None: ...
    async def agent_not_told(self, uniqueid: str, at: datetime) -> NotTold: ...
    async def stop_in_call(
        self,
        uniqueid: str,
        at: datetime,
        *,
        scope: Scope,
        reason: str,
        party: Literal["internal", "external"],
        agent_id: str | None = None,
    ) -> Stop: ...


class AgentLookup(Protocol):
    def get(self, agent_id: str) -> AgentConsent | None: ...


class BridgeHandler:
    def __init__(
        self, ami: BridgeAmi, store: AgentStore, registry: AgentLookup, *, clock: Clock = utc_now
    ) -> None:
        self._ami = ami
        self._store = store
        self._registry = registry
        self._clock = clock
        #: per caller uniqueid: set once its agent decision (evidence, MixMonitor, reply) ended
        self._deciding: dict[str, asyncio.Event] = {}
        #: agent channel -> (agent id, stop first), for the later agents of calls already decided
        self._later: dict[str, tuple[str, bool]] = {}

    async def on_agent_event(self, headers: dict[str, str]) -> None:
        """One ``CallconsentAgent`` UserEvent (AMI headers, any case)."""
        h = {k.lower(): v for k, v in headers.items()}
        caller, agent_channel = h.get("caller", ""), h.get("uniqueid", "")
        agent_id, flag = h.get("agent", ""), h.get("flag", "")
        bound = log.bind(call_id=caller, agent=agent_id, agent_channel=agent_channel)
        if not (_UNIQUEID_RE.fullmatch(caller) and _UNIQUEID_RE.fullmatch(agent_channel)):
            bound.warning("agent_event_invalid")
            return
        kept = False
        done = self._deciding[caller] = asyncio.Event()  # before any await: a late event waits
        try:
            kept = await self._decide(caller, agent_channel, agent_id, flag, bound)
        finally:  # whatever happened, let the agent's gosub go on at once with the truth
            try:
                await self._reply(agent_channel, kept, bound)
            finally:
                done.set()
                if self._deciding.get(caller) is done:
                    del self._deciding[caller]

    async def on_agent_late(self, headers: dict[str, str]) -> None:
        """One ``CallconsentAgentLate`` UserEvent: the gosub's wait ended before the app's
        answer, and it whispered that nothing is recorded for training. Once this call's
        decision has run to its end, its agent-consent purposes are refused and, if nothing
        else is recorded, the recording is deleted and stopped."""
        h = {k.lower(): v for k, v in headers.items()}
        caller = h.get("caller", "")
        bound = log.bind(call_id=caller, agent_channel=h.get("uniqueid", ""))
        if not _UNIQUEID_RE.fullmatch(caller):
            bound.warning("agent_event_invalid")
            return
        deciding = self._deciding.get(caller)
        if deciding is not None:  # the same AMI stream raised the decision's event first
            await deciding.wait()
        later = self._later.pop(h.get("uniqueid", ""), None)
        if later is not None:
            await self._later_not_told(caller, *later, bound)
            return
        try:
            done = await self._store.agent_not_told(caller, self._clock())
        except (OSError, ValueError) as exc:  # fail safe: no recording the evidence cannot match
            bound.error("storage_error", action="agent_not_told", error=str(exc))
            done = None
        if done is None or done.outcome == "deleted":
            await self._stop_late(caller, bound)

    def _remember_later(self, agent_channel: str, agent_id: str, *, stop_first: bool) -> None:
        self._later[agent_channel] = (agent_id, stop_first)
        while len(self._later) > LATER_AGENTS_KEPT:
            del self._later[next(iter(self._later))]

    async def _later_not_told(
        self, caller: str, agent_id: str, stop_first: bool, bound: Any
    ) -> None:
        """A later agent's gosub whispered "not for training": the consent purposes end now
        (reason ``agent_not_told``); what the earlier agent's consent recorded stays. A
        recording of consent purposes only stops before the evidence is written (``stop_first``,
        as the party watch stops): nothing of the agent told "not for training" goes on into it
        while the evidence waits for the disk."""
        if stop_first:
            await self._stop_late(caller, bound)
        try:
            done = await self._store.stop_in_call(
                caller,
                self._clock(),
                scope="consent",
                reason=NOT_TOLD,
                party="internal",
                agent_id=agent_id if AGENT_ID_RE.fullmatch(agent_id) else None,
            )
        except (OSError, ValueError) as exc:  # fail safe: stop what the evidence cannot match
            bound.error("storage_error", action="stop_in_call", error=str(exc))
            done = None
        if not stop_first and (done is None or done.stops_recording):
            await self._stop_late(caller, bound)

    async def _stop_late(self, caller: str, bound: Any) -> None:
        try:  # the agent's channel cannot stop the caller's recording: the app does
            await self._ami.stop_mixmonitor(caller)
        except AmiError as exc:  # the evidence says it already; the rest ends at hangup
            if exc.channel_gone:  # the call ended: nothing records
                bound.info("agent_not_told_call_ended")
            else:
                bound.warning("agent_not_told_stop_failed", error=str(exc))

    async def _decide(
        self, caller: str, agent_channel: str, agent_id: str, flag: str, bound: Any
    ) -> bool:
        if not self._store.waiting_for_agent(caller):
            if self._store.recording_live(caller):  # transferred back into a queue: a later
                return await self._later_agent(caller, agent_channel, agent_id, flag, bound)
            bound.info("agent_event_unexpected")  # unknown call (app restarted) or decided
            return False
        now, begun = self._clock(), time.monotonic()
        record = await self._lookup(agent_id, bound)
        given = flag == "1" and record is not None and record.given
        if (flag == "1") != (record is not None and record.given):
            bound.warning("agent_consent_mismatch", astdb_flag=flag, registry=_state(record))
        evidence = AgentEvidence(
            agent_id=agent_id if AGENT_ID_RE.fullmatch(agent_id) else None,
            consent=_state(record),
            changed_at=record.changed_at if record is not None else None,
            decided_at=now,
        )
        try:
            decided = await self._store.agent_decided(caller, evidence, given=given)
        except (OSError, ValueError) as exc:
            bound.error("storage_error", action="agent_decided", error=str(exc))
            return False
        if decided is None:
            return False
        outcome, audio = decided
        if outcome.start_recording:
            durable = time.monotonic()
            try:
                await self._ami.mixmonitor(caller, audio, MIXMONITOR_OPTIONS)
            except AmiError as exc:
                metrics.RECORDINGS_FAILED.inc()
                bound.error("agent_recording_failed", error=str(exc))
                try:
                    await self._store.agent_recording_failed(caller, self._clock(), "bridge_error")
                except (OSError, ValueError) as store_exc:
                    bound.error("storage_error", action="recording_failed", error=str(store_exc))
                return False
            metrics.RECORDINGS_STARTED.inc()
            done = time.monotonic()  # where the agent leg's time goes (bench/live.py)
            bound.info(
                "agent_recording_started",
                file=audio,
                decide_ms=round((durable - begun) * 1000, 1),  # the lookup, the evidence durable
                mixmonitor_ms=round((done - durable) * 1000, 1),  # AMI MixMonitor's round trip
            )
        return outcome.status == "given"

    async def _later_agent(
        self, caller: str, agent_channel: str, agent_id: str, flag: str, bound: Any
    ) -> bool:
        """A later agent of a call already decided (R1): nothing starts here (the party watch,
        :mod:`callconsent.parties.adapter`, ends training at the bridge when this agent has no
        standing consent); the answer only makes the whisper true: training goes on only if
        this agent consents and the recording still holds a consent purpose. The agent's
        channel is remembered for a late event (:meth:`on_agent_late`)."""
        record = await self._lookup(agent_id, bound)
        try:
            live, plain = await self._store.live_purposes(caller)
        except (OSError, ValueError) as exc:
            bound.error("storage_error", action="live_purposes", error=str(exc))
            self._remember_later(agent_channel, agent_id, stop_first=True)  # unknown: fail safe
            return False
        self._remember_later(agent_channel, agent_id, stop_first=live and not plain)
        kept = flag == "1" and record is not None and record.given and live
        bound.info("agent_event_later_agent", training=kept)
        return kept

    async def _lookup(self, agent_id: str, bound: Any) -> AgentConsent | None:
        if not AGENT_ID_RE.fullmatch(agent_id):
            return None
        try:
            return await lookup(self._registry, agent_id)
        except (AgentRegistryError, OSError) as exc:
            bound.error("agent_registry_unreadable", error=str(exc))
            return None

    async def _reply(self, agent_channel: str, kept: bool, bound: Any) -> None:
        value = "given" if kept else "refused"
        try:
            await self._ami.setvar(agent_channel, names.VAR_AGENT_RESULT, value)
        except AmiError as exc:  # the gosub times out and whispers "not for training"
            bound.warning("agent_reply_failed", error=str(exc))


def _state(record: AgentConsent | None) -> str:
    return "unknown" if record is None else record.consent
