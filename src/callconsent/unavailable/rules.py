"""Calls the app never saw, as ledger entries: pure (no I/O).

While the app is down (or not answering) the hook sends a call on unrecorded with status
``unavailable`` and marks it in AstDB: ``callconsent/unavailable/<uniqueid>`` = ``<UTC time>
<route>`` (``dialplan/callconsent.conf``). At its next AMI login the app reads the markers and
writes one ``unavailable`` ledger entry per UTC day and route with the number of calls and their
uniqueids, so the DPO can see how many callers were never asked. Markers with a key or value the
hook cannot have written are skipped (and counted), never trusted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

from callconsent.evidence.fsio import parse_stamp, utc_stamp

ENTRY_TYPE: Final = "unavailable"
REASON: Final = "app_unavailable"
SOURCE: Final = "dialplan"
_UNIQUEID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_ROUTE: Final = re.compile(r"[A-Za-z0-9_-]{0,64}")


@dataclass(frozen=True, slots=True)
class Marker:
    key: str  # the AstDB key as Asterisk gives it, to delete it once written
    uniqueid: str
    at: datetime
    route: str | None


def parse_marker(key: str, value: str) -> Marker | None:
    """One AstDB entry (``/callconsent/unavailable/<uniqueid>``, ``<stamp> <route>``), or None
    when it is not one the hook writes."""
    uniqueid = key.rstrip("/").rsplit("/", 1)[-1]
    if not _UNIQUEID.fullmatch(uniqueid) or ".." in uniqueid:
        return None
    stamp, _sep, route = value.strip().partition(" ")
    try:
        at = parse_stamp(stamp)
    except ValueError:
        return None
    if not _ROUTE.fullmatch(route):
        return None
    return Marker(key, uniqueid, at, route or None)


def entries(markers: Iterable[Marker], *, now: datetime) -> list[tuple[dict[str, Any], list[str]]]:
    """One ledger entry per (UTC day, route), oldest day first, each with the AstDB keys it
    accounts for (delete them only once the entry is written)."""
    groups: dict[tuple[date, str], list[Marker]] = {}
    for marker in markers:
        day = marker.at.astimezone(UTC).date()
        groups.setdefault((day, marker.route or ""), []).append(marker)
    out = []
    for (day, route), group in sorted(groups.items()):
        group.sort(key=lambda m: (m.at, m.uniqueid))
        out.append((_entry(day, route or None, group, now), [m.key for m in group]))
    return out


def _entry(day: date, route: str | None, group: Sequence[Marker], now: datetime) -> dict[str, Any]:
    return {
        "type": ENTRY_TYPE,
        "at": utc_stamp(now),
        "day": day.isoformat(),
        "route": route,
        "status": "unavailable",
        "reason": REASON,
        "count": len(group),
        "first_at": utc_stamp(group[0].at),
        "last_at": utc_stamp(group[-1].at),
        "calls": [m.uniqueid for m in group],
        "source": SOURCE,
    }
