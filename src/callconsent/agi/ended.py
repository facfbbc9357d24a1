"""Recorded AGI calls waiting for the end of the call: the ``callconsent-agi`` hook pushes a
hangup handler on a recorded call, whose ``AGI(.../callconsent-ended)`` reports the end; the
sidecar is then finalised in the background, as the Stasis adapter does on ChannelDestroyed."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import Final

import structlog

from callconsent.clock import Clock
from callconsent.evidence.documents import CallInfo
from callconsent.ports import Store

__all__ = ["RecordedCalls"]

log = structlog.get_logger("callconsent.agi")

#: A recorded call whose end is never reported (the app was down at hangup) is forgotten after
#: this long; its sidecar stays ``recording`` for ``callconsent reconcile``.
RECORDED_TTL: Final = 24 * 3600.0


class RecordedCalls:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        ttl: float = RECORDED_TTL,
    ) -> None:
        self._store = store
        self._clock = clock
        self._ttl = ttl
        self._calls: OrderedDict[str, tuple[CallInfo, float]] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._calls)

    def remember(self, info: CallInfo, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        while self._calls:  # oldest first: insertion order is time order
            _uniqueid, (_info, since) = next(iter(self._calls.items()))
            if now - since <= self._ttl:
                break
            self._calls.popitem(last=False)
        self._calls[info.uniqueid] = (info, now)

    def ended(self, uniqueid: str) -> bool:
        """The call ended: finalise its sidecar in the background. False for a call this
        process did not record (or whose end was reported already)."""
        known = self._calls.pop(uniqueid, None)
        if known is None:
            return False
        task = asyncio.create_task(self._finalise(known[0]))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def drain(self) -> None:
        """Wait for the sidecars being finalised (shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _finalise(self, info: CallInfo) -> None:
        try:
            await self._store.recording_ended(info, self._clock())
        except (OSError, ValueError) as exc:
            log.error("recording_finalise_failed", call_id=info.uniqueid, error=str(exc))
