"""The party adapter (R1, R15 at transfers): hears who joins and leaves a recorded call.

A caller-side MixMonitor with option ``b`` records whatever bridge the caller's channel is in
next: after a blind or attended transfer, a forward, or a three-way call, that can be an agent
who never consented or a party outside the organisation. This adapter translates Asterisk's AMI
events (``BridgeEnter``, ``BridgeLeave``, ``DialBegin``, ``Hangup``, ``Hold``, ``Unhold``) for the pure
:class:`callconsent.parties.tracker.PartyTracker` and carries out its decisions:

* :class:`~callconsent.parties.tracker.StopAll`: AMI ``StopMixMonitor`` on the caller's channel at once,
  then the evidence (:meth:`EvidenceStore.stop_in_call`: ledger ``recording_stopped``, sidecar
  ``stopped_at``/``stop_reason: org_left_call``). For a dial to an outside channel this happens
  at ``DialBegin``, before the outside party can answer;
* :class:`~callconsent.parties.tracker.CheckAgent`: the new agent's standing consent (the registry, as
  at the first bridge); without it the consent purposes end (``agent_not_consenting``, or
  ``party_not_consenting`` for an outsider in a three-way call): a documentation recording goes
  on for documentation only, a training-only recording stops (``StopMixMonitor``).

* :class:`~callconsent.parties.hold.Mute` / :class:`~callconsent.parties.hold.Unmute` (R2): AMI
  ``MixMonitorMute`` (both directions) on the caller's channel at once on hold and parking, after
  ``ALONE_GRACE_SECONDS`` for a caller left alone in a bridge; then the pause goes into the
  sidecar's ``pauses`` (start, end, why, who held). A failed mute writes nothing; a failed unmute
  leaves the recording muted (fail safe).

Only calls this process records are watched (:meth:`EvidenceStore.recording_live`). Fail safe:
the stop is sent before anything is written, an unknown channel counts as external, and an AMI
or storage error is logged (the recording then ends at hangup at the latest). After an app
restart the bridges of calls already in progress are not known: they are not watched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from datetime import datetime
from typing import Any, Final, Literal, Protocol

import structlog

from callconsent.agents.registry import AgentConsent, AgentRegistryError, lookup
from callconsent.ami import AmiError, SyncEventHandler
from callconsent.clock import Clock, utc_now
from callconsent.evidence.paths import UNIQUEID_RE
from callconsent.parties import hold, stops, tracker

log = structlog.get_logger("callconsent.parties.adapter")

#: How long a caller must stay alone in a bridge before the recording is muted (R2): the caller
#: is alone for a moment when the agent's bridge forms and when it ends.
ALONE_GRACE_SECONDS: Final = 0.3


class PartyAmi(Protocol):
    async def stop_mixmonitor(self, channel: str) -> None: ...
    async def mixmonitor_mute(self, channel: str, *, mute: bool) -> None: ...


class PartyStore(Protocol):
    def live_recordings(self) -> list[str]: ...
    def recording_live(self, uniqueid: str) -> bool: ...
    async def stop_in_call(
        self,
        uniqueid: str,
        at: datetime,
        *,
        scope: stops.Scope,
        reason: str,
        party: Literal["internal", "external"],
        agent_id: str | None = None,
    ) -> stops.Stop: ...
    async def record_pause(
        self, uniqueid: str, at: datetime, pause: hold.Pause | None
    ) -> hold.PauseChange: ...


class AgentLookup(Protocol):
    def get(self, agent_id: str) -> AgentConsent | None: ...


class PartyWatch:
    def __init__(
        self,
        ami: PartyAmi,
        store: PartyStore,
        registry: AgentLookup,
        classifier: tracker.Classifier,
        *,
        clock: Clock = utc_now,
    ) -> None:
        self._ami = ami
        self._store = store
        self._registry = registry
        self._tracker = tracker.PartyTracker(classifier)
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()
        self._muted: set[str] = set()  # callers whose recording this adapter muted (R2)
        self._mute_locks: dict[str, asyncio.Lock] = {}

    def handlers(self) -> dict[str, SyncEventHandler]:
        """The AMI events this adapter needs (manager.conf ``read`` must include ``call``)."""
        return {
            "BridgeEnter": self.on_bridge_enter,
            "BridgeLeave": self.on_bridge_leave,
            "DialBegin": self.on_dial_begin,
            "Hangup": self.on_hangup,
            "Hold": self.on_hold,
            "Unhold": self.on_unhold,
        }

    # -- AMI events (synchronous, in Asterisk's order) ---------------------------------
    def on_bridge_enter(self, headers: dict[str, str]) -> None:
        bridge, uniqueid = headers.get("BridgeUniqueid", ""), headers.get("Uniqueid", "")
        if not bridge or not _valid(uniqueid):
            return
        for member in [uniqueid, *self._tracker.members(bridge)]:
            self._watch(member)
        holding = hold.is_holding_bridge(
            headers.get("BridgeTechnology", ""), headers.get("BridgeType", "")
        )
        self._act(
            self._tracker.enter(bridge, uniqueid, headers.get("Channel", ""), holding=holding)
        )

    def on_bridge_leave(self, headers: dict[str, str]) -> None:
        bridge, uniqueid = headers.get("BridgeUniqueid", ""), headers.get("Uniqueid", "")
        if bridge and _valid(uniqueid):
            self._act(self._tracker.leave(bridge, uniqueid))

    def on_dial_begin(self, headers: dict[str, str]) -> None:
        uniqueid = headers.get("Uniqueid", "")
        if not _valid(uniqueid):  # a dial from no channel (Originate): not a caller's
            return
        self._watch(uniqueid)
        self._act(self._tracker.dial(uniqueid, headers.get("DestChannel", "")))

    def on_hangup(self, headers: dict[str, str]) -> None:
        uniqueid = headers.get("Uniqueid", "")
        self._tracker.hangup(uniqueid)
        self._muted.discard(uniqueid)
        self._mute_locks.pop(uniqueid, None)

    def on_hold(self, headers: dict[str, str]) -> None:
        """Any channel put the call on hold (a SIP re-INVITE with sendonly/inactive, ...)."""
        uniqueid = headers.get("Uniqueid", "")
        if _valid(uniqueid):
            self._watch(uniqueid)
            self._act(self._tracker.hold(uniqueid, headers.get("Channel", "")))

    def on_unhold(self, headers: dict[str, str]) -> None:
        uniqueid = headers.get("Uniqueid", "")
        if _valid(uniqueid):
            self._act(self._tracker.unhold(uniqueid))

    def recover(
        self,
        snapshot: list[tuple[str, str, str]],
        callers: list[str],
        held: Collection[str] = (),
        paused: Collection[str] = (),
    ) -> None:
        """Watch ``callers`` again after a restart, from a channel listing, the channels on
        hold now and the callers whose recording is muted (see
        :meth:`callconsent.parties.tracker.PartyTracker.recover`)."""
        self._muted.update(c for c in paused if c in callers)
        self._act(self._tracker.recover(snapshot, callers, held, paused))

    def in_bridge(self, uniqueid: str) -> bool:
        """``uniqueid``'s channel is in a bridge now (a talking one, not a holding bridge)."""
        return self._tracker.in_bridge(uniqueid)

    async def watch_lost(self, *, ended: Collection[str] = ()) -> int:
        """AMI came back after a gap: whatever happened to the calls recording meanwhile (a
        transfer, an outside party) went unseen, so their recordings stop now (fail closed,
        reason ``watch_lost``); what was recorded before stays, as at any stop. The number of
        recordings stopped. Recordings cannot start while AMI is away (the ARI adapter's
        gate), so every recording live now was live through the gap. ``ended``: calls found
        gone meanwhile (their recording is being finalised): nothing to stop."""
        at, stopped = self._clock(), 0
        for caller in self._store.live_recordings():
            if caller in ended:
                continue
            bound = log.bind(call_id=caller, reason=tracker.WATCH_LOST)
            await self._stop_mixmonitor(caller, bound)
            try:
                done = await self._store.stop_in_call(
                    caller, at, scope="all", reason=tracker.WATCH_LOST, party="external"
                )
            except (OSError, ValueError) as exc:
                bound.error("storage_error", action="stop_in_call", error=str(exc))
                continue
            stopped += done.stops_recording
            self._tracker.hangup(caller)  # what it knew of this call is stale
        if stopped:
            log.warning("party_watch_lost", recordings_stopped=stopped)
        return stopped

    async def drain(self) -> None:
        """Wait for the actions in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- internals ----------------------------------------------------------------------
    def _watch(self, uniqueid: str) -> None:
        if not self._tracker.watching(uniqueid) and self._store.recording_live(uniqueid):
            self._act(self._tracker.watch(uniqueid))

    def _act(self, decisions: list[tracker.Decision]) -> None:
        if not decisions:
            return
        at = self._clock()
        loop = asyncio.get_running_loop()
        for decision in decisions:
            task = loop.create_task(self._carry_out(decision, at))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _carry_out(self, decision: tracker.Decision, at: datetime) -> None:
        try:
            if isinstance(decision, tracker.StopAll):
                await self._stop_all(decision, at)
            elif isinstance(decision, hold.Mute):
                await self._mute(decision, at)
            elif isinstance(decision, hold.Unmute):
                await self._unmute(decision.caller, at)
            else:
                await self._check_agent(decision, at)
        except Exception:  # an action's bug must not kill the AMI reader
            log.exception("party_action_failed", call_id=decision.caller)

    async def _stop_all(self, decision: tracker.StopAll, at: datetime) -> None:
        bound = log.bind(call_id=decision.caller, reason=decision.reason)
        await self._stop_mixmonitor(decision.caller, bound)  # first: within 1 s, before answer
        try:
            await self._store.stop_in_call(
                decision.caller, at, scope="all", reason=decision.reason, party=decision.party
            )
        except (OSError, ValueError) as exc:
            bound.error("storage_error", action="stop_in_call", error=str(exc))

    async def _mute(self, decision: hold.Mute, at: datetime) -> None:
        """Mute at once on hold and parking; a caller alone only after ``ALONE_GRACE_SECONDS``
        (at the bridge and at its end the caller is alone for a moment: no pause for that)."""
        pause: hold.Pause | None = decision.pause
        if decision.pause.reason == "alone":
            await asyncio.sleep(ALONE_GRACE_SECONDS)
            pause = self._tracker.pause_of(decision.caller)  # still paused? (and why now)
            at = self._clock()
        async with self._mute_locks.setdefault(decision.caller, asyncio.Lock()):
            if pause is None or decision.caller in self._muted:
                return
            bound = log.bind(call_id=decision.caller, reason=pause.reason, held_by=pause.held_by)
            try:  # first: the file must not take in the hold (within 1 s)
                await self._ami.mixmonitor_mute(decision.caller, mute=True)
            except AmiError as exc:  # nothing recording (yet): nothing to mute
                bound.warning("recording_mute_failed", error=str(exc))
                return
            self._muted.add(decision.caller)
            bound.info("recording_paused")
            await self._write_pause(decision.caller, at, pause, bound)

    async def _unmute(self, caller: str, at: datetime) -> None:
        async with self._mute_locks.setdefault(caller, asyncio.Lock()):
            if caller not in self._muted:
                return
            bound = log.bind(call_id=caller)
            try:
                await self._ami.mixmonitor_mute(caller, mute=False)
            except AmiError as exc:  # the recording stays muted: fail safe
                bound.warning("recording_unmute_failed", error=str(exc))
                return
            self._muted.discard(caller)
            bound.info("recording_resumed")
            await self._write_pause(caller, at, None, bound)

    async def _write_pause(
        self, caller: str, at: datetime, pause: hold.Pause | None, bound: Any
    ) -> None:
        try:
            await self._store.record_pause(caller, at, pause)
        except (OSError, ValueError) as exc:
            bound.error("storage_error", action="record_pause", error=str(exc))

    async def _check_agent(self, decision: tracker.CheckAgent, at: datetime) -> None:
        bound = log.bind(call_id=decision.caller, agent=decision.agent_id)
        kind: Literal["internal", "external"]
        if decision.external:
            reason, kind = tracker.PARTY_NOT_CONSENTING, "external"
            given = False
        else:
            reason, kind = tracker.AGENT_NOT_CONSENTING, "internal"
            given = await self._consents(decision.agent_id, bound)
        if given:
            bound.info("party_joined_consenting")
            return
        try:
            done = await self._store.stop_in_call(
                decision.caller,
                at,
                scope="consent",
                reason=reason,
                party=kind,
                agent_id=decision.agent_id,
            )
        except (OSError, ValueError) as exc:
            bound.error("storage_error", action="stop_in_call", error=str(exc))
            return
        if done.stops_recording:
            await self._stop_mixmonitor(decision.caller, bound)

    async def _consents(self, agent_id: str | None, bound: Any) -> bool:
        if agent_id is None:
            return False
        try:
            record = await lookup(self._registry, agent_id)
        except (AgentRegistryError, OSError) as exc:
            bound.error("agent_registry_unreadable", error=str(exc))
            return False
        return record is not None and record.given

    async def _stop_mixmonitor(self, caller: str, bound: Any) -> None:
        try:
            await self._ami.stop_mixmonitor(caller)
        except AmiError as exc:  # e.g. nothing was recording yet; hangup ends it at the latest
            bound.warning("party_stop_failed", error=str(exc))
        else:
            bound.info("party_recording_stopped")


def _valid(uniqueid: str) -> bool:
    return bool(UNIQUEID_RE.fullmatch(uniqueid)) and ".." not in uniqueid
