"""Collects the hook's ``unavailable`` markers from AstDB into the ledger (R36), over AMI.

Runs at every AMI login (after a restart, and after Asterisk or the connection came back). The
ledger entry is written before its markers are deleted: a crash in between repeats an entry at
the next login (the uniqueids show it), never loses one. Without AMI the markers wait in AstDB.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Protocol

import structlog

from callconsent import names
from callconsent.ami import AmiError
from callconsent.clock import Clock, utc_now
from callconsent.evidence.ledger import Ledger, LedgerEntryInvalid
from callconsent.unavailable import rules

log = structlog.get_logger("callconsent.unavailable")


class MarkerAmi(Protocol):
    async def db_tree(self, family: str, key: str) -> list[tuple[str, str]]: ...
    async def db_del(self, family: str, key: str) -> None: ...


class UnavailableCollector:
    def __init__(
        self,
        ami: MarkerAmi,
        ledger_path: Path,
        *,
        anchor_path: Path | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._ami = ami
        self._ledger = Ledger(ledger_path, anchor_path=anchor_path)
        self._clock = clock
        self._lock = asyncio.Lock()  # two logins in a row must not both collect the same keys

    async def collect(self) -> int:
        """Write the markers' entries and delete them; the number of calls accounted for."""
        async with self._lock:
            return await self._collect()

    async def _collect(self) -> int:
        prefix = names.ASTDB_UNAVAILABLE_PREFIX.rstrip("/")
        try:
            found = await self._ami.db_tree(names.ASTDB_FAMILY, prefix)
        except AmiError as exc:
            log.error("unavailable_markers_unreadable", error=str(exc))
            return 0
        markers = []
        for key, value in found:
            marker = rules.parse_marker(key, value)
            if marker is None:
                log.warning("unavailable_marker_invalid", key=key[-80:])
                continue
            markers.append(marker)
        counted = 0
        for entry, keys in rules.entries(markers, now=self._clock()):
            try:
                await asyncio.to_thread(self._ledger.append, entry)
            except (OSError, LedgerEntryInvalid) as exc:  # the markers stay for the next login
                log.error("storage_error", action="unavailable_entry", error=str(exc))
                return counted
            counted += len(keys)
            log.warning(
                "calls_not_asked",
                day=entry["day"],
                route=entry["route"],
                count=entry["count"],
                reason=rules.REASON,
            )
            for key in keys:
                try:
                    await self._ami.db_del(names.ASTDB_FAMILY, _relative(key))
                except AmiError as exc:  # the entry repeats at the next login: uniqueids show it
                    log.warning("unavailable_marker_not_deleted", error=str(exc))
        return counted


def _relative(key: str) -> str:
    """``/callconsent/unavailable/<id>`` (as DBGetTree gives it) -> ``unavailable/<id>``."""
    return names.ASTDB_UNAVAILABLE_PREFIX + key.rstrip("/").rsplit("/", 1)[-1]
