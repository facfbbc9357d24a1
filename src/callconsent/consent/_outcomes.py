"""Pure functions of a plan's purposes for the consent machine (:mod:`callconsent.consent.
machine`): the question a notice is joined to, and how the outcomes are worded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Final

from callconsent.consent._types import DigitReceived, Prompt, PurposeOutcome, PurposePlan

#: the statuses of a purpose whose question was asked
CONSENT_STATUSES: Final = frozenset({"given", "refused"})


def question_to_join(notice: Prompt, purposes: Sequence[PurposePlan]) -> Prompt | None:
    """The question to play right after the last ``notice`` in the same playback: the first
    one ``purposes`` (those still to decide) ask, when both files are there and neither URI has
    a comma (Asterisk reports a missing first item of a playlist as played in full; a comma
    splits the media list). None: play them apart."""
    for purpose in purposes:
        if purpose.consent is not None and purpose.sampled:
            question = purpose.consent.question
            whole = all(p.version and "," not in p.media for p in (notice, question))
            return question if whole else None
    return None


def without_consent(purpose: PurposePlan, pressed: DigitReceived | None) -> PurposeOutcome:
    """A purpose that needs no consent: recorded, unless the caller objected (Art 21) by
    ``pressed``, the objection digit noted during a notice."""
    objection = purpose.objection
    if objection is None or pressed is None or pressed.digit != objection.digit:
        return PurposeOutcome.of(purpose, "not_required", "no_consent_needed")
    if objection.record_anyway:
        status, reason = "not_required", "objection_overridden"
    else:
        status, reason = "objected", "objection"
    return replace(
        PurposeOutcome.of(purpose, status, reason), digit=pressed.digit, digit_at=pressed.at
    )


def call_status(failure: str | None, outcomes: Sequence[PurposeOutcome]) -> tuple[str, str]:
    """CALLCONSENT_STATUS and REASON for the purposes' outcomes (``failure``: the flow ended
    on an error or a failed notice)."""
    if failure is not None:
        return "error", failure
    asked = [o for o in outcomes if o.status in CONSENT_STATUSES]
    given = [o for o in asked if o.status == "given"]
    if given:
        return "given", given[0].reason
    if asked:
        return "refused", asked[0].reason
    if any(o.status == "objected" for o in outcomes):
        return "refused", "objection"
    if outcomes:
        return "not_required", outcomes[0].reason
    return "not_required", "no_purposes"


def ended_early(
    purposes: Sequence[PurposePlan], outcomes: Sequence[PurposeOutcome], reason: str
) -> list[PurposeOutcome]:
    """``outcomes`` completed for a flow that ended early: every purpose not yet decided is
    refused (consent) or unrecorded (no consent), and one already marked for recording is not
    recorded either."""
    done = list(outcomes)
    for purpose in purposes[len(done) :]:
        if purpose.consent is None:
            status = "not_recorded"
        else:
            status = "refused" if purpose.sampled else "not_sampled"
        done.append(PurposeOutcome.of(purpose, status, reason))
    return [
        replace(o, status="not_recorded", reason=reason) if o.status == "not_required" else o
        for o in done
    ]
