"""Fail closed on AMI events the app cannot trust (issue 11): stop the calls' recordings.

:mod:`callconsent.ami` hands over every message it will not act on (caller text forged a header
line or a whole event, see :mod:`callconsent.ami_wire`) with every id it names. Which call it
really concerns cannot be told, and what it may have hidden (a transfer to an outside phone, a
party joining) cannot be known: so each call this process records whose uniqueid or linkedid is
among those ids stops recording at once (AMI ``StopMixMonitor`` first, then the evidence: ledger
``recording_stopped`` and sidecar ``stop_reason`` ``untrusted_event``, party unknown = external).
A forged id that names another caller's call stops that recording too: that is the price of
failing closed, and it is logged.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Final

import structlog

from callconsent.ami import AmiError, Untrusted
from callconsent.clock import Clock, utc_now
from callconsent.evidence.paths import UNIQUEID_RE
from callconsent.parties.adapter import PartyAmi, PartyStore

log = structlog.get_logger("callconsent.untrusted")

UNTRUSTED_EVENT: Final = "untrusted_event"


class UntrustedEventGuard:
    def __init__(self, ami: PartyAmi, store: PartyStore, *, clock: Clock = utc_now) -> None:
        self._ami = ami
        self._store = store
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()

    def on_untrusted(self, report: Untrusted) -> None:
        """Stop every live recording ``report`` may concern (synchronous: called in order)."""
        calls = sorted(
            i
            for i in report.ids
            if UNIQUEID_RE.fullmatch(i) and ".." not in i and self._store.recording_live(i)
        )
        if not calls:
            return
        at = self._clock()
        loop = asyncio.get_running_loop()
        for uniqueid in calls:
            task = loop.create_task(self._stop(uniqueid, at, report.problems))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the stops in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _stop(self, uniqueid: str, at: datetime, problems: tuple[str, ...]) -> None:
        bound = log.bind(call_id=uniqueid, reason=UNTRUSTED_EVENT, problems=list(problems))
        try:
            await self._ami.stop_mixmonitor(uniqueid)
        except AmiError as exc:  # e.g. nothing recording yet; hangup ends it at the latest
            bound.warning("untrusted_stop_failed", error=str(exc))
        try:
            await self._store.stop_in_call(
                uniqueid, at, scope="all", reason=UNTRUSTED_EVENT, party="external"
            )
        except (OSError, ValueError) as exc:
            bound.error("storage_error", action="stop_in_call", error=str(exc))
            return
        bound.warning("recording_stopped_untrusted_event")
