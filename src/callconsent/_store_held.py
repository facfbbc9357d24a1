"""Final ``call`` lines the ledger refused (disk full, the ledger unwritable), held in memory by
the evidence store (:mod:`callconsent.store`) and written, in the order they came, before the
next final line: once the ledger takes lines again, every call the app let go keeps its line.

A held line was never acknowledged: the ledger cuts a failed append back
(:meth:`callconsent.evidence.ledger.Ledger.append_many`), so writing it later adds it once. It
keeps the time it was made; its ``seq`` is the one it gets when written. Held lines live only in
this process: after a crash the app's log (``ledger_line_held``) names each call, and the
calls' recordings, if any, were never started (a recorded call's line is durable before it is
recorded). At most :data:`HELD_LIMIT` lines are held; beyond that the oldest is dropped, logged.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from typing import Any, Final

import structlog

from callconsent.evidence.callers import KeyRow
from callconsent.evidence.group_commit import GroupCommit

__all__ = ["HELD_LIMIT", "HeldLines"]

log = structlog.get_logger("callconsent.store")

HELD_LIMIT: Final = 10_000


class HeldLines:
    def __init__(self, limit: int = HELD_LIMIT) -> None:
        self._lines: deque[tuple[Mapping[str, Any], tuple[KeyRow, ...]]] = deque()
        self._limit = limit
        self._lock = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._lines)

    def hold(self, entry: Mapping[str, Any], keys: tuple[KeyRow, ...]) -> None:
        if len(self._lines) >= self._limit:
            lost, _keys = self._lines.popleft()
            log.error("ledger_line_lost", call_id=_call_id(lost), held=len(self._lines))
        self._lines.append((entry, keys))
        log.error("ledger_line_held", call_id=_call_id(entry), held=len(self._lines))

    async def flush(self, ledger: GroupCommit) -> None:
        """Write the held lines, oldest first, until the ledger refuses one again (it stays
        held, with the ones after it; logged). A line refused as invalid is dropped, logged."""
        if not self._lines:
            return
        written = 0
        async with self._lock:  # one flush at a time keeps the order
            while self._lines:
                entry, keys = self._lines[0]
                try:
                    await ledger.append_async(entry, keys)
                except ValueError as exc:  # refused as it is: it never will be written
                    self._lines.popleft()
                    log.error("ledger_line_lost", call_id=_call_id(entry), error=str(exc))
                    continue
                except OSError as exc:
                    log.error("ledger_still_refused", held=len(self._lines), error=str(exc))
                    break
                self._lines.popleft()
                written += 1
        if written:
            log.info("ledger_lines_written_late", count=written, held=len(self._lines))


def _call_id(entry: Mapping[str, Any]) -> str | None:
    call = entry.get("call")
    return call.get("uniqueid") if isinstance(call, Mapping) else None
