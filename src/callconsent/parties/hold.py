"""Hold, parking and a caller left alone (R2, straffeloven § 263): the pure rules.

While a party holds the call, the organisation is not in a conversation with the caller: the
caller's microphone may pick up talk between others, the agent may talk to colleagues, and the
caller hears music on hold. So the recording is muted in BOTH directions (AMI
``MixMonitorMute``; the file keeps its timeline with silence) from the ``Hold`` event of any
party on the caller's bridge, the caller included, until the last holder's ``Unhold``. The same
holds while the caller is alone in a bridge (the agent left, nobody joined yet: ``alone``) or
sits in a holding bridge such as a parking lot (``parked``): nobody of the organisation listens.

This module is I/O-free: :func:`pause_for` decides from a bridge's members and the holders; the
tracker (:mod:`callconsent.parties.tracker`) turns changes into :class:`Mute` / :class:`Unmute`
decisions, and :func:`started` / :func:`ended` give the sidecar's ``pauses`` list (start, end,
why, who held), which the adapter writes. An open pause (``ended_at`` null) lasted until the
recording ended.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from callconsent.evidence import sidecar
from callconsent.evidence.fsio import utc_stamp

PauseReason = Literal["hold", "alone", "parked"]
HeldBy = Literal["caller", "agent", "external"]

#: Bridge technologies and types where nobody talks with anybody (parking lots, holding).
HOLDING_BRIDGES: Final = frozenset({"holding_bridge", "parking", "holding"})


@dataclass(frozen=True, slots=True)
class Pause:
    """Why the caller's recording is muted now; ``held_by``/``agent_id`` for ``hold`` only."""

    reason: PauseReason
    held_by: HeldBy | None = None
    agent_id: str | None = None


@dataclass(frozen=True, slots=True)
class Mute:
    """Mute ``caller``'s recording in both directions (and list the pause in its sidecar)."""

    caller: str
    pause: Pause


@dataclass(frozen=True, slots=True)
class Unmute:
    """The organisation is back in the conversation: unmute ``caller``'s recording."""

    caller: str


def is_holding_bridge(technology: str, bridge_type: str) -> bool:
    """AMI ``BridgeTechnology``/``BridgeType`` of a bridge whose members do not talk."""
    return technology.lower() in HOLDING_BRIDGES or bridge_type.lower() in HOLDING_BRIDGES


def pause_for(
    caller: str,
    members: Mapping[str, str],
    holders: Mapping[str, str],
    *,
    holding_bridge: bool,
    is_internal: Callable[[str], bool],
    agent_id_of: Callable[[str], str | None],
) -> Pause | None:
    """The pause ``caller`` is in, given its bridge's ``members`` (uniqueid -> channel, the
    caller included), the channels on hold (``holders``, uniqueid -> channel) and whether the
    bridge is a holding bridge; None when the caller is in a conversation. ``is_internal`` and
    ``agent_id_of`` classify a channel name (the tracker's classifier)."""
    if holding_bridge:
        return Pause("parked")
    if caller in holders:
        return Pause("hold", "caller")
    for uniqueid, channel in members.items():
        if uniqueid != caller and uniqueid in holders:
            if is_internal(channel):
                return Pause("hold", "agent", agent_id_of(channel))
            return Pause("hold", "external")
    if not any(uniqueid != caller for uniqueid in members):
        return Pause("alone")
    return None


@dataclass(frozen=True, slots=True)
class PauseChange:
    """``outcome``: ``paused``/``resumed`` (write ``doc``) or ``nothing_to_do``."""

    outcome: Literal["paused", "resumed", "nothing_to_do"]
    doc: dict[str, Any] | None = None

    @property
    def writes(self) -> bool:
        return self.doc is not None


NOTHING: Final = PauseChange("nothing_to_do")


def started(doc: Mapping[str, Any] | None, *, at: datetime, pause: Pause) -> PauseChange:
    """``doc`` with a new open pause; nothing when one is open already, or the recording has
    stopped or was deleted."""
    if not _live(doc) or paused(doc):
        return NOTHING
    assert doc is not None
    new = copy.deepcopy(dict(doc))
    new["pauses"] = [
        *doc.get("pauses", []),
        {
            "started_at": utc_stamp(at),
            "ended_at": None,
            "reason": pause.reason,
            "held_by": pause.held_by,
            "agent_id": pause.agent_id,
        },
    ]
    new["updated_at"] = utc_stamp(at)
    sidecar.validate(new)
    return PauseChange("paused", new)


def ended(doc: Mapping[str, Any] | None, *, at: datetime) -> PauseChange:
    """``doc`` with its open pause ended at ``at``; nothing when none is open."""
    if not _live(doc) or not paused(doc):
        return NOTHING
    assert doc is not None
    new = copy.deepcopy(dict(doc))
    new["pauses"][-1]["ended_at"] = utc_stamp(at)
    new["updated_at"] = utc_stamp(at)
    sidecar.validate(new)
    return PauseChange("resumed", new)


def _live(doc: Mapping[str, Any] | None) -> bool:
    return doc is not None and doc["state"] != sidecar.State.TOMBSTONE


def paused(doc: Mapping[str, Any] | None) -> bool:
    """The sidecar lists an open pause: the recording was muted when it was written."""
    pauses = doc.get("pauses", []) if doc is not None else []
    return bool(pauses) and pauses[-1]["ended_at"] is None
