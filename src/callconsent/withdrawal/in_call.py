"""Withdrawal of consent during the call (R16, R18): the rules, as pure functions. No I/O, no clock.

The dialplan does the urgent part by itself (``[callconsent-withdraw]`` in
``dialplan/callconsent.conf``): it stops the recording when nothing recorded without consent
remains, marks the withdrawal in AstDB and tells the app. This module says what the app then
does to the evidence:

* the variables the app sets on the caller's channel so the dialplan can act alone
  (:func:`withdraw_variables`);
* what a withdrawal does to the call's sidecar (:func:`withdraw`): every consent purpose ends
  (listed in ``purposes``, or still waiting for the agent in ``agent_purposes``). With nothing
  recorded without consent left, the recording is deleted (tombstone, reason ``withdrawn``); with
  a purpose recorded without consent from the start (documentation), the file stays for it only,
  with its own basis and retention. The sidecar transformation is the one of the withdrawal after
  the call (:func:`callconsent.evidence.purposes.without_consent_purposes`). R18: a consent
  purpose is never kept under another basis;
* the ``withdrawn`` ledger entry (:func:`withdrawn_entry`), as the after-call withdrawal writes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal

from callconsent import names
from callconsent.consent import CallOutcome
from callconsent.evidence import entries, sidecar
from callconsent.evidence.purposes import without_consent_purposes
from callconsent.withdrawal.route import Readout

#: Requirements text 9, per language. A call in another language hears Danish.
WITHDRAWN_TEXTS: Final = {
    "da": "Optagelsen til uddannelse er stoppet og bliver slettet.",
    "en": "The training recording has stopped and will be deleted.",
}
FALLBACK_LANGUAGE: Final = "da"
#: ``via`` of the ledger entry: who asked, and how.
VIA_CALLER: Final = "caller_dtmf"
VIA_AGENT: Final = "agent_dtmf"
SOURCE: Final = "app"

Outcome = Literal["deleted", "documentation_kept", "not_recorded", "nothing_to_withdraw"]


def consent_purposes(outcome: CallOutcome) -> tuple[str, ...]:
    """The recorded purposes that rest on the caller's consent (training)."""
    recorded = set(outcome.recorded_purposes)
    return tuple(p.purpose for p in outcome.purposes if p.needs_consent and p.purpose in recorded)


def prompt_base(prompts_dir: str | Path, language: str) -> str:
    """The confirmation prompt for a call in ``language`` (without extension, for Playback);
    empty without a prompts folder (the withdrawal then plays nothing)."""
    if not str(prompts_dir):
        return ""
    lang = language if language in WITHDRAWN_TEXTS else FALLBACK_LANGUAGE
    return str(Path(prompts_dir) / lang / names.WITHDRAW_PROMPT)


def withdraw_variables(
    outcome: CallOutcome,
    prompts_dir: str | Path,
    uniqueid: str = "",
    readout: Readout | None = None,
) -> list[tuple[str, str]]:
    """The caller channel's variables (never inherited) for the withdrawal code: empty when the
    call records nothing that rests on consent, so the hook does not enable the feature. With a
    ``readout`` naming the call's route, also the call reference the hook reads out (R17b)."""
    withdrawable = consent_purposes(outcome)
    if not withdrawable:
        return []
    keeps = [p for p in outcome.recorded_purposes if p not in withdrawable]
    refs = (
        readout.variables(outcome.route, uniqueid, outcome.language, prompts_dir) if readout else []
    )
    return [
        *refs,
        (names.VAR_WITHDRAW_KEEPS, ",".join(keeps)),
        (names.VAR_WITHDRAW_PROMPT, prompt_base(prompts_dir, outcome.language)),
        (names.VAR_WITHDRAWABLE, ",".join(withdrawable)),  # last: it enables the feature
    ]


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """What a withdrawal does to one call's sidecar.

    ``outcome``: ``deleted`` (tombstone the recording), ``documentation_kept`` (write ``doc``),
    ``not_recorded`` (a consent purpose was asked for but nothing of it was ever recorded: the
    agent refused it, so there is only the ledger entry), ``nothing_to_withdraw`` (already
    withdrawn or deleted: write nothing).
    """

    outcome: Outcome
    withdrawn: tuple[str, ...]
    kept: tuple[str, ...]
    doc: dict[str, Any] | None = None  # the new sidecar for documentation_kept

    @property
    def writes(self) -> bool:
        return self.outcome != "nothing_to_withdraw"


def _consent_based(doc: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(consent purposes recorded, consent purposes waiting for/refused by the agent)."""
    listed = [p["purpose"] for p in doc["purposes"] if p["consent"] is not None]
    waiting = [p["purpose"] for p in doc.get("agent_purposes", []) if p["consent"] is not None]
    return listed, waiting


def withdraw(doc: Mapping[str, Any] | None, *, at: datetime) -> Withdrawal:
    """The withdrawal of every consent purpose of ``doc`` (a sidecar; None: there is none)."""
    if doc is None or doc["state"] == sidecar.State.TOMBSTONE:
        return Withdrawal("nothing_to_withdraw", (), ())
    listed, waiting = _consent_based(doc)
    gone = tuple(dict.fromkeys(listed + waiting))
    kept = tuple(p["purpose"] for p in doc["purposes"] if p["consent"] is None)
    if not gone:
        return Withdrawal("nothing_to_withdraw", (), kept)
    if not kept:
        return Withdrawal("deleted", gone, ())
    new = without_consent_purposes(dict(doc), at=at)
    if not listed and not any(
        p["agent_consent"]["status"] == "pending" for p in doc.get("agent_purposes", [])
    ):
        return Withdrawal("not_recorded", gone, kept, new)  # refused by the agent already
    return Withdrawal("documentation_kept", gone, kept, new)


def withdrawn_entry(
    *,
    uniqueid: str,
    at: datetime,
    withdrawal: Withdrawal,
    recording: str | None,
    via: str,
    source: str = SOURCE,
) -> dict[str, Any]:
    """The ``withdrawn`` ledger entry (ids only, no caller data)."""
    delete_after = withdrawal.doc["delete_after"] if withdrawal.doc is not None else None
    return entries.call_change(
        "withdrawn",
        uniqueid=uniqueid,
        at=at,
        purposes=withdrawal.withdrawn,
        kept_purposes=withdrawal.kept,
        recording=recording,
        source=source,
        outcome=withdrawal.outcome,
        delete_after=delete_after,
        via=via,
    )
