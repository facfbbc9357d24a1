"""The calls' own ledger lines, for the evidence store (:mod:`callconsent.store`): the ``call``
line of every call (its caller sealed under a key of its own, the key stored first), the lines
of calls the app did not handle, and the final lines the ledger refused, held and written
before the next (:mod:`callconsent._store_held`). :class:`callconsent.store.EvidenceStore` takes
these methods from :class:`CallLines`, and holds the state they share with the recordings.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from callconsent._store_held import HeldLines
from callconsent.clock import Clock
from callconsent.consent import CallOutcome
from callconsent.evidence import caller_keys, documents, group_commit, paths
from callconsent.evidence.callers import KeyRow
from callconsent.evidence.documents import CallInfo


class CallLines:
    """The ledger-line half of :class:`callconsent.store.EvidenceStore` (which sets this state)."""

    _callers: caller_keys.Sealer
    _ledger: group_commit.GroupCommit
    _held: HeldLines
    _recordings: dict[str, paths.RecordingPaths]
    _config_sha256: str
    _clock: Clock

    if TYPE_CHECKING:  # the store's own: a recording prepared for a call that will not have it

        async def discard_recording(self, uniqueid: str, at: datetime, reason: str) -> None: ...

    async def write_call(self, outcome: CallOutcome, call: CallInfo, *, final: bool = True) -> None:
        """The call's ``call`` line. ``final`` False: the line written before the call is
        recorded; refused, it is simply not there (the call goes on unrecorded and its final
        line follows). A refused final line is held and written before the next one. A final
        line saying the call is not recorded discards a recording prepared for it (the line
        before was refused, or the caller hung up meanwhile): a tombstone, written or not."""
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
        keys = () if key is None else (key,)
        if not final:
            await self._ledger.append_async(entry, keys)
            return
        try:
            await self._append_final(entry, keys)
        finally:
            if not outcome.recorded_purposes and call.uniqueid in self._recordings:
                await self.discard_recording(call.uniqueid, self._clock(), outcome.reason)

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
        await self._append_final(entry, () if key is None else (key,))

    async def _append_final(self, entry: dict[str, Any], keys: tuple[KeyRow, ...]) -> None:
        """Append a call's final line after the lines held earlier; refused (disk full, the
        ledger unwritable), it is held too, and the error raised for the caller to log."""
        await self._held.flush(self._ledger)
        try:
            await self._ledger.append_async(entry, keys)
        except OSError:
            self._held.hold(entry, keys)
            raise
