"""Turns a call's outcome into evidence documents: the sidecar and the ledger entry.

Pure functions: no I/O, no clock. Caller-controlled text (caller number and name, dialled number)
is copied into the documents verbatim as data and is never used for anything else. The sidecar
(which goes with its recording) holds the caller in clear; the ledger entry only sealed
(:mod:`callconsent.evidence.callers`).
The shapes are fixed by ``schemas/sidecar.schema.json`` and ``schemas/ledger-entry.schema.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from callconsent import __version__
from callconsent.consent import CallOutcome, NoticeEvidence, PurposeOutcome
from callconsent.evidence import callers, sidecar
from callconsent.evidence.fsio import utc_stamp
from callconsent.evidence.paths import RecordingPaths

SOFTWARE = {"name": "callconsent", "version": __version__}


@dataclass(frozen=True, slots=True)
class CallInfo:
    """What Asterisk told us about the call."""

    uniqueid: str
    linkedid: str
    channel: str
    route: str
    caller_number: str | None
    caller_name: str | None
    dialled_number: str | None
    adapter: str | None = None  # "agi" for the FastAGI hook; None: the Stasis (ARI) hook
    #: The config the call's plan came from (its evidence cites it even if the config is
    #: reloaded during the call); empty: the store's. Not part of the call's own data.
    config_sha256: str = field(default="", compare=False)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "uniqueid": self.uniqueid,
            "linkedid": self.linkedid,
            "channel": self.channel,
            "route": self.route,
            "caller_number": self.caller_number,
            "caller_name": self.caller_name,
            "dialled_number": self.dialled_number,
        }
        if self.adapter is not None:  # the ARI flow's documents stay as they were
            out["adapter"] = self.adapter
        return out


def stamp(moment: datetime | None) -> str | None:
    """UTC ISO 8601 with milliseconds and Z, or None."""
    return None if moment is None else utc_stamp(moment)


def _notice(evidence: NoticeEvidence) -> dict[str, Any]:
    return {
        "id": evidence.prompt.prompt_id,
        "language": evidence.prompt.language,
        "version": evidence.prompt.version,
        "played": evidence.played,
        "started_at": stamp(evidence.started_at),
        "ended_at": stamp(evidence.ended_at),
    }


def _purpose(outcome: PurposeOutcome) -> dict[str, Any]:
    consent: dict[str, Any] | None = None
    if outcome.needs_consent:
        consent = {
            "status": outcome.status,
            "reason": outcome.reason,
            "digit": outcome.digit,
            "question_id": outcome.question.prompt_id if outcome.question else None,
            "question_version": outcome.question.version if outcome.question else None,
            "question_started_at": stamp(outcome.question_started_at),
            "question_ended_at": stamp(outcome.question_ended_at),
            "digit_at": stamp(outcome.digit_at),
            "attempts": outcome.attempts,
        }
    return {
        "purpose": outcome.purpose,
        "lawful_basis": outcome.lawful_basis,
        "retention_days": outcome.retention_days,
        "status": outcome.status,
        "reason": outcome.reason,
        "consent": consent,
    }


def delete_after(outcome: CallOutcome, started: datetime) -> datetime:
    """The recording is kept as long as its longest-kept recorded purpose allows."""
    days = max(
        (p.retention_days for p in outcome.purposes if p.purpose in outcome.recorded_purposes),
        default=0,
    )
    return started + timedelta(days=days)


def tags(outcome: CallOutcome) -> list[str]:
    """``purpose:<name>`` per recorded purpose, then ``consent:<status>`` once per status
    (the schema requires unique tags: two purposes given make one ``consent:given``)."""
    out = [f"purpose:{name}" for name in outcome.recorded_purposes]
    for purpose in outcome.purposes:
        tag = f"consent:{purpose.status}"
        if (
            purpose.needs_consent
            and purpose.purpose in outcome.recorded_purposes
            and tag not in out
        ):
            out.append(tag)
    return out


def _common(
    outcome: CallOutcome, call: CallInfo, caller: Mapping[str, str] | None
) -> dict[str, Any]:
    return {
        "call": callers.ledger_call(call.as_dict(), caller),
        "started_at": stamp(outcome.entered_at),
        "language": outcome.language,
        "notices": [_notice(n) for n in outcome.notices],
    }


def sidecar_document(
    outcome: CallOutcome,
    call: CallInfo,
    where: RecordingPaths,
    *,
    recording_started: datetime,
    config_sha256: str,
) -> dict[str, Any]:
    """The sidecar written when the recording starts (state ``recording``)."""
    recorded = [p for p in outcome.purposes if p.purpose in outcome.recorded_purposes]
    doc = sidecar.recording_document(
        where,
        call=call.as_dict(),
        started_at=recording_started,
        language=outcome.language,
        notices=[_notice(n) for n in outcome.notices],
        purposes=[_sidecar_purpose(p) for p in recorded],
        delete_after=delete_after(outcome, recording_started),
        tags=tags(outcome),
        software=SOFTWARE,
        config_sha256=config_sha256,
    )
    if outcome.entered_at is not None:  # when the call entered the app; the recording's own
        doc["started_at"] = stamp(outcome.entered_at)  # start is recording.started_at
    return doc


def _sidecar_purpose(outcome: PurposeOutcome) -> dict[str, Any]:
    full = _purpose(outcome)
    return {k: full[k] for k in ("purpose", "lawful_basis", "retention_days", "consent")}


def ledger_entry(
    outcome: CallOutcome,
    call: CallInfo,
    *,
    relative_file: str | None,
    config_sha256: str,
    now: datetime,
    caller: Mapping[str, str] | None,
) -> dict[str, Any]:
    """One ``call`` entry for every call that entered the app, refusals included. The caller's
    number and name go in only sealed (``caller``: :func:`callconsent.evidence.callers.seal`)."""
    return {
        "type": "call",
        "at": stamp(now),
        **_common(outcome, call, caller),
        "status": outcome.status,
        "reason": outcome.reason,
        "purposes": [_purpose(p) for p in outcome.purposes],
        "recorded_purposes": list(outcome.recorded_purposes),
        "recording": relative_file if outcome.recorded_purposes else None,
        "software": dict(SOFTWARE),
        "config_sha256": config_sha256,
    }


def unhandled_call_entry(
    call: CallInfo,
    *,
    status: str,
    reason: str,
    config_sha256: str,
    now: datetime,
    caller: Mapping[str, str] | None,
) -> dict[str, Any]:
    """A ledger entry for a call the consent flow never ran for (unknown route, restart)."""
    return {
        "type": "call",
        "at": stamp(now),
        "call": callers.ledger_call(call.as_dict(), caller),
        "started_at": None,
        "language": None,
        "notices": [],
        "status": status,
        "reason": reason,
        "purposes": [],
        "recorded_purposes": [],
        "recording": None,
        "software": dict(SOFTWARE),
        "config_sha256": config_sha256,
    }
