"""Which purposes of a recording remain: the pure sidecar changes that end some purposes and
keep the rest. Ending every consent purpose (R18) is used alike by the live in-call rules
(withdrawal, transfers, the sensitive flag) and the offline withdrawal job; ending the purposes
whose own retention is over (R25) by the purge.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from callconsent.evidence import sidecar
from callconsent.evidence.fsio import parse_stamp, utc_stamp


def without_consent_purposes(doc: dict[str, Any], *, at: datetime) -> dict[str, Any]:
    """``doc`` (a live sidecar with at least one purpose without consent) minus its consent
    purposes, their ``purpose:``/``consent:`` tags and consent purposes in ``agent_purposes``;
    ``delete_after`` from the remaining retention (never later than before). Pure; validated."""
    gone = {
        p["purpose"]
        for p in [*doc["purposes"], *doc.get("agent_purposes", ())]
        if p["consent"] is not None
    }
    return without_purposes(doc, gone, at=at)


def without_purposes(doc: dict[str, Any], gone: Iterable[str], *, at: datetime) -> dict[str, Any]:
    """``doc`` minus the purposes named in ``gone`` (at least one purpose must remain): their
    ``purpose:`` tags and ``agent_purposes`` go too, the ``consent:`` tags when no consent
    purpose remains, and ``delete_after`` follows the remaining retention counted from
    ``recording.started_at`` (never later than before). Pure; validated."""
    out = copy.deepcopy(doc)
    gone = set(gone)
    out["purposes"] = [p for p in doc["purposes"] if p["purpose"] not in gone]
    if not out["purposes"]:
        raise ValueError("no purpose left: delete the recording instead")
    if "agent_purposes" in out:
        out["agent_purposes"] = [p for p in out["agent_purposes"] if p["purpose"] not in gone]
    consent_left = any(p["consent"] is not None for p in out["purposes"])
    out["tags"] = [
        t
        for t in doc["tags"]
        if not (t.startswith("consent:") and not consent_left)
        and t not in {f"purpose:{g}" for g in gone}
    ]
    days = max(int(p["retention_days"]) for p in out["purposes"])
    recomputed = parse_stamp(doc["recording"]["started_at"]) + timedelta(days=days)
    out["delete_after"] = utc_stamp(min(recomputed, parse_stamp(doc["delete_after"])))
    out["updated_at"] = utc_stamp(at)
    sidecar.validate(out)
    return out


def expired_purposes(doc: dict[str, Any], now: datetime) -> tuple[str, ...]:
    """The purposes of a multi-purpose recording whose own retention, counted from
    ``recording.started_at``, has ended by ``now`` while another purpose's has not (R25: each
    purpose ends at its own deadline). Empty when none has, or when all have (then the whole
    recording is due and the purge deletes it). Pure."""
    started = parse_stamp(doc["recording"]["started_at"])
    ended = tuple(
        p["purpose"]
        for p in doc["purposes"]
        if started + timedelta(days=int(p["retention_days"])) <= now
    )
    return ended if len(ended) < len(doc["purposes"]) else ()
