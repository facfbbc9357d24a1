"""Values the consent state machine works with: plans, events, actions and outcomes.

All frozen. Re-exported by :mod:`callconsent.consent`; import them from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "RECORDED_STATUSES",
    "Action",
    "AdapterFailed",
    "Answer",
    "Answered",
    "CallEntered",
    "CallOutcome",
    "CallPlan",
    "CallerHungUp",
    "CancelTimer",
    "ConsentQuestion",
    "ConsentTimedOut",
    "ContinueDialplan",
    "DigitReceived",
    "Event",
    "LanguageMenu",
    "LedgerWritten",
    "NoticeEvidence",
    "Objection",
    "PlayPrompt",
    "PlaybackContinuing",
    "PlaybackFailed",
    "PlaybackFinished",
    "PlaybackStarted",
    "PrepareRecording",
    "Prompt",
    "PurposeOutcome",
    "PurposePlan",
    "RecordingPrepared",
    "SetResult",
    "ShutdownRequested",
    "StartTimer",
    "StopPlayback",
    "WriteLedger",
]

# -- the plan: what a route asks of a call (built from the config) ------------------------


@dataclass(frozen=True, slots=True)
class Prompt:
    prompt_id: str  # e.g. "training_v1.question"
    media: str  # Asterisk media URI, e.g. "sound:/var/lib/callconsent/prompts/da/training-question"
    language: str  # "da"
    version: str  # sha256 hex of the audio file played ("" when the file is missing)


@dataclass(frozen=True, slots=True)
class ConsentQuestion:
    question: Prompt
    retry: Prompt  # played once after an invalid key
    accept_digit: str = "1"
    refuse_digit: str | None = "2"
    timeout_seconds: float = 8.0
    retries: int = 1  # 0 or 1
    #: what the caller hears after yes / after no (texts 6, 7); None: no confirmation
    confirm_given: Prompt | None = None
    confirm_refused: Prompt | None = None


@dataclass(frozen=True, slots=True)
class Objection:
    """The caller's right to object (Art 21) to a 6(1)(e)/(f) purpose by a digit in the notice."""

    digit: str
    record_anyway: bool = False  # True: recorded on documented compelling grounds
    grounds_ref: str | None = None


@dataclass(frozen=True, slots=True)
class PurposePlan:
    purpose: str  # documentation | training | emergency_quality
    lawful_basis: str  # e.g. "6(1)(a)"
    retention_days: int
    consent: ConsentQuestion | None  # None: needs no consent; recorded after the notice
    sampled: bool = True  # False: a consent purpose not asked on this call (ledger not_sampled)
    objection: Objection | None = None


@dataclass(frozen=True, slots=True)
class CallPlan:
    route: str
    language: str
    notices: tuple[Prompt, ...]  # played first, in order; digits during them are ignored
    purposes: tuple[PurposePlan, ...]
    menu: LanguageMenu | None = None  # asked before the notices
    store_caller_name: bool = False  # the route keeps the caller's display name (else dropped)


@dataclass(frozen=True, slots=True)
class LanguageMenu:
    """A language choice before the notices: a digit switches to that language's plan; no
    digit (or another) keeps this plan's language."""

    prompt: Prompt
    options: tuple[tuple[str, CallPlan], ...]  # (digit, the same call's plan in that language)
    timeout_seconds: float = 3.0


# -- events: what happened (from the adapter) ---------------------------------------------


@dataclass(frozen=True, slots=True)
class CallEntered:
    at: datetime


@dataclass(frozen=True, slots=True)
class Answered:
    at: datetime


@dataclass(frozen=True, slots=True)
class PlaybackStarted:
    playback_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class PlaybackFinished:
    playback_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class PlaybackContinuing:
    """A playback of several prompts (:attr:`PlayPrompt.then`) ended one and started the next:
    the first prompt played to its end at ``at``, the next started then."""

    playback_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class PlaybackFailed:
    playback_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class DigitReceived:
    digit: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ConsentTimedOut:
    timer_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class CallerHungUp:
    at: datetime


@dataclass(frozen=True, slots=True)
class RecordingPrepared:
    at: datetime


@dataclass(frozen=True, slots=True)
class LedgerWritten:
    """The call's ledger line is durable (the answer to :class:`WriteLedger`)."""

    at: datetime


@dataclass(frozen=True, slots=True)
class AdapterFailed:
    reason: str  # a short token, e.g. "ari_error", "storage_error"
    at: datetime


@dataclass(frozen=True, slots=True)
class ShutdownRequested:
    at: datetime
    reason: str = "shutdown"


Event = (
    CallEntered
    | Answered
    | PlaybackStarted
    | PlaybackContinuing
    | PlaybackFinished
    | PlaybackFailed
    | DigitReceived
    | ConsentTimedOut
    | CallerHungUp
    | RecordingPrepared
    | LedgerWritten
    | AdapterFailed
    | ShutdownRequested
)

# -- evidence and outcome -----------------------------------------------------------------

#: purpose statuses that mean "record this purpose"
RECORDED_STATUSES = frozenset({"given", "not_required"})


@dataclass(frozen=True, slots=True)
class NoticeEvidence:
    prompt: Prompt
    started_at: datetime | None = None
    ended_at: datetime | None = None
    played: bool = False


@dataclass(frozen=True, slots=True)
class PurposeOutcome:
    purpose: str
    lawful_basis: str
    retention_days: int
    #: given | refused (consent purposes), not_sampled, not_required (no consent needed,
    #: recorded), not_recorded (no consent needed, but the flow ended before recording),
    #: objected (the caller objected during the notice: not recorded)
    status: str
    reason: str
    digit: str | None = None
    question: Prompt | None = None
    question_started_at: datetime | None = None
    question_ended_at: datetime | None = None
    digit_at: datetime | None = None
    attempts: int = 0

    @property
    def recorded(self) -> bool:
        return self.status in RECORDED_STATUSES

    @property
    def needs_consent(self) -> bool:
        return self.status in ("given", "refused", "not_sampled")

    @classmethod
    def of(cls, plan: PurposePlan, status: str, reason: str) -> PurposeOutcome:
        return cls(plan.purpose, plan.lawful_basis, plan.retention_days, status, reason)


@dataclass(frozen=True, slots=True)
class CallOutcome:
    route: str
    language: str
    status: str  # CALLCONSENT_STATUS: given | refused | not_required | error
    reason: str
    notices: tuple[NoticeEvidence, ...]
    purposes: tuple[PurposeOutcome, ...]
    recorded_purposes: tuple[str, ...]  # empty: nothing is recorded
    entered_at: datetime | None


# -- actions: what the adapter must do ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    pass


@dataclass(frozen=True, slots=True)
class PlayPrompt:
    """Play ``prompt``; with ``then``, play that one next in the same playback (an ARI playlist),
    reporting the switch with :class:`PlaybackContinuing`. Only a machine with ``playlists``
    on asks for ``then``: the last notice joined to the first consent question."""

    playback_id: str
    prompt: Prompt
    then: Prompt | None = None


@dataclass(frozen=True, slots=True)
class StopPlayback:
    playback_id: str


@dataclass(frozen=True, slots=True)
class StartTimer:
    timer_id: str
    seconds: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    timer_id: str


@dataclass(frozen=True, slots=True)
class PrepareRecording:
    """Create the recording's paths and sidecar; answer RecordingPrepared or AdapterFailed."""

    outcome: CallOutcome  # the decision, with the purposes to record

    @property
    def purposes(self) -> tuple[str, ...]:
        return self.outcome.recorded_purposes


@dataclass(frozen=True, slots=True)
class SetResult:
    """Set CALLCONSENT_STATUS/REASON, and CALLCONSENT_RECORDING when ``recording``. A second
    one on the same call (the ledger refused the line after a result saying "record") replaces
    the first: every variable the first set and this one does not is cleared."""

    status: str
    reason: str
    recording: bool


@dataclass(frozen=True, slots=True)
class ContinueDialplan:
    pass


@dataclass(frozen=True, slots=True)
class WriteLedger:
    """Write the call's ``call`` line; answer LedgerWritten, or AdapterFailed when refused.

    ``final`` False: the line of a call to be recorded, written before the call continues.
    The :class:`SetResult` saying "record" that follows it in the same list may be carried out
    while the line is in flight (the adapter awaits the line's answer before the next event):
    the variables are read only once the call continues, which waits for ``LedgerWritten``. If
    the line is refused, the call goes on unrecorded (the result set again, unrecorded, first)
    and a final line follows."""

    outcome: CallOutcome
    final: bool = True


Action = (
    Answer
    | PlayPrompt
    | StopPlayback
    | StartTimer
    | CancelTimer
    | PrepareRecording
    | SetResult
    | ContinueDialplan
    | WriteLedger
)
