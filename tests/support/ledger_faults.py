"""A ledger that refuses lines on purpose: the evidence store's group-commit writer made to fail
its next appends with ``ENOSPC`` (as a full disk does), for the fail-safe tests of the adapters
and the store. The store's own code runs as it is; only the writer's answer is replaced."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Mapping, Sequence
from typing import Any

from callconsent.evidence.callers import KeyRow
from callconsent.store import EvidenceStore


class RefusingLedger:
    """Refuses the next ``times`` appends of ``store``'s ledger writer; counts them."""

    def __init__(self, store: EvidenceStore, times: int = 1) -> None:
        self.left = times
        self.refused: list[Mapping[str, Any]] = []
        writer = store._ledger  # white-box: the one writer every live append goes through
        self._real = writer.append_async
        writer.append_async = self._append  # type: ignore[method-assign]

    async def _append(
        self, record: Mapping[str, Any], keys: Sequence[KeyRow] = ()
    ) -> dict[str, Any]:
        if self.left > 0:
            self.left -= 1
            self.refused.append(record)
            raise OSError(errno.ENOSPC, "No space left on device (test)")
        return await self._real(record, keys)


class GatedLedger:
    """Holds every append of ``store``'s ledger writer until :attr:`gate` is set (a slow
    fsync); :attr:`waiting` counts the appends that reached it."""

    def __init__(self, store: EvidenceStore) -> None:
        self.gate = asyncio.Event()
        self.waiting = 0
        writer = store._ledger  # white-box, as RefusingLedger
        self._real = writer.append_async
        writer.append_async = self._append  # type: ignore[method-assign]

    async def _append(
        self, record: Mapping[str, Any], keys: Sequence[KeyRow] = ()
    ) -> dict[str, Any]:
        self.waiting += 1
        await self.gate.wait()
        return await self._real(record, keys)
