"""Evidence storage for the live app: sidecars beside recordings, entries in the ledger.

Blocking file work (fsync, hashing) runs in worker threads so no call's flow waits on another's
disk I/O. Paths come from Asterisk's uniqueid only (:mod:`callconsent.evidence.paths`).

Cost per call (bench/hotpath.py, bench/live.py): ledger lines go through one writer thread that
group-commits the lines arriving during one fsync (:class:`callconsent.evidence.group_commit.GroupCommit`;
each is acknowledged only once durable), awaited without a worker-thread hop. The store writes
only documents its own builders made, unvalidated, and does not read back a sidecar it wrote
while the file is still that one (:class:`callconsent.evidence.known.KnownSidecars`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import structlog

from callconsent.agents import evidence as agent_evidence
from callconsent.agents import rules as agent_rules
from callconsent.agents.evidence import AgentEvidence
from callconsent.agents.rules import AgentOutcome, RecordingStart
from callconsent.clock import Clock, utc_now
from callconsent.consent import CallOutcome
from callconsent.evidence import (
    caller_keys,
    documents,
    entries,
    group_commit,
    ledger,
    paths,
    sidecar,
    wav,
)
from callconsent.evidence.at_rest import AtRest
from callconsent.evidence.documents import CallInfo
from callconsent.evidence.known import KnownSidecars
from callconsent.evidence.paths import find_recording
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

#: How long to wait after hangup for MixMonitor to close the file before leaving it to reconcile.
FINALISE_TIMEOUT_SECONDS = 15.0


class EvidenceStore:
    def __init__(
        self,
        *,
        recordings_dir: Path,
        ledger_path: Path,
        config_sha256: str,
        clock: Clock = utc_now,
        anchor_path: Path | None = None,
        at_rest: AtRest | None = None,
        spool_dir: Path | None = None,
    ) -> None:
        self._at_rest = at_rest  # None: recordings stay in clear (no `encryption` in the config)
        #: with encryption: MixMonitor writes the clear WAV here, the tree gets it encrypted
        self._spool = spool_dir if at_rest is not None else None
        self._recordings_dir = recordings_dir
        #: callers go into the ledger sealed, each under a key of its own (evidence.callers)
        self._callers = caller_keys.Sealer(ledger_path)
        self._ledger = group_commit.GroupCommit(
            ledger.Ledger(ledger_path, validate=False, anchor_path=anchor_path),
            self._callers.keys,
        )
        self._sidecars = KnownSidecars()  # what this process wrote: no read to change it
        self._config_sha256 = config_sha256
        self._clock = clock
        self._recordings: dict[str, paths.RecordingPaths] = {}
        #: calls whose recording waits for the answering agent's consent (R15)
        self._agent_waits: dict[str, RecordingStart] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def prepare_recording(
        self, outcome: CallOutcome, call: CallInfo, started: datetime
    ) -> str:
        """Create the date folder and the ``recording`` sidecar; return the audio path."""
        where = paths.recording_paths(self._recordings_dir, call.uniqueid, started)
        if self._spool is not None:  # the sidecar names the tree's file; the audio is spooled
            where = paths.spooled(where, self._spool)
        doc = documents.sidecar_document(
            outcome,
            call,
            where,
            recording_started=started,
            config_sha256=call.config_sha256 or self._config_sha256,
        )
        start = agent_rules.recording_start(outcome.recorded_purposes)
        if start.waits_for_agent:  # listed as a purpose only once the agent has consented
            doc = agent_evidence.hold_for_agent(doc, start.pending)

        def create() -> None:
            paths.ensure_directory(where)
            self._sidecars.write(call.uniqueid, where, doc, create=True)

        await asyncio.to_thread(create)
        self._recordings[call.uniqueid] = where
        if start.waits_for_agent:
            self._agent_waits[call.uniqueid] = start
        return str(where.audio)

    def waiting_for_agent(self, uniqueid: str) -> bool:
        return uniqueid in self._agent_waits

    async def agent_decided(
        self, uniqueid: str, agent: AgentEvidence, *, given: bool, reason: str | None = None
    ) -> tuple[AgentOutcome, str] | None:
        """Apply the answering agent's decision to the call's sidecar and log it (ledger
        ``agent_decision``). Returns the outcome and the audio path (for a recording the caller
        must start now), or None when the call waits for no agent (unknown, or decided already).
        A recording left with no purpose becomes a tombstone."""
        async with self._locks.setdefault(uniqueid, asyncio.Lock()):
            start = self._agent_waits.pop(uniqueid, None)
            where = self._recordings.get(uniqueid)
            if start is None or where is None:
                return None
            outcome = agent_rules.agent_decided(start, agent_given=given, reason=reason)
            entry = agent_evidence.decision_entry(
                uniqueid=uniqueid,
                agent=agent,
                status=outcome.status,
                reason=outcome.reason,
                purposes=start.pending,
                kept_purposes=outcome.kept,
                recording=None if outcome.tombstone else where.relative,
            )

            def apply() -> None:
                if outcome.tombstone:
                    self._tombstone(where, agent.decided_at, outcome.reason)
                    return
                doc = self._sidecars.read(uniqueid, where)
                resolved = agent_evidence.resolve(
                    doc, given=given, reason=outcome.reason, agent=agent
                )
                self._sidecars.write(uniqueid, where, resolved)

            await self._ledger.append_async(entry)
            await asyncio.to_thread(apply)
            if outcome.tombstone:
                self._recordings.pop(uniqueid, None)
            log.info(
                "agent_decision",
                call_id=uniqueid,
                agent=agent.agent_id,
                status=outcome.status,
                reason=outcome.reason,
                kept=list(outcome.kept),
            )
            return outcome, str(where.audio)

    async def agent_recording_failed(self, uniqueid: str, at: datetime, reason: str) -> None:
        """The recording the agent's consent allowed could not be started: tombstone it."""
        where = self._recordings.pop(uniqueid, None)
        if where is not None:
            await asyncio.to_thread(self._tombstone, where, at, reason)

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

    def live_recordings(self) -> list[str]:
        """The uniqueids of the calls this process records now (or waits for an agent for)."""
        return list(self._recordings)

    def recording_live(self, uniqueid: str) -> bool:
        """This process records call ``uniqueid`` now (or waits for its agent to)."""
        return uniqueid in self._recordings

    def adopt(self, uniqueid: str, where: paths.RecordingPaths) -> None:
        """A recording found live after a restart: this process watches it from now on."""
        self._recordings.setdefault(uniqueid, self._live(where))

    def _live(self, where: paths.RecordingPaths) -> paths.RecordingPaths:
        """A recording found in the tree, with its audio in the spool while it is there."""
        if self._spool is None:
            return where
        spooled = paths.spooled(where, self._spool)
        return spooled if spooled.audio.exists() else where

    async def consent_live(self, uniqueid: str) -> bool:
        """Call ``uniqueid``'s running recording still holds a consent purpose (training)."""
        where = self._recordings.get(uniqueid)
        if where is None:
            return False
        doc = await asyncio.to_thread(self._sidecars.read, uniqueid, where)
        if doc["state"] != sidecar.State.RECORDING or doc["recording"].get("stop_reason"):
            return False
        return any(p["consent"] is not None for p in doc["purposes"])

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
        async with self._locks.setdefault(uniqueid, asyncio.Lock()):
            where = self._recordings.get(uniqueid)
            if where is None:  # ended (recording_ended holds the lock) or not ours
                return hold.NOTHING

            def apply() -> hold.PauseChange:
                doc = sidecar.load(where)
                done = hold.started(doc, at=at, pause=pause) if pause else hold.ended(doc, at=at)
                if done.doc is not None:
                    sidecar.write(where, done.doc)
                return done

            return await asyncio.to_thread(apply)

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
        async with self._locks.setdefault(uniqueid, asyncio.Lock()):
            self._agent_waits.pop(uniqueid, None)
            where = self._recordings.get(uniqueid)
            if where is None:
                found = await asyncio.to_thread(find_recording, self._recordings_dir, uniqueid)
                where = None if found is None else await asyncio.to_thread(self._live, found)

            def apply() -> _Change:
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
                    self._sidecars.write(uniqueid, where, done.doc)
                return done

            done = await asyncio.to_thread(apply)
            if done.outcome == "deleted":
                self._recordings.pop(uniqueid, None)
            return done

    async def write_call(self, outcome: CallOutcome, call: CallInfo) -> None:
        where = self._recordings.get(call.uniqueid)
        caller, key = self._callers.seal(call.uniqueid, call.caller_number, call.caller_name)
        entry = documents.ledger_entry(
            outcome,
            call,
            relative_file=where.relative if where else None,
            config_sha256=call.config_sha256 or self._config_sha256,
            now=self._clock(),
            caller=caller,
        )
        await self._ledger.append_async(entry, () if key is None else (key,))

    async def write_unhandled(self, call: CallInfo, status: str, reason: str) -> None:
        caller, key = self._callers.seal(call.uniqueid, call.caller_number, call.caller_name)
        entry = documents.unhandled_call_entry(
            call,
            status=status,
            reason=reason,
            config_sha256=call.config_sha256 or self._config_sha256,
            now=self._clock(),
            caller=caller,
        )
        await self._ledger.append_async(entry, () if key is None else (key,))

    async def recording_ended(self, call: CallInfo, ended: datetime) -> None:
        """After hangup: finalise the sidecar (sha256, bytes, duration); a file with no audio
        (never bridged) is deleted and leaves a tombstone. If MixMonitor has not closed the file
        in time, the sidecar stays ``recording`` for ``callconsent reconcile``."""
        if self.waiting_for_agent(call.uniqueid):  # no decision ever came: never consent
            unknown = AgentEvidence(None, "unknown", None, ended)
            await self.agent_decided(call.uniqueid, unknown, given=False, reason="agent_unknown")
        lock = self._locks.pop(call.uniqueid, None) or asyncio.Lock()
        async with lock:  # a mid-call change in flight finishes first; later ones find nothing
            where = self._recordings.pop(call.uniqueid, None)
        if where is None:
            return

        def finalise() -> dict[str, Any] | None:
            doc = self._sidecars.read(call.uniqueid, where)
            self._sidecars.forget(call.uniqueid)  # the call's last write from this process
            if doc["state"] == sidecar.State.TOMBSTONE:  # deleted during the call (CLI)
                where.audio.unlink(missing_ok=True)  # e.g. the spooled WAV it could not see
                return None
            return sidecar.finalise(where, ended_at=ended, doc=doc, schema_check=False)

        try:
            async with asyncio.timeout(FINALISE_TIMEOUT_SECONDS):
                await wav.wait_closed(where.audio)
                final = await asyncio.to_thread(finalise)
        except TimeoutError:
            self._sidecars.forget(call.uniqueid)
            if not where.audio.exists():
                await self._discard(where, ended, "no_audio")
                return
            log.warning("recording_not_closed", call_id=call.uniqueid, file=where.relative)
            return
        if final is None:
            return
        await self._ledger.append_async(
            entries.recording_final_entry(final, at=ended, source="app")
        )
        if not final["recording"]["has_audio"]:
            await self._discard(where, ended, "no_audio")
        elif self._at_rest is not None:
            await self._encrypt(where)
        log.info(
            "recording_final",
            call_id=call.uniqueid,
            file=where.relative,
            bytes=final["recording"]["bytes"],
            has_audio=final["recording"]["has_audio"],
        )

    async def aclose(self) -> None:
        """Write the ledger lines still queued and stop the ledger's writer thread."""
        await asyncio.to_thread(self._ledger.close)
        self._callers.keys.close()

    async def _encrypt(self, where: paths.RecordingPaths) -> None:
        """Encrypt the final recording in place (R33); on failure it stays in clear for
        ``callconsent reconcile`` to finish (logged)."""
        assert self._at_rest is not None
        tree = paths.in_tree(where)
        source = None if tree == where else where.audio  # spooled: encrypt into the tree
        try:
            await asyncio.to_thread(partial(self._at_rest.encrypt, tree, source=source))
        except (OSError, ValueError) as exc:  # ValueError: malformed sidecar, key store
            log.error(
                "recording_not_encrypted", file=where.relative, error=f"{type(exc).__name__}: {exc}"
            )

    async def _discard(self, where: paths.RecordingPaths, at: datetime, reason: str) -> None:
        await asyncio.to_thread(self._tombstone, where, at, reason)

    def _tombstone(self, where: paths.RecordingPaths, at: datetime, reason: str) -> None:
        # ledger first: an interrupted run may repeat the entry, never lose it
        try:  # deleted already, e.g. by `callconsent withdraw` during the call: no 2nd entry
            logged = sidecar.load(where)["state"] == sidecar.State.TOMBSTONE
        except FileNotFoundError:
            logged = False
        tomb = sidecar.prepare_tombstone(where, reason=reason, at=at)
        if not logged:
            self._ledger.append(entries.deleted_entry(tomb, source="app"))
        sidecar.write(where, tomb, schema_check=False)
        self._sidecars.forget(where.uniqueid)
