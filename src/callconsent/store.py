"""Evidence storage for the live app: sidecars beside recordings, entries in the ledger.

Blocking file work (fsync, hashing) runs off the event loop: the sidecars in a thread of their
own (more only while the disk is slow), fed by a queue and waking the loop once per batch, with
one directory fsync per batch (:class:`callconsent.evidence.file_worker.FileWorker`); the hash of a long recording and its
encryption in worker threads, so they hold up no other call's sidecar. Paths come from
Asterisk's uniqueid only (:mod:`callconsent.evidence.paths`).

Cost per call (bench/hotpath.py, bench/live.py): ledger lines go through one writer thread that
group-commits the lines arriving during one fsync (:class:`callconsent.evidence.group_commit.GroupCommit`;
each is acknowledged only once durable), awaited without a worker-thread hop. The store writes
only documents its own builders made, unvalidated, and does not read back a sidecar it wrote
while the file is still that one (:class:`callconsent.evidence.known.KnownSidecars`); a date
folder it made or found is not looked for again (made again if it went away).

What a recorded call of route ``support`` (caller and agent consent) makes durable, and why
(alone: 9 fsyncs and 1 fdatasync; under load a batch of calls shares each directory fsync and
each ledger/key-store fsync):

* ``recording`` sidecar: the file (whole before it is linked in) and the date folder (the
  sidecar exists before MixMonitor may write audio: no audio without a sidecar after a crash);
* ledger ``call`` line, with the sealed caller's key in the key store first (fdatasync: a line
  never names a key that was lost), ``agent_decision`` line (ledger first), ``recording_final``
  line: one fsync each, none acknowledged before it;
* the agent's decision in the sidecar: file and folder, before the recording starts (reconcile
  deletes a recording whose sidecar still waits for an agent: it would take a consented one for
  one nobody answered);
* the ``final`` sidecar: file and folder, before the ledger's ``recording_final`` names it.

The calls' own ledger lines (``call``, with the held ones first) live in
:mod:`callconsent._store_lines`, the mid-call changes (withdrawal, sensitive flag, party stop,
hold pause) in :mod:`callconsent._store_midcall`; :class:`EvidenceStore` has them as its own
methods.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import structlog

from callconsent._store_held import HeldLines
from callconsent._store_lines import CallLines
from callconsent._store_midcall import MidCallChanges
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
from callconsent.evidence.file_worker import DirSyncs, FileWorker
from callconsent.evidence.known import KnownSidecars
from callconsent.keyed_locks import KeyedLocks

log = structlog.get_logger("callconsent.store")

#: Date folders the store remembers having made (a day's calls share one; at midnight a new one).
_FOLDERS_KEPT = 4

#: How long to wait after hangup for MixMonitor to close the file before leaving it to reconcile.
FINALISE_TIMEOUT_SECONDS = 15.0
#: A recording longer than this (about 4 min of 8 kHz audio) is hashed in a worker thread, not
#: in the sidecar thread, where it would delay the other calls' sidecars (a few ms up to here).
HASH_IN_WORKER_BYTES = 4 << 20


class EvidenceStore(CallLines, MidCallChanges):
    """Sidecars and ledger entries of the calls in progress: a recording's start, the agent's
    decision, its end (finalise, encrypt, tombstone); the calls' own ledger lines come from
    :class:`callconsent._store_lines.CallLines`, the mid-call changes from
    :class:`callconsent._store_midcall.MidCallChanges`. One lock per call."""

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
        self._held = HeldLines()  # final call lines the ledger refused, written with the next
        self._sidecars = KnownSidecars()  # what this process wrote: no read to change it
        self._files = FileWorker()  # the sidecars' file work, in batches, off the event loop
        #: the date folders made or found by the sidecar jobs: one a day, the last few kept
        self._folders: set[Path] = set()
        self._config_sha256 = config_sha256
        self._clock = clock
        self._recordings: dict[str, paths.RecordingPaths] = {}
        #: calls whose recording waits for the answering agent's consent (R15)
        self._agent_waits: dict[str, RecordingStart] = {}
        self._locks = KeyedLocks()  # per call, while a change to its recording runs or waits

    async def prepare_recording(
        self, outcome: CallOutcome, call: CallInfo, started: datetime
    ) -> str:
        """Create the date folder and the ``recording`` sidecar; return the audio path."""
        start = agent_rules.recording_start(outcome.recorded_purposes)

        def create(syncs: DirSyncs) -> paths.RecordingPaths:
            # in the sidecar thread: the symlink check resolves every folder of the path
            where = paths.recording_paths(self._recordings_dir, call.uniqueid, started)
            if self._spool is not None:  # the sidecar names the tree's file; audio is spooled
                where = paths.spooled(where, self._spool)
            doc = documents.sidecar_document(
                outcome,
                call,
                where,
                recording_started=started,
                config_sha256=call.config_sha256 or self._config_sha256,
            )
            if start.waits_for_agent:  # listed as a purpose only once the agent has consented
                doc = agent_evidence.hold_for_agent(doc, start.pending)
            if where.directory not in self._folders:
                paths.ensure_directory(where)
                if len(self._folders) >= _FOLDERS_KEPT:
                    self._folders.clear()
                self._folders.add(where.directory)
            try:
                self._sidecars.write(call.uniqueid, where, doc, create=True, dir_sync=syncs.later)
            except FileNotFoundError:  # the date folder went away since (by hand): make it again
                paths.ensure_directory(where)
                self._sidecars.write(call.uniqueid, where, doc, create=True, dir_sync=syncs.later)
            return where

        where = await self._files.run(create)
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
        async with self._locks.hold(uniqueid):
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

            def apply(syncs: DirSyncs) -> None:
                if outcome.tombstone:
                    self._tombstone(where, agent.decided_at, outcome.reason)
                    return
                doc = self._sidecars.read(uniqueid, where)
                resolved = agent_evidence.resolve(
                    doc, given=given, reason=outcome.reason, agent=agent
                )
                self._sidecars.write(uniqueid, where, resolved, dir_sync=syncs.later)

            begun = time.monotonic()
            await self._ledger.append_async(entry)
            logged = time.monotonic()
            await self._files.run(apply)
            if outcome.tombstone:
                self._recordings.pop(uniqueid, None)
            log.info(
                "agent_decision",
                call_id=uniqueid,
                agent=agent.agent_id,
                status=outcome.status,
                reason=outcome.reason,
                kept=list(outcome.kept),
                ledger_ms=round((logged - begun) * 1000, 1),  # the line durable
                sidecar_ms=round((time.monotonic() - logged) * 1000, 1),  # then the sidecar
            )
            return outcome, str(where.audio)

    async def agent_recording_failed(self, uniqueid: str, at: datetime, reason: str) -> None:
        """The recording the agent's consent allowed could not be started: tombstone it."""
        where = self._recordings.pop(uniqueid, None)
        if where is not None:
            await self._files.run(lambda _: self._tombstone(where, at, reason))

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

    async def live_purposes(self, uniqueid: str) -> tuple[bool, bool]:
        """Whether call ``uniqueid``'s running recording still holds a consent purpose
        (training), and a purpose recorded without consent (documentation)."""
        where = self._recordings.get(uniqueid)
        if where is None:
            return False, False
        doc = await self._files.run(lambda _: self._sidecars.read(uniqueid, where))
        if doc["state"] != sidecar.State.RECORDING or doc["recording"].get("stop_reason"):
            return False, False
        consent = [p["consent"] is not None for p in doc["purposes"]]
        return any(consent), not all(consent)

    async def discard_recording(self, uniqueid: str, at: datetime, reason: str) -> None:
        """A prepared recording the call will not have (its ledger line was refused): the
        sidecar becomes a tombstone with ``reason``. If that cannot be written either, the
        sidecar stays ``recording`` with no audio for ``callconsent reconcile`` (logged).
        Also for a recording that never starts (the channel's subscription failed): no end of
        it will be reported, so the call is forgotten here."""
        async with self._locks.hold(uniqueid):
            self._agent_waits.pop(uniqueid, None)
            where = self._recordings.pop(uniqueid, None)
            if where is None:
                return
            try:
                await self._discard(where, at, reason)
            except (OSError, ValueError) as exc:
                self._sidecars.forget(uniqueid)
                log.error("recording_not_discarded", call_id=uniqueid, error=str(exc))
                return
        log.info("recording_discarded", call_id=uniqueid, file=where.relative, reason=reason)

    async def recording_ended(self, call: CallInfo, ended: datetime) -> None:
        """After hangup: finalise the sidecar (sha256, bytes, duration); a file with no audio
        (never bridged) is deleted and leaves a tombstone. If MixMonitor has not closed the file
        in time, the sidecar stays ``recording`` for ``callconsent reconcile``."""
        if self.waiting_for_agent(call.uniqueid):  # no decision ever came: never consent
            unknown = AgentEvidence(None, "unknown", None, ended)
            await self.agent_decided(call.uniqueid, unknown, given=False, reason="agent_unknown")
        async with self._locks.hold(call.uniqueid):  # a change in flight first; later: nothing
            where = self._recordings.pop(call.uniqueid, None)
        if where is None:
            return

        def prepare() -> dict[str, Any] | None:
            """The final sidecar (the audio hashed), or None: deleted during the call."""
            doc = self._sidecars.read(call.uniqueid, where)
            self._sidecars.forget(call.uniqueid)  # the call's last write from this process
            if doc["state"] == sidecar.State.TOMBSTONE:  # deleted during the call (CLI)
                where.audio.unlink(missing_ok=True)  # e.g. the spooled WAV it could not see
                return None
            return sidecar.prepare_final(
                where, ended_at=ended, doc=doc, schema_check=False, closed=closed
            )

        def write(final: dict[str, Any] | None, syncs: DirSyncs) -> dict[str, Any] | None:
            if final is None:
                return None
            return sidecar.finalise(
                where, ended_at=ended, doc=final, schema_check=False, dir_sync=syncs.later
            )

        try:  # only the wait: a finalise handed to the worker always runs to its ledger line
            async with asyncio.timeout(FINALISE_TIMEOUT_SECONDS):
                closed = await wav.wait_closed(where.audio)
        except TimeoutError:
            self._sidecars.forget(call.uniqueid)
            if not where.audio.exists():
                await self._discard(where, ended, "no_audio")
                return
            log.warning("recording_not_closed", call_id=call.uniqueid, file=where.relative)
            return
        # the call is over: its final sidecar waits behind the sidecars calls in progress need
        if closed.bytes > HASH_IN_WORKER_BYTES:
            final = await self._files.run(
                partial(write, await asyncio.to_thread(prepare)), later=True
            )
        else:
            final = await self._files.run(lambda syncs: write(prepare(), syncs), later=True)
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
        """Write the ledger lines (and held ones) and sidecars still queued; stop the threads."""
        await self._held.flush(self._ledger)
        await asyncio.to_thread(self._files.close)
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
        await self._files.run(lambda _: self._tombstone(where, at, reason))

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
