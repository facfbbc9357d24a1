"""The agent flags a call as containing health/CPR data (R22): the rules, as pure functions.
No I/O, no clock.

The agent presses the flag code (default ``*7``) while bridged; ``[callconsent-sensitive]`` in
``dialplan/callconsent.conf`` tells the app. What the flag does to the call's sidecar
(:func:`flag`):

* every consent-based purpose (training: listed in ``purposes`` or still waiting for the agent
  in ``agent_purposes``) leaves the recording, so the call leaves the training pool. The sidecar
  transformation is the withdrawal's
  (:func:`callconsent.evidence.purposes.without_consent_purposes`): the remaining purposes keep
  their own basis and retention;
* with nothing recorded without consent left, the recording is deleted (tombstone, reason
  ``sensitive``);
* otherwise the sidecar gets ``sensitive: true``, ``restricted: true`` (a restricted access
  role: no training-role listing or playback) and the tag ``flag:sensitive``.

A second flag changes nothing (``already_flagged``). The ledger entry ``flagged_sensitive``
(:func:`flagged_entry`) carries ids only: the call's uniqueid, the agent id, the time and the
purposes removed.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from callconsent.evidence import sidecar
from callconsent.evidence.fsio import utc_stamp
from callconsent.evidence.purposes import without_consent_purposes

TAG: Final = "flag:sensitive"
REASON: Final = sidecar.TombstoneReason.SENSITIVE.value  # tombstone: nothing left
ENTRY_TYPE: Final = "flagged_sensitive"
SOURCE: Final = "app"

Outcome = Literal["restricted", "deleted", "already_flagged", "nothing_to_flag"]


@dataclass(frozen=True, slots=True)
class Flagging:
    """What the flag does to one call's sidecar.

    ``outcome``: ``restricted`` (write ``doc``), ``deleted`` (tombstone the recording: only
    consent purposes were recorded), ``already_flagged`` / ``nothing_to_flag`` (flagged before,
    or no live recording: write nothing).
    """

    outcome: Outcome
    removed: tuple[str, ...]
    kept: tuple[str, ...]
    doc: dict[str, Any] | None = None

    @property
    def writes(self) -> bool:
        return self.outcome in ("restricted", "deleted")


def flag(doc: Mapping[str, Any] | None, *, at: datetime) -> Flagging:
    """The sensitive flag applied to ``doc`` (a sidecar; None: there is none)."""
    if doc is None or doc["state"] == sidecar.State.TOMBSTONE:
        return Flagging("nothing_to_flag", (), ())
    kept = tuple(p["purpose"] for p in doc["purposes"] if p["consent"] is None)
    if doc.get("sensitive") is True:
        return Flagging("already_flagged", (), kept)
    listed = [p["purpose"] for p in doc["purposes"] if p["consent"] is not None]
    waiting = [p["purpose"] for p in doc.get("agent_purposes", []) if p["consent"] is not None]
    removed = tuple(dict.fromkeys(listed + waiting))
    if not kept:
        return Flagging("deleted", removed, ())
    new = without_consent_purposes(dict(doc), at=at) if removed else copy.deepcopy(dict(doc))
    new["sensitive"] = True
    new["restricted"] = True
    if TAG not in new["tags"]:
        new["tags"] = [*new["tags"], TAG]
    new["updated_at"] = utc_stamp(at)
    sidecar.validate(new)
    return Flagging("restricted", removed, kept, new)


def flagged_entry(
    *,
    uniqueid: str,
    agent_id: str | None,
    at: datetime,
    flagging: Flagging,
    recording: str | None,
    source: str = SOURCE,
) -> dict[str, Any]:
    """The ``flagged_sensitive`` ledger entry (ids only, no caller data)."""
    return {
        "type": ENTRY_TYPE,
        "at": utc_stamp(at),
        "call": {"uniqueid": uniqueid},
        "agent": agent_id,
        "removed_purposes": list(flagging.removed),
        "kept_purposes": list(flagging.kept),
        "recording": recording,
        "outcome": flagging.outcome,
        "source": source,
    }
