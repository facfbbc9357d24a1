"""The ledger entries, in one place: pure builders whose shapes are fixed by
``schemas/ledger-entry.schema.json``. None carries caller data: a call is named by its uniqueid.

- :func:`call_change`: the common shape of every change to one call's recording during or after
  the call (``agent_decision``, ``withdrawn``, ``recording_stopped``, ``flagged_sensitive``, ...);
  each feature's rules add their own fields through it.
- :func:`recording_final_entry`, :func:`deleted_entry`: a recording finalised or deleted.

The ``call`` entries themselves are built from the call's outcome in :mod:`.documents`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from callconsent.evidence.fsio import utc_stamp


def call_change(
    entry_type: str,
    *,
    uniqueid: str,
    at: datetime,
    purposes: Iterable[str],
    kept_purposes: Iterable[str],
    recording: str | None,
    source: str,
    **fields: Any,
) -> dict[str, Any]:
    """A ``entry_type`` entry: what changed for call ``uniqueid``'s purposes at ``at``.
    ``purposes`` ended (or were decided), ``kept_purposes`` go on; ``fields`` are the type's own
    (outcome, reason, via, ...), in the order given, before ``recording`` and ``source``."""
    return {
        "type": entry_type,
        "at": utc_stamp(at),
        "call": {"uniqueid": uniqueid},
        **fields,
        "purposes": list(purposes),
        "kept_purposes": list(kept_purposes),
        "recording": recording,
        "source": source,
    }


def recording_final_entry(
    final: Mapping[str, Any], *, at: datetime, source: str, header_repaired: bool = False
) -> dict[str, Any]:
    """The ``recording_final`` record for a final sidecar document (no personal data)."""
    entry: dict[str, Any] = {
        "type": "recording_final",
        "at": utc_stamp(at),
        "call": {"uniqueid": final["call"]["uniqueid"]},
        "recording": dict(final["recording"]),
        "source": source,
    }
    if header_repaired:
        entry["header_repaired"] = True
    return entry


def deleted_entry(tomb: Mapping[str, Any], *, source: str) -> dict[str, Any]:
    """The ``deleted`` record for a tombstone document (``reason`` e.g. ``retention``)."""
    return {
        "type": "deleted",
        "at": tomb["deleted_at"],
        "call": {"uniqueid": tomb["call"]["uniqueid"]},
        "recording": {"file": tomb["recording"]["file"], "sha256": tomb["recording"]["sha256"]},
        "reason": tomb["reason"],
        "source": source,
    }
