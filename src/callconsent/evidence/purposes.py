"""Which purposes of a recording stand without consent (R18): the pure sidecar change that ends
every consent purpose and keeps the rest. Used alike by the live in-call rules (withdrawal,
transfers, the sensitive flag) and the offline withdrawal job.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

from callconsent.evidence import sidecar
from callconsent.evidence.fsio import parse_stamp, utc_stamp


def without_consent_purposes(doc: dict[str, Any], *, at: datetime) -> dict[str, Any]:
    """``doc`` (a live sidecar with at least one purpose without consent) minus its consent
    purposes, their ``purpose:``/``consent:`` tags and consent purposes in ``agent_purposes``;
    ``delete_after`` from the remaining retention (never later than before). Pure; validated."""
    out = copy.deepcopy(doc)
    gone = {p["purpose"] for p in doc["purposes"] if p["consent"] is not None}
    out["purposes"] = [p for p in doc["purposes"] if p["consent"] is None]
    if not out["purposes"]:
        raise ValueError("no purpose without consent left: delete the recording instead")
    if "agent_purposes" in out:
        out["agent_purposes"] = [p for p in out["agent_purposes"] if p["consent"] is None]
    out["tags"] = [
        t
        for t in doc["tags"]
        if not t.startswith("consent:") and t not in {f"purpose:{g}" for g in gone}
    ]
    days = max(int(p["retention_days"]) for p in out["purposes"])
    recomputed = parse_stamp(doc["recording"]["started_at"]) + timedelta(days=days)
    out["delete_after"] = utc_stamp(min(recomputed, parse_stamp(doc["delete_after"])))
    out["updated_at"] = utc_stamp(at)
    sidecar.validate(out)
    return out
