"""An objection to documentation during the call (Art 21, R30): the rules, as pure functions.

A documentation recording on a 6(1)(e)/(f) basis may be objected to at any time: by the
objection digit from the notice until the call is bridged, by the caller's feature code while
bridged, or by the agent's feature code when the caller objects orally ("sig det til
medarbejderen"). The route's ``objection.action`` decides what follows:

* ``do_not_record``: documentation ends at once. With nothing else recorded, the recording stops
  (the adapter sends ``StopMixMonitor`` first) and the partial file is deleted (tombstone
  ``objected``); with a consent purpose the caller gave (training) it goes on for that purpose
  only, which keeps its own basis and retention (``ended_purposes`` names documentation);
* ``record_with_grounds``: the recording is kept and the sidecar's ``objection`` names the
  documented compelling grounds (Art 21(1)).

Either way the sidecar's ``objection`` says when, how (``via``) and by whom, and the ledger gets
an ``objection`` entry (ids only). A second objection, a call without documentation, or a
recording already deleted changes nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from callconsent.evidence import sidecar
from callconsent.evidence.fsio import parse_stamp, utc_stamp

ENTRY_TYPE: Final = "objection"
TOMBSTONE_REASON: Final = "objected"
PURPOSE: Final = "documentation"
SOURCE: Final = "app"

Action = Literal["do_not_record", "record_with_grounds"]
#: How the objection was made: the agent's code (the caller said it), the caller's code while
#: bridged, the objection digit before the bridge.
Via = Literal["agent_dtmf", "caller_feature", "caller_digit"]
VIAS: Final = ("agent_dtmf", "caller_feature", "caller_digit")
Outcome = Literal["deleted", "consent_kept", "kept_with_grounds", "nothing_to_object"]


@dataclass(frozen=True, slots=True)
class Objecting:
    """``deleted`` (stop MixMonitor, tombstone), ``consent_kept`` (write ``doc``; recording goes
    on for consent purposes), ``kept_with_grounds`` (write ``doc``), ``nothing_to_object``."""

    outcome: Outcome
    doc: dict[str, Any] | None = None

    @property
    def writes(self) -> bool:
        return self.outcome != "nothing_to_object"

    @property
    def stops_recording(self) -> bool:
        return self.outcome == "deleted"


def object_to(
    doc: Mapping[str, Any] | None,
    *,
    at: datetime,
    action: Action,
    via: Via,
    agent_id: str | None,
    grounds_ref: str | None = None,
) -> Objecting:
    """What an objection does to ``doc`` (a sidecar; None: there is none)."""
    if doc is None or doc["state"] == sidecar.State.TOMBSTONE or doc.get("objection"):
        return Objecting("nothing_to_object")
    if not any(p["purpose"] == PURPOSE and p["consent"] is None for p in doc["purposes"]):
        return Objecting("nothing_to_object")
    record = {
        "at": utc_stamp(at),
        "via": via,
        "agent_id": agent_id,
        "action": action,
        "grounds_ref": grounds_ref if action == "record_with_grounds" else None,
    }
    if action == "record_with_grounds":
        new = copy.deepcopy(dict(doc))
        new["objection"] = record
        new["updated_at"] = utc_stamp(at)
        sidecar.validate(new)
        return Objecting("kept_with_grounds", new)
    if not any(p["consent"] is not None for p in doc["purposes"]):
        return Objecting("deleted")
    new = _without_documentation(doc, at=at)
    new["objection"] = record
    sidecar.validate(new)
    return Objecting("consent_kept", new)


def _without_documentation(doc: Mapping[str, Any], *, at: datetime) -> dict[str, Any]:
    out = copy.deepcopy(dict(doc))
    out["purposes"] = [p for p in doc["purposes"] if p["purpose"] != PURPOSE]
    if "agent_purposes" in out:
        out["agent_purposes"] = [p for p in out["agent_purposes"] if p["purpose"] != PURPOSE]
    out["tags"] = [t for t in doc["tags"] if t != f"purpose:{PURPOSE}"]
    out["ended_purposes"] = [
        *doc.get("ended_purposes", []),
        {"purpose": PURPOSE, "ended_at": utc_stamp(at), "reason": TOMBSTONE_REASON},
    ]
    days = max(int(p["retention_days"]) for p in out["purposes"])
    recomputed = parse_stamp(doc["recording"]["started_at"]) + timedelta(days=days)
    out["delete_after"] = utc_stamp(min(recomputed, parse_stamp(doc["delete_after"])))
    out["updated_at"] = utc_stamp(at)
    return out


def objection_entry(
    *,
    uniqueid: str,
    at: datetime,
    done: Objecting,
    action: Action,
    via: Via,
    agent_id: str | None,
    recording: str | None,
    source: str = SOURCE,
) -> dict[str, Any]:
    """The ``objection`` ledger entry (ids only, no caller data): who and how."""
    return {
        "type": ENTRY_TYPE,
        "at": utc_stamp(at),
        "call": {"uniqueid": uniqueid},
        "purpose": PURPOSE,
        "action": action,
        "outcome": done.outcome,
        "recording": recording,
        "via": via,
        "by": "agent" if via == "agent_dtmf" else "caller",
        "agent_id": agent_id,
        "source": source,
    }
