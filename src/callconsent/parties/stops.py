"""What a party change does to a running recording's sidecar (R1, R15 at transfers): pure.

Two kinds of stop, decided by :mod:`callconsent.parties.tracker` and carried out by
:mod:`callconsent.parties.adapter` (which also stops MixMonitor when the recording stops):

* ``scope="all"`` (reason ``org_left_call``): every purpose stops. The recording ends here:
  ``recording.stopped_at`` and ``recording.stop_reason`` say when and why; what was recorded
  before (with the organisation on the call, and every consent in place) is kept under its
  purposes as recorded.
* ``scope="consent"`` (reasons ``agent_not_consenting``, ``party_not_consenting``): the consent
  purposes (training) end. With a purpose recorded without consent from the start
  (documentation) the recording goes on for it alone: the consent purposes leave the sidecar as
  on a withdrawal (:func:`callconsent.evidence.purposes.without_consent_purposes`; R18: the
  remaining purpose keeps its own basis and retention), and ``ended_purposes`` says which ended,
  when, why and for which agent. Without one, the recording stops as above (``stopped_at``,
  ``stop_reason``); the file recorded while every party had consented is kept.

A stop on a recording already stopped, a tombstone or a call without a recording changes
nothing (``nothing_to_stop``), so a repeated event never writes twice.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from callconsent.evidence import entries, sidecar
from callconsent.evidence.fsio import utc_stamp
from callconsent.evidence.purposes import without_consent_purposes

ENTRY_TYPE: Final = "recording_stopped"
SOURCE: Final = "app"

Scope = Literal["all", "consent"]
Outcome = Literal["stopped", "consent_ended", "nothing_to_stop"]


@dataclass(frozen=True, slots=True)
class Stop:
    """``outcome``: ``stopped`` (write ``doc``; MixMonitor must stop), ``consent_ended`` (write
    ``doc``; the recording goes on), ``nothing_to_stop`` (write nothing)."""

    outcome: Outcome
    stopped: tuple[str, ...]
    kept: tuple[str, ...]
    doc: dict[str, Any] | None = None

    @property
    def writes(self) -> bool:
        return self.outcome != "nothing_to_stop"

    @property
    def stops_recording(self) -> bool:
        return self.outcome == "stopped"


def stop(
    doc: Mapping[str, Any] | None,
    *,
    at: datetime,
    scope: Scope,
    reason: str,
    agent_id: str | None = None,
) -> Stop:
    """The stop applied to ``doc`` (a sidecar; None: there is none)."""
    if doc is None or doc["state"] == sidecar.State.TOMBSTONE:
        return Stop("nothing_to_stop", (), ())
    if doc["recording"].get("stop_reason") is not None:
        return Stop("nothing_to_stop", (), _purposes(doc))
    consent = tuple(p["purpose"] for p in doc["purposes"] if p["consent"] is not None)
    waiting = tuple(p["purpose"] for p in doc.get("agent_purposes", []) if p["consent"] is not None)
    plain = tuple(p["purpose"] for p in doc["purposes"] if p["consent"] is None)
    stamp = utc_stamp(at)
    if scope == "consent" and plain:
        ended = tuple(dict.fromkeys(consent + waiting))
        if not ended:
            return Stop("nothing_to_stop", (), plain)
        new = without_consent_purposes(dict(doc), at=at)
        new["ended_purposes"] = [
            *doc.get("ended_purposes", []),
            *(
                {"purpose": p, "ended_at": stamp, "reason": reason, "agent_id": agent_id}
                for p in ended
            ),
        ]
        sidecar.validate(new)
        return Stop("consent_ended", ended, plain, new)
    if not consent + plain or (scope == "consent" and not consent):
        return Stop("nothing_to_stop", (), plain)  # nothing recorded yet (waiting for the agent)
    new = copy.deepcopy(dict(doc))
    new["recording"]["stopped_at"] = stamp
    new["recording"]["stop_reason"] = reason
    new["updated_at"] = stamp
    sidecar.validate(new)
    return Stop("stopped", _purposes(doc), (), new)


def stopped_entry(
    *,
    uniqueid: str,
    at: datetime,
    done: Stop,
    reason: str,
    party: Literal["internal", "external"],
    agent_id: str | None,
    recording: str | None,
    source: str = SOURCE,
) -> dict[str, Any]:
    """The ``recording_stopped`` ledger entry (ids only, no caller data)."""
    return entries.call_change(
        ENTRY_TYPE,
        uniqueid=uniqueid,
        at=at,
        purposes=done.stopped,
        kept_purposes=done.kept,
        recording=recording,
        source=source,
        reason=reason,
        outcome=done.outcome,
        party={"kind": party, "agent_id": agent_id},
    )


def _purposes(doc: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(p["purpose"] for p in doc["purposes"])
