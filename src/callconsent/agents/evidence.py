"""The agent's consent in the evidence (R15, R19): pure functions over sidecar documents and the
``agent_decision`` ledger entry. No I/O, no clock.

A purpose that needs the agent (training) is never listed in a sidecar's ``purposes`` until the
agent has consented. Until then it waits in ``agent_purposes`` with ``agent_consent.status``
``pending``: every reader that goes by ``purposes``, ``tags`` or ``delete_after`` (retention,
training pool, lifecycle index, exports) sees only what is lawfully recorded, so a decision that
never arrived (app down at the bridge, a queue without the agent gosub) can never count as
consent. The agent's answer then either moves it into ``purposes`` (``given``, with the agent's
id and the time of their standing consent) or leaves it in ``agent_purposes`` as ``refused``.

``reconcile``/``verify`` rule: a sidecar whose ``agent_purposes`` still holds ``pending`` after the
call ended is resolved with :func:`resolve` and reason ``agent_unknown`` (the same as refused); a
recording with no lawful purpose left (``purposes`` empty) is deleted with a tombstone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from callconsent.evidence import entries, sidecar
from callconsent.evidence.fsio import copy_document, parse_stamp, utc_stamp

#: The agent's gosub gave up waiting for the app's answer and whispered that nothing is recorded
#: for training: whatever the app decided later, the agent-consent purposes are refused.
NOT_TOLD: Final = "agent_not_told"


@dataclass(frozen=True, slots=True)
class AgentEvidence:
    """Who answered and what their standing consent was when the call was bridged."""

    agent_id: str | None  # None: no (valid) agent was ever reported
    consent: str  # given | refused | unknown (as the registry said)
    changed_at: datetime | None  # when the agent's registry entry last changed
    decided_at: datetime  # when the app decided at the bridge

    def as_dict(self, status: str, reason: str) -> dict[str, Any]:
        return {
            "status": status,
            "reason": reason,
            "agent_id": self.agent_id,
            "agent_consent_changed_at": None
            if self.changed_at is None
            else utc_stamp(self.changed_at),
            "decided_at": utc_stamp(self.decided_at),
        }


PENDING: dict[str, Any] = {
    "status": "pending",
    "reason": "awaiting_agent",
    "agent_id": None,
    "agent_consent_changed_at": None,
    "decided_at": None,
}


def tags_of(doc: Mapping[str, Any], agent_id: str | None = None) -> list[str]:
    """``purpose:<p>`` per listed purpose, ``consent:<status>`` once per status of a listed
    consent purpose, ``agent:<id>`` when the answering agent is known (as evidence.tags)."""
    out = [f"purpose:{p['purpose']}" for p in doc["purposes"]]
    for purpose in doc["purposes"]:
        consent = purpose.get("consent")
        if consent is not None and f"consent:{consent['status']}" not in out:
            out.append(f"consent:{consent['status']}")
    if agent_id:
        out.append(f"agent:{agent_id}")
    return out


def _delete_after(doc: Mapping[str, Any]) -> str:
    """The longest retention of the listed purposes. With none listed yet (training only, its
    recording not started) the pending purposes' retention keeps a purge from racing the
    agent's decision; nothing is recorded meanwhile."""
    started = parse_stamp(doc["recording"]["started_at"])
    purposes = doc["purposes"] or [
        p for p in doc.get("agent_purposes", []) if p["agent_consent"]["status"] == "pending"
    ]
    days = max((int(p["retention_days"]) for p in purposes), default=0)
    return utc_stamp(started + timedelta(days=days))


def hold_for_agent(doc: Mapping[str, Any], pending: Iterable[str]) -> dict[str, Any]:
    """The ``recording`` sidecar with the ``pending`` purposes moved out of ``purposes`` into
    ``agent_purposes`` (status ``pending``); tags and ``delete_after`` from what is left."""
    waiting = set(pending)
    out = copy_document(dict(doc))
    out["agent_purposes"] = [
        {**p, "agent_consent": dict(PENDING)} for p in out["purposes"] if p["purpose"] in waiting
    ]
    out["purposes"] = [p for p in out["purposes"] if p["purpose"] not in waiting]
    out["tags"] = tags_of(out)
    out["delete_after"] = _delete_after(out)
    return out


def resolve(
    doc: Mapping[str, Any], *, given: bool, reason: str, agent: AgentEvidence
) -> dict[str, Any]:
    """Apply the agent's decision: ``given`` moves every pending purpose into ``purposes``;
    otherwise they stay in ``agent_purposes`` as ``refused``. Updates tags, ``delete_after``
    and ``updated_at``. A sidecar with nothing pending is returned unchanged."""
    out = copy_document(dict(doc))
    waiting = [
        p for p in out.get("agent_purposes", []) if p["agent_consent"]["status"] == "pending"
    ]
    if not waiting:
        return out
    status = "given" if given else "refused"
    decided = [{**p, "agent_consent": agent.as_dict(status, reason)} for p in waiting]
    others = [p for p in out["agent_purposes"] if p not in waiting]
    if given:
        out["purposes"] = out["purposes"] + decided
        out["agent_purposes"] = others
    else:
        out["agent_purposes"] = others + decided
    out["tags"] = tags_of(out, agent.agent_id)
    out["delete_after"] = _delete_after(out)
    out["updated_at"] = utc_stamp(agent.decided_at)
    return out


def pending_purposes(doc: Mapping[str, Any]) -> list[str]:
    return [
        p["purpose"]
        for p in doc.get("agent_purposes", [])
        if p["agent_consent"]["status"] == "pending"
    ]


def decision_entry(
    *,
    uniqueid: str,
    agent: AgentEvidence,
    status: str,
    reason: str,
    purposes: Iterable[str],
    kept_purposes: Iterable[str],
    recording: str | None,
) -> dict[str, Any]:
    """The ``agent_decision`` ledger entry: what the agent's consent did to one call's recording.
    No caller data: the call by uniqueid, the agent by id."""
    return entries.call_change(
        "agent_decision",
        uniqueid=uniqueid,
        at=agent.decided_at,
        purposes=purposes,
        kept_purposes=kept_purposes,
        recording=recording,
        source="app",
        agent={
            "id": agent.agent_id,
            "consent": agent.consent,
            "changed_at": None if agent.changed_at is None else utc_stamp(agent.changed_at),
        },
        status=status,
        reason=reason,
    )


@dataclass(frozen=True, slots=True)
class NotTold:
    """What the agent not hearing the app's answer in time does to one call's sidecar.

    ``outcome``: ``deleted`` (only agent-consent purposes were recorded or waited: tombstone),
    ``refused`` (write ``doc``: they leave ``purposes`` for ``agent_purposes`` as refused, the
    rest stays), ``nothing`` (none was recorded or waiting: write nothing). ``refused``: those
    purposes; ``kept``: the purposes the recording is still for; ``agent_id``: the agent whose
    consent had added them (None if none had)."""

    outcome: Literal["deleted", "refused", "nothing"]
    refused: tuple[str, ...]
    kept: tuple[str, ...]
    doc: dict[str, Any] | None = None
    agent_id: str | None = None

    @property
    def writes(self) -> bool:
        return self.outcome != "nothing"


def not_told(doc: Mapping[str, Any] | None, *, at: datetime) -> NotTold:
    """The agent's gosub whispered "not for training" (the app's answer came after its wait,
    R15): every purpose the agent's consent added to ``purposes``, and any still pending, is
    refused with reason :data:`NOT_TOLD`; what was recorded without the agent stays."""
    if doc is None or doc["state"] == sidecar.State.TOMBSTONE:
        return NotTold("nothing", (), ())
    added = [p for p in doc["purposes"] if "agent_consent" in p]
    kept = [p for p in doc["purposes"] if "agent_consent" not in p]
    pending = [
        p for p in doc.get("agent_purposes", []) if p["agent_consent"]["status"] == "pending"
    ]
    kept_names = tuple(p["purpose"] for p in kept)
    if not added and not pending:
        return NotTold("nothing", (), kept_names)
    agent_id = next((p["agent_consent"]["agent_id"] for p in added), None)
    refused = tuple(p["purpose"] for p in added + pending)
    if not kept:  # nothing was recorded without the agent: the recording goes
        return NotTold("deleted", refused, (), None, agent_id)
    out = copy_document(dict(doc))
    stamp = utc_stamp(at)
    now_refused = [
        {
            **p,
            "agent_consent": {
                **p["agent_consent"],
                "status": "refused",
                "reason": NOT_TOLD,
                "decided_at": stamp,
            },
        }
        for p in copy_document(added + pending)
    ]
    others = [p for p in out.get("agent_purposes", []) if p["purpose"] not in refused]
    out["purposes"] = copy_document(kept)
    out["agent_purposes"] = others + now_refused
    out["tags"] = tags_of(out, agent_id)
    out["delete_after"] = _delete_after(out)
    out["updated_at"] = stamp
    return NotTold("refused", refused, kept_names, out, agent_id)
