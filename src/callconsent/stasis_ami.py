"""A recorded ARI call's end and its late keys, heard from AMI instead of an ARI subscription.

After a recorded call leaves Stasis the app must still hear (a) the channel's end, to finalise
the recording (final sidecar, ``recording_final`` ledger line), and (b) the route's objection
digit pressed before the bridge (R30). An ARI subscription to the channel would deliver both,
but then Asterisk builds an event for every dialplan step, variable and bridge change of that
channel for the rest of the call (about 23 us each, 1-1.5 ms per recorded call, though the app's
event filter drops them). The app already reads AMI (the party watch), so when AMI is logged in
as the recording is prepared, :class:`callconsent.stasis.StasisApp` makes no subscription and
this adapter reports instead:

* ``Hangup`` of the caller's ``Uniqueid`` -> :meth:`StasisApp.ended` (the same finalisation as
  ARI's ``ChannelDestroyed``, once per recording whatever reports the end first);
* ``DTMFEnd`` with ``Direction: Received`` of that ``Uniqueid`` -> :meth:`StasisApp.late_key`
  with the dialplan line it was pressed on (``Context``, ``Exten``, ``Priority``): a key
  pressed on the Stasis() line belongs to ARI (the flow, or a late key while still in Stasis),
  any other is a late key, so no key counts twice or goes astray between the two streams.

Only trusted messages reach these handlers (:mod:`callconsent.ami_wire`): a header a caller's
text could forge makes the message untrusted, and the values read here are Asterisk's own
(``Uniqueid``, ``Direction``, ``Digit``, the dialplan line), checked before use. An untrusted
message that names a watched call may have been its ``Hangup``: the app asks ARI whether the
channel still exists (404: finalise; the guard in :mod:`callconsent.untrusted` stops the
recording either way). After an AMI gap (every login) the same check runs for every watched
call, so a call that ended unseen is finalised (its end time: when the app learned of it) and
one still up stays watched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol

import structlog

from callconsent.ami import SyncEventHandler, Untrusted
from callconsent.ari import AriError, AriNotFound
from callconsent.evidence.paths import UNIQUEID_RE

log = structlog.get_logger("callconsent.stasis_ami")

#: The keys a DTMF event can carry (RFC 4733 events 0-15).
_DIGITS: Final = frozenset("0123456789*#ABCD")
#: After an untrusted message names a watched call whose channel is still up, look once more
#: this much later (the message may have been its end, reported just before the channel went).
RECHECK_SECONDS: Final = 2.0


class RecordedCalls(Protocol):
    """What :class:`callconsent.stasis.StasisApp` offers this adapter."""

    def tracks(self, channel_id: str) -> bool: ...
    def ami_watched(self) -> list[str]: ...
    async def ended(self, channel_id: str) -> None: ...
    async def late_key(self, channel_id: str, digit: str, where: tuple[str, str, str]) -> None: ...


class ChannelLookup(Protocol):
    async def get_channel(self, channel_id: str) -> dict[str, Any]: ...


class AmiCallEnds:
    """Register :meth:`handlers` and :meth:`on_untrusted` on the AMI connection before it
    connects; :meth:`attach` the app once it exists (events before that are dropped: no call
    can be recorded before the app runs)."""

    def __init__(self, *, recheck_seconds: float = RECHECK_SECONDS) -> None:
        self._calls: RecordedCalls | None = None
        self._ari: ChannelLookup | None = None
        self._recheck_seconds = recheck_seconds
        self._tasks: set[asyncio.Task[None]] = set()
        self._checking: set[str] = set()

    def attach(self, calls: RecordedCalls, ari: ChannelLookup) -> None:
        self._calls, self._ari = calls, ari

    def handlers(self) -> dict[str, SyncEventHandler]:
        """The AMI events this adapter needs (manager.conf ``read``: ``call`` and ``dtmf``)."""
        return {"Hangup": self.on_hangup, "DTMFEnd": self.on_dtmf_end}

    # -- AMI events (synchronous, in Asterisk's order) ---------------------------------------
    def on_hangup(self, headers: dict[str, str]) -> None:
        uniqueid = headers.get("Uniqueid", "")
        if self._calls is not None and _valid(uniqueid) and self._calls.tracks(uniqueid):
            self._spawn(self._calls.ended, uniqueid)

    def on_dtmf_end(self, headers: dict[str, str]) -> None:
        uniqueid, digit = headers.get("Uniqueid", ""), headers.get("Digit", "")
        if (
            self._calls is None
            or headers.get("Direction", "") != "Received"
            or digit not in _DIGITS
            or not _valid(uniqueid)
            or not self._calls.tracks(uniqueid)
        ):
            return
        where = (headers.get("Context", ""), headers.get("Exten", ""), headers.get("Priority", ""))
        calls = self._calls
        self._spawn(lambda u: calls.late_key(u, digit, where), uniqueid)

    def on_untrusted(self, report: Untrusted) -> None:
        """An untrusted message naming a watched call may have hidden its ``Hangup``: ask ARI."""
        if self._calls is None:
            return
        for uniqueid in sorted(report.ids & set(self._calls.ami_watched())):
            if uniqueid not in self._checking:
                self._checking.add(uniqueid)
                self._spawn(self._check_untrusted, uniqueid)

    # -- after an AMI gap ------------------------------------------------------------------
    async def recheck(self) -> set[str]:
        """Every watched call whose channel is gone now is finalised (in the background: it
        waits for MixMonitor to close the file); the others stay watched. Returns the gone
        calls' uniqueids. A failed look-up leaves the call watched (reconcile finalises it at
        the latest)."""
        if self._calls is None:
            return set()
        watched = self._calls.ami_watched()
        found = await asyncio.gather(*(self._gone(u) for u in watched))
        gone = {u for u, is_gone in zip(watched, found, strict=True) if is_gone}
        for uniqueid in sorted(gone):
            log.warning("recording_end_unseen", call_id=uniqueid, reason="ami_gap")
            self._spawn(self._calls.ended, uniqueid)
        if watched:
            log.info("recorded_calls_rechecked", calls=len(watched), gone=len(gone))
        return gone

    async def drain(self) -> None:
        """Wait for the work in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- internals -------------------------------------------------------------------------
    async def _gone(self, uniqueid: str) -> bool:
        if self._ari is None:
            return False
        try:
            await self._ari.get_channel(uniqueid)
        except AriNotFound:
            return True
        except AriError as exc:
            log.warning("recording_recheck_failed", call_id=uniqueid, error=str(exc))
        return False

    async def _check_untrusted(self, uniqueid: str) -> None:
        try:
            for wait in (0.0, self._recheck_seconds):
                await asyncio.sleep(wait)
                if self._calls is None or uniqueid not in self._calls.ami_watched():
                    return  # finalised meanwhile
                if await self._gone(uniqueid):
                    log.warning("recording_end_unseen", call_id=uniqueid, reason="untrusted")
                    await self._calls.ended(uniqueid)
                    return
        finally:
            self._checking.discard(uniqueid)

    def _spawn(self, work: Callable[[str], Awaitable[None]], uniqueid: str) -> None:
        async def run() -> None:
            try:
                await work(uniqueid)
            except Exception:  # a bug here must not kill the AMI reader
                log.exception("recorded_call_event_failed", call_id=uniqueid)

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _valid(uniqueid: str) -> bool:
    return bool(UNIQUEID_RE.fullmatch(uniqueid)) and ".." not in uniqueid
