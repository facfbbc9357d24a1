"""A recorded ARI call's end and its late keys, heard from AMI instead of an ARI subscription.

After a recorded call leaves Stasis the app must still hear (a) the channel's end, to finalise
the recording (final sidecar, ``recording_final`` ledger line), and (b) the route's objection
digit pressed before the bridge (R30). An ARI subscription to the channel would deliver both,
but then Asterisk builds an event for every dialplan step, variable and bridge change of that
channel for the rest of the call (about 23 us each, 1-1.5 ms per recorded call, though the app's
event filter drops them). The app already reads AMI (the party watch), so when AMI is logged in
as the recording is prepared, :class:`callconsent.stasis.StasisApp` makes no subscription and
this adapter reports instead (:meth:`AmiCallEnds.reporting`):

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

AMI only reports keys to a user that reads the ``dtmf`` class and lets ``DTMFEnd`` through its
``eventfilter`` (manager.conf); the app cannot ask AMI which classes its user has. So after each
login the app keeps subscribing recorded calls over ARI until AMI has reported a key pressed in
one of the app's own calls (the consent key, pressed in Stasis, comes over both streams). When
ARI reports a key and no ``DTMFEnd`` follows within :data:`KEY_WAIT_SECONDS`, the app logs
``ami_keys_unheard`` once per login (what to change in manager.conf) and goes on subscribing:
a late objection key is never lost to a manager.conf that predates it.
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
#: How long after a key ARI reported the app waits for AMI's ``DTMFEnd`` of it before it says
#: that the AMI user does not receive keys (AMI runs seconds late on a saturated Asterisk: the
#: agent leg's AMI round trip had a p99 of 2.8 s at 300 concurrent calls on 2 cores).
KEY_WAIT_SECONDS: Final = 10.0
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

    def __init__(
        self,
        *,
        connected: Callable[[], bool] = lambda: True,
        recheck_seconds: float = RECHECK_SECONDS,
        key_wait_seconds: float = KEY_WAIT_SECONDS,
    ) -> None:
        self._calls: RecordedCalls | None = None
        self._ari: ChannelLookup | None = None
        self._connected = connected  # AMI logged in now
        self._recheck_seconds = recheck_seconds
        self._key_wait_seconds = key_wait_seconds
        self._tasks: set[asyncio.Task[None]] = set()
        self._checking: set[str] = set()
        self._logins = 0
        self._keys_heard = False  # a DTMFEnd of one of the app's calls since the last login
        self._key_check: asyncio.TimerHandle | None = None
        self._warned_login = 0  # the login ``ami_keys_unheard`` was logged for

    def attach(self, calls: RecordedCalls, ari: ChannelLookup) -> None:
        self._calls, self._ari = calls, ari

    def login(self) -> None:
        """AMI logged in (again): its user may have other classes or filters now, so recorded
        calls are subscribed over ARI until AMI reports a key again."""
        self._logins += 1
        self._keys_heard = False

    def reporting(self) -> bool:
        """Whether AMI reports a recorded call's end and late keys now (no ARI subscription):
        logged in, and a key pressed in one of the app's calls heard since the login."""
        return self._keys_heard and self._connected()

    def heard_over_ari(self) -> None:
        """ARI reported a key in one of the app's calls: unless AMI has reported keys since the
        login, expect its ``DTMFEnd`` within the wait, or say once per login that none come."""
        if self._keys_heard or self._key_check is not None or self._warned_login == self._logins:
            return
        if self._connected():
            loop = asyncio.get_running_loop()
            self._key_check = loop.call_later(self._key_wait_seconds, self._keys_due, self._logins)

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
        if not self._keys_heard:
            self._keys_heard = True
            log.info("ami_keys_heard", call_id=uniqueid)
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
    def _keys_due(self, login: int) -> None:
        self._key_check = None
        if self._keys_heard or login != self._logins or not self._connected():
            return  # heard, or AMI logged in again or away meanwhile: nothing to say
        self._warned_login = login
        log.warning(
            "ami_keys_unheard",
            reason=f"ARI reported a key and AMI no DTMFEnd within {self._key_wait_seconds:g} s",
            fix="give the AMI user 'read = call,user,dtmf' and the eventfilter "
            "'eventfilter(action(include),name(DTMFEnd)) =' in manager.conf, then "
            "'manager reload' and restart callconsent",
            meanwhile="recorded calls are subscribed over ARI: late keys still count, at about "
            "1-1.5 ms more Asterisk CPU per recorded call",
        )

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
