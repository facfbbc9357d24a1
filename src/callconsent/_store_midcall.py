"""Mid-call changes to a live recording, for the evidence store (:mod:`callconsent.store`).

The caller withdraws (R16), the agent flags the call sensitive (R22), a party change stops the
recording or ends its consent purposes (R1), a hold pauses it (R2): each is decided by a pure
rule from the call's sidecar and applied here under the call's lock, ledger entry first.
:class:`callconsent.store.EvidenceStore` takes these methods from :class:`MidCallChanges`, and
holds the state they share with the recording's start and end (locks, live recordings, ledger).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

import structlog

from callconsent.agents import evidence as agent_evidence
from callconsent.agents.rules import RecordingStart
from callconsent.evidence import caller_keys, group_commit, paths, sidecar
from callconsent.evidence.file_worker import DirSyncs, FileWorker
from callconsent.evidence.known import KnownSidecars
from callconsent.evidence.paths import find_recording
from callconsent.keyed_locks import KeyedLocks
from callconsent.parties import hold, stops
from callconsent.sensitive import rules as sensitive
from callconsent.withdrawal import in_call


class _SidecarChange(Protocol):
    """What a pure mid-call rule (withdrawal, sensitive flag) decided for one sidecar."""

    @property
    def outcome(self) -> str: ...
    @property
    def doc(self) -> dict[str, Any] | None: ...
    @property
    def writes(self) -> bool: ...


_Change = TypeVar("_Change", bound=_SidecarChange)

log = structlog.get_logger("callconsent.store")


class MidCallChanges:
    """The mid-call half of :class:`callconsent.store.EvidenceStore` (which sets this state)."""

    _recordings_dir: Path
    _callers: caller_keys.Sealer
    _ledger: group_commit.GroupCommit
    _sidecars: KnownSidecars
    _files: FileWorker
    _recordings: dict[str, paths.RecordingPaths]
    _agent_waits: dict[str, RecordingStart]
    _locks: KeyedLocks

    if TYPE_CHECKING:  # the store's own: a recording's audio in the spool, its tombstone

        def _live(self, where: paths.RecordingPaths) -> paths.RecordingPaths: ...
        def _tombstone(self, where: paths.RecordingPaths, at: datetime, reason: str) -> None: ...

    async def withdraw_in_call(
        self, uniqueid: str, at: datetime, *, via: str, source: str = in_call.SOURCE
    ) -> in_call.Withdrawal:
        """The caller withdrew consent during the call (R16): every consent purpose ends, a
        purpose still waiting for the agent never starts; the recording is deleted (tombstone
        ``withdrawn``) or kept for what was recorded without consent. Ledger ``withdrawn`` first.
        A call this process does not know (it restarted) is found by its uniqueid."""
        done = await self.change_in_call(
            uniqueid,
            at,
            change=lambda doc: in_call.withdraw(doc, at=at),
            entry=lambda done, where: in_call.withdrawn_entry(
                uniqueid=uniqueid,
                at=at,
                withdrawal=done,
                recording=where.relative,
                via=via,
                source=source,
            ),
            tombstone_reason=sidecar.TombstoneReason.WITHDRAWN.value,
        )
        if done.outcome == "deleted":  # the recording is gone at the caller's wish: so is the
            await asyncio.to_thread(self._callers.forget, uniqueid)  # the ledger's caller too
        log.info(
            "withdrawn_in_call",
            call_id=uniqueid,
            outcome=done.outcome,
            via=via,
            withdrawn=list(done.withdrawn),
            kept=list(done.kept),
        )
        return done

    async def flag_sensitive(
        self, uniqueid: str, at: datetime, *, agent_id: str | None
    ) -> sensitive.Flagging:
        """The agent flagged the call as containing health/CPR data (R22): consent purposes
        leave the recording (the training pool), a purpose still waiting for the agent never
        starts; the rest is kept ``sensitive``/``restricted``, or the recording is deleted
        (tombstone ``sensitive``) when only consent purposes were recorded. Ledger
        ``flagged_sensitive`` first. Idempotent. A call this process does not know is found by
        its uniqueid."""
        done = await self.change_in_call(
            uniqueid,
            at,
            change=lambda doc: sensitive.flag(doc, at=at),
            entry=lambda done, where: sensitive.flagged_entry(
                uniqueid=uniqueid,
                agent_id=agent_id,
                at=at,
                flagging=done,
                recording=where.relative,
            ),
            tombstone_reason=sensitive.REASON,
        )
        log.info(
            "flagged_sensitive",
            call_id=uniqueid,
            agent=agent_id,
            outcome=done.outcome,
            removed=list(done.removed),
            kept=list(done.kept),
        )
        return done

    async def agent_not_told(self, uniqueid: str, at: datetime) -> agent_evidence.NotTold:
        """The agent's gosub gave up waiting for the app's answer and whispered that nothing is
        recorded for training (R15): the purposes the agent's consent added, or still waits
        for, are refused (``agent_not_told``); the recording is deleted (tombstone) when nothing
        recorded without the agent remains. Ledger ``agent_decision`` (refused) first. The
        caller of this stops MixMonitor when the outcome is ``deleted``."""
        done = await self.change_in_call(
            uniqueid,
            at,
            change=lambda doc: agent_evidence.not_told(doc, at=at),
            entry=lambda done, where: agent_evidence.decision_entry(
                uniqueid=uniqueid,
                agent=agent_evidence.AgentEvidence(done.agent_id, "unknown", None, at),
                status="refused",
                reason=agent_evidence.NOT_TOLD,
                purposes=done.refused,
                kept_purposes=done.kept,
                recording=None if done.outcome == "deleted" else where.relative,
            ),
            tombstone_reason=agent_evidence.NOT_TOLD,
        )
        log.warning(
            "agent_not_told",
            call_id=uniqueid,
            outcome=done.outcome,
            refused=list(done.refused),
            kept=list(done.kept),
        )
        return done

    async def stop_in_call(
        self,
        uniqueid: str,
        at: datetime,
        *,
        scope: stops.Scope,
        reason: str,
        party: Literal["internal", "external"],
        agent_id: str | None = None,
    ) -> stops.Stop:
        """A party change stops the recording or ends its consent purposes (R1; rules:
        :func:`callconsent.parties.stops.stop`). Ledger ``recording_stopped`` first, then the sidecar.
        The caller of this stops MixMonitor when ``stops_recording``."""
        done = await self.change_in_call(
            uniqueid,
            at,
            change=lambda doc: stops.stop(
                doc, at=at, scope=scope, reason=reason, agent_id=agent_id
            ),
            entry=lambda done, where: stops.stopped_entry(
                uniqueid=uniqueid,
                at=at,
                done=done,
                reason=reason,
                party=party,
                agent_id=agent_id,
                recording=where.relative,
            ),
            tombstone_reason=reason,  # never used: a stop does not delete
        )
        log.info(
            "recording_stopped",
            call_id=uniqueid,
            outcome=done.outcome,
            reason=reason,
            party=party,
            agent=agent_id,
            stopped=list(done.stopped),
            kept=list(done.kept),
        )
        return done

    async def record_pause(
        self, uniqueid: str, at: datetime, pause: hold.Pause | None
    ) -> hold.PauseChange:
        """List a pause (R2; None: the open one ended) in a live recording's sidecar."""
        async with self._locks.hold(uniqueid):
            where = self._recordings.get(uniqueid)
            if where is None:  # ended (recording_ended holds the lock) or not ours
                return hold.NOTHING

            def apply(syncs: DirSyncs) -> hold.PauseChange:
                doc = sidecar.load(where)
                done = hold.started(doc, at=at, pause=pause) if pause else hold.ended(doc, at=at)
                if done.doc is not None:
                    sidecar.write(where, done.doc, dir_sync=syncs.later)
                return done

            return await self._files.run(apply)

    async def change_in_call(
        self,
        uniqueid: str,
        at: datetime,
        *,
        change: Callable[[dict[str, Any] | None], _Change],
        entry: Callable[[_Change, paths.RecordingPaths], dict[str, Any]],
        tombstone_reason: str,
    ) -> _Change:
        """A mid-call change to a call's recording: the pure ``change`` decides from the
        sidecar; its ledger ``entry`` is written first, then the recording is deleted (tombstone)
        or its new sidecar written. Serialised per call."""
        async with self._locks.hold(uniqueid):
            self._agent_waits.pop(uniqueid, None)
            where = self._recordings.get(uniqueid)
            if where is None:
                found = await asyncio.to_thread(find_recording, self._recordings_dir, uniqueid)
                where = None if found is None else await asyncio.to_thread(self._live, found)

            def apply(syncs: DirSyncs) -> _Change:
                try:
                    doc = self._sidecars.read(uniqueid, where) if where else None
                except FileNotFoundError:
                    doc = None
                done = change(doc)
                if not done.writes or where is None:
                    return done
                self._ledger.append(entry(done, where))
                if done.outcome == "deleted":
                    self._tombstone(where, at, tombstone_reason)
                elif done.doc is not None:
                    self._sidecars.write(uniqueid, where, done.doc, dir_sync=syncs.later)
                return done

            done = await self._files.run(apply)
            if done.outcome == "deleted":
                self._recordings.pop(uniqueid, None)
            return done
