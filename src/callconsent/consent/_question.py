"""The consent question being asked, for the consent machine (:mod:`callconsent.consent.
machine`): the evidence gathered while it is asked (attempts, invalid keys, when it played),
what a key pressed in answer means, and the purpose's outcome it ends in. Pure: the machine
decides when a key counts and what plays next; it writes none of this evidence itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from callconsent.consent._types import ConsentQuestion, PurposeOutcome, PurposePlan


@dataclass
class Asking:
    """Evidence gathered for the consent purpose being asked (``index``: in the plan's
    purposes)."""

    index: int
    attempts: int = 0
    invalid: int = 0
    started_at: datetime | None = None
    ended_at: datetime | None = None

    def started(self, at: datetime) -> None:
        """The question's prompt started playing at ``at`` (kept: a start already known, as for
        a question joined to the notice, which started at the switch)."""
        if self.started_at is None:
            self.started_at = at

    def finished(self, at: datetime) -> None:
        """The question's prompt finished at ``at``; with no start event seen, it ran until
        then."""
        self.started(at)
        self.ended_at = at

    def answer(self, consent: ConsentQuestion, digit: str) -> tuple[str, str] | None:
        """The (status, reason) ``digit`` ends the question with; None: an invalid key within
        the allowed retries, counted, and the question asked again (a new attempt, its start
        and end not yet seen)."""
        if digit == consent.accept_digit:
            return "given", "digit"
        if consent.refuse_digit is not None and digit == consent.refuse_digit:
            return "refused", "digit"
        self.invalid += 1
        if self.invalid > consent.retries:
            return "refused", "invalid"
        self.attempts += 1
        self.started_at = self.ended_at = None
        return None

    def outcome(
        self,
        purpose: PurposePlan,
        status: str,
        reason: str,
        digit: str | None,
        at: datetime | None,
    ) -> PurposeOutcome:
        """``purpose``'s outcome, with this question's evidence (``at``: when ``digit``, the
        key that decided, was pressed)."""
        assert purpose.consent is not None  # only a purpose with consent is asked
        return PurposeOutcome(
            purpose=purpose.purpose,
            lawful_basis=purpose.lawful_basis,
            retention_days=purpose.retention_days,
            status=status,
            reason=reason,
            digit=digit,
            question=purpose.consent.question,
            question_started_at=self.started_at,
            question_ended_at=self.ended_at,
            digit_at=at if digit is not None else None,
            attempts=self.attempts,
        )
