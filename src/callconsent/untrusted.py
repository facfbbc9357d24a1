"""Fail closed on AMI events the app cannot trust (issue 11): stop the calls' recordings.

:mod:`callconsent.ami` hands over every message it will not act on (caller text forged a header
line or a whole event, see :mod:`callconsent.ami_wire`) with every id it names. Which call it
really concerns cannot be told, and what it may have hidden (a transfer to an outside phone, a
party joining) cannot be known: so each call this process records whose uniqueid or linkedid is
among those ids stops recording at once (AMI ``StopMixMonitor`` first, then the evidence: ledger
``recording_stopped`` and sidecar ``stop_reason`` ``untrusted_event``, party unknown = external).
A forged id that names another caller's call stops that recording too: that is the price of
failing closed, and it is logged.

The first such event can come before the recording has started: the hook starts MixMonitor
right after the consent, and the Queue's dial (``DialBegin``) follows within milliseconds, so
``StopMixMonitor`` may find nothing to stop yet. It is therefore repeated (every
``RETRY_SECONDS``, ``ATTEMPTS`` times) until Asterisk confirms a stop or the call has ended; a
call is stopped once, however many untrusted events name it.

An untrusted message may also have been one of the dialplan's own UserEvents (a withdrawal by
``*9``/``*8`` or on the withdrawal route raised on a channel whose caller ID carries line
breaks). Those are never lost: the dialplan marks them in AstDB before it raises them, so the
guard runs ``recover`` (the markers' recovery, as at every AMI login) once per burst of
untrusted messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Final

import structlog

from callconsent.ami import AmiError, Untrusted
from callconsent.clock import Clock, utc_now
from callconsent.evidence.paths import UNIQUEID_RE
from callconsent.parties.adapter import PartyAmi, PartyStore

log = structlog.get_logger("callconsent.untrusted")

UNTRUSTED_EVENT: Final = "untrusted_event"
ATTEMPTS: Final = 10
RETRY_SECONDS: Final = 0.3


class UntrustedEventGuard:
    def __init__(
        self,
        ami: PartyAmi,
        store: PartyStore,
        *,
        clock: Clock = utc_now,
        retry_seconds: float = RETRY_SECONDS,
        recover: Sequence[Callable[[], Awaitable[object]]] = (),
    ) -> None:
        self._ami = ami
        self._store = store
        self._clock = clock
        self._retry = retry_seconds
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping: set[str] = set()
        self._recover = tuple(recover)
        self._recovering: asyncio.Task[None] | None = None

    def on_untrusted(self, report: Untrusted) -> None:
        """Stop every live recording ``report`` may concern (synchronous: called in order)."""
        self._stopping = {i for i in self._stopping if self._store.recording_live(i)}
        self._start_recovery()
        calls = sorted(
            i
            for i in report.ids
            if UNIQUEID_RE.fullmatch(i)
            and ".." not in i
            and i not in self._stopping
            and self._store.recording_live(i)
        )
        if not calls:
            return
        at = self._clock()
        loop = asyncio.get_running_loop()
        for uniqueid in calls:
            self._stopping.add(uniqueid)
            task = loop.create_task(self._stop(uniqueid, at, report.problems))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the stops and the recovery in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _start_recovery(self) -> None:
        if not self._recover or (self._recovering is not None and not self._recovering.done()):
            return  # one at a time: it reads every marker, a burst needs one run
        task = asyncio.get_running_loop().create_task(self._run_recovery())
        self._recovering = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_recovery(self) -> None:
        for recover in self._recover:
            try:
                await recover()
            except Exception:  # a recovery's bug must not stop the next one
                log.exception("untrusted_recovery_failed")

    async def _stop(self, uniqueid: str, at: datetime, problems: tuple[str, ...]) -> None:
        bound = log.bind(call_id=uniqueid, reason=UNTRUSTED_EVENT, problems=list(problems))
        await self._stop_mixmonitor(uniqueid, bound)
        try:
            await self._store.stop_in_call(
                uniqueid, at, scope="all", reason=UNTRUSTED_EVENT, party="external"
            )
        except (OSError, ValueError) as exc:
            bound.error("storage_error", action="stop_in_call", error=str(exc))
            return
        bound.warning("recording_stopped_untrusted_event")

    async def _stop_mixmonitor(self, uniqueid: str, bound: Any) -> None:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                await self._ami.stop_mixmonitor(uniqueid)
            except AmiError as exc:  # not started yet, or the call is gone
                if attempt == ATTEMPTS or not self._store.recording_live(uniqueid):
                    bound.warning("untrusted_stop_failed", error=str(exc), attempts=attempt)
                    return
                await asyncio.sleep(self._retry)
            else:
                bound.info("untrusted_mixmonitor_stopped", attempts=attempt)
                return
