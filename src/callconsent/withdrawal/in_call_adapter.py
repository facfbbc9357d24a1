"""The in-call withdrawal adapter (R16): hears the withdrawal context and finishes the evidence.

The dialplan (``[callconsent-withdraw]``, run by the caller's feature code while bridged) has
already stopped the recording when nothing recorded without consent remains, and wrote the
durable marker ``callconsent/withdrawn/<uniqueid>`` = UTC time in AstDB. Then it raised::

    UserEvent(CallconsentWithdraw,Caller: <caller uniqueid>,At: <UTC time>)

This adapter applies the withdrawal to the call's evidence (:meth:`EvidenceStore.withdraw_in_call`:
tombstone and delete the partial file, or keep it for documentation only; ledger ``withdrawn``)
and then deletes the marker. A marker whose evidence could not be written stays for the next try.

The app down when the caller pressed the code: the recording stopped anyway (dialplan), and at
the next AMI login :meth:`WithdrawalHandler.recover` finishes every withdrawal still marked in
AstDB, then deletes the markers. ``callconsent reconcile`` does not read AstDB: the app does it
whenever it (re)connects, which is when it can have missed an event.

The agent withdraws for a caller who asked orally (``[callconsent-withdraw-agent]``, the agent's
code on the agent's channel): the same marker for the caller's uniqueid, its value
``<stamp> agent``, and the same UserEvent with ``By: agent`` and ``Agent: <id>``. The dialplan on
the agent's channel cannot stop a recording on the caller's, so when nothing recorded without
consent remains the app stops the caller's MixMonitor over AMI (``StopMixMonitor``) once the
evidence is written, also for such a marker finished at login (the call may still be up). While
the app is away the recording goes on; the marker waits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Protocol

import structlog

from callconsent import markers, names
from callconsent.ami import AmiError
from callconsent.clock import Clock, utc_now
from callconsent.evidence.fsio import parse_stamp
from callconsent.evidence.paths import UNIQUEID_RE
from callconsent.withdrawal import in_call

log = structlog.get_logger("callconsent.withdrawal.in_call_adapter")

SOURCE_RECOVERED: Final = "app_recovered"


class WithdrawAmi(Protocol):
    async def db_del(self, family: str, key: str) -> None: ...
    async def db_tree(self, family: str, key: str) -> list[tuple[str, str]]: ...
    async def stop_mixmonitor(self, channel: str) -> None: ...


class WithdrawStore(Protocol):
    async def withdraw_in_call(
        self, uniqueid: str, at: datetime, *, via: str, source: str = ...
    ) -> in_call.Withdrawal: ...


class WithdrawalHandler:
    def __init__(self, ami: WithdrawAmi, store: WithdrawStore, *, clock: Clock = utc_now) -> None:
        self._ami = ami
        self._store = store
        self._clock = clock

    async def on_withdraw_event(self, headers: dict[str, str]) -> None:
        """One ``CallconsentWithdraw`` UserEvent (AMI headers, any case)."""
        h = {k.lower(): v for k, v in headers.items()}
        caller = h.get("caller", "").strip()
        by_agent = h.get("by", "").strip() == names.WITHDRAW_BY_AGENT
        via = in_call.VIA_AGENT if by_agent else in_call.VIA_CALLER
        await self.finish(caller, self._when(h.get("at", "")), via=via)

    async def recover(self) -> int:
        """Finish every withdrawal still marked in AstDB (after a login); the number finished."""

        async def finish(key: str, value: str) -> bool:
            stamp, via = marker_value(value)
            uniqueid = key.rsplit("/", 1)[-1]
            return await self.finish(uniqueid, self._when(stamp), via=via, source=SOURCE_RECOVERED)

        return await markers.recover(
            self._ami, names.ASTDB_WITHDRAWN_PREFIX, finish, what="withdraw_markers"
        )

    async def finish(
        self, uniqueid: str, at: datetime, *, via: str, source: str = in_call.SOURCE
    ) -> bool:
        """Apply the withdrawal of call ``uniqueid``, then delete its marker. True when done."""
        bound = log.bind(call_id=uniqueid)
        if not UNIQUEID_RE.fullmatch(uniqueid) or ".." in uniqueid:
            bound.warning("withdraw_event_invalid")
            return False
        try:
            done = await self._store.withdraw_in_call(uniqueid, at, via=via, source=source)
        except (OSError, ValueError) as exc:  # the marker stays: the next login retries
            bound.error("storage_error", action="withdraw_in_call", error=str(exc))
            return False
        if via == in_call.VIA_AGENT and done.outcome == "deleted":
            try:  # the agent's dialplan cannot stop the caller's recording: the app does
                await self._ami.stop_mixmonitor(uniqueid)
            except AmiError as exc:  # the audio is deleted already; the rest ends at hangup
                bound.warning("withdraw_stop_failed", error=str(exc))
        try:
            await self._ami.db_del(names.ASTDB_FAMILY, names.ASTDB_WITHDRAWN_PREFIX + uniqueid)
        except AmiError as exc:  # harmless: the next recovery finds nothing left to do
            bound.warning("withdraw_marker_not_deleted", error=str(exc))
        return True

    def _when(self, stamp: str) -> datetime:
        """The dialplan's UTC time of the key press; now when it is missing or malformed."""
        try:
            return parse_stamp(stamp.strip())
        except (ValueError, TypeError):
            return self._clock()


def marker_value(value: str) -> tuple[str, str]:
    """(stamp, via) of an AstDB withdrawal marker: ``<stamp>`` (the caller's code) or
    ``<stamp> agent`` (the agent's code for a caller who asked orally)."""
    stamp, _, by = value.strip().partition(" ")
    via = in_call.VIA_AGENT if by.strip() == names.WITHDRAW_BY_AGENT else in_call.VIA_CALLER
    return stamp, via
