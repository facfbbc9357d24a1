"""Evidence documents from a call outcome: retention, tags, and shapes the schemas accept."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from callconsent.consent import CallOutcome, NoticeEvidence, Prompt, PurposeOutcome
from callconsent.evidence import callers, sidecar
from callconsent.evidence.documents import (
    CallInfo,
    delete_after,
    ledger_entry,
    sidecar_document,
    tags,
    unhandled_call_entry,
)
from callconsent.evidence.paths import recording_paths
from tests.support.stasis_fakes import schema_problems

T0 = datetime(2026, 11, 24, 12, 0, 0, 123000, tzinfo=UTC)
SHA = "a" * 64
CALL = CallInfo(
    uniqueid="1764000000.42",
    linkedid="1764000000.40",
    channel="PJSIP/trunk-00000001",
    route="mixed",
    caller_number="+4512345678",
    caller_name="Anna \r\n; $(id)",
    dialled_number="4570000000",
)
SEALED, KEY = callers.seal(CALL.uniqueid, CALL.caller_number, CALL.caller_name, b"s" * 32)


def prompt(prompt_id: str) -> Prompt:
    return Prompt(prompt_id, f"sound:/p/da/{prompt_id}", "da", SHA)


def consent(purpose: str, days: int, status: str, reason: str = "digit") -> PurposeOutcome:
    digit = {"given": "1", "refused": "2"}.get(status) if reason == "digit" else None
    return PurposeOutcome(
        purpose=purpose,
        lawful_basis="6(1)(a)",
        retention_days=days,
        status=status,
        reason=reason,
        digit=digit,
        question=prompt(f"{purpose}_v1.question"),
        question_started_at=T0,
        question_ended_at=T0 + timedelta(seconds=3),
        digit_at=T0 + timedelta(seconds=4) if digit else None,
        attempts=1,
    )


def documentation(days: int = 90, status: str = "not_required") -> PurposeOutcome:
    return PurposeOutcome("documentation", "6(1)(f)", days, status, "no_consent_needed")


def outcome(*purposes: PurposeOutcome, status: str = "given") -> CallOutcome:
    recorded = tuple(p.purpose for p in purposes if p.recorded)
    return CallOutcome(
        route="mixed",
        language="da",
        status=status,
        reason="digit",
        notices=tuple(
            NoticeEvidence(prompt(f"{p.purpose}_v1.notice"), T0, T0, played=True) for p in purposes
        ),
        purposes=purposes,
        recorded_purposes=recorded,
        entered_at=T0,
    )


# -- retention ---------------------------------------------------------------------------------


def test_delete_after_is_the_longest_retention_among_recorded_purposes() -> None:
    both = outcome(documentation(90), consent("training", 30, "given"))
    assert delete_after(both, T0) == T0 + timedelta(days=90)


def test_delete_after_ignores_purposes_that_are_not_recorded() -> None:
    refused_long = outcome(documentation(10), consent("training", 365, "refused"))
    assert delete_after(refused_long, T0) == T0 + timedelta(days=10)


def test_delete_after_counts_from_the_recording_start() -> None:
    only_training = outcome(consent("training", 30, "given"))
    later = T0 + timedelta(hours=5)
    assert delete_after(only_training, later) == later + timedelta(days=30)


def test_delete_after_with_nothing_recorded_is_the_start() -> None:
    assert delete_after(outcome(consent("training", 30, "refused")), T0) == T0


# -- tags -----------------------------------------------------------------------------------------


def test_tags_name_each_recorded_purpose_and_its_consent() -> None:
    both = outcome(documentation(), consent("training", 30, "given"))
    assert tags(both) == ["purpose:documentation", "purpose:training", "consent:given"]


def test_tags_leave_out_refused_purposes() -> None:
    refused = outcome(documentation(), consent("training", 30, "refused"))
    assert tags(refused) == ["purpose:documentation"]


def test_tags_are_unique_when_two_consent_purposes_are_given() -> None:
    """The schema requires unique tags: two yeses must not make the sidecar unwritable."""
    two = outcome(consent("training", 30, "given"), consent("emergency_quality", 60, "given"))
    out = tags(two)
    assert len(out) == len(set(out))
    assert set(out) == {"purpose:training", "purpose:emergency_quality", "consent:given"}


# -- documents match the schemas --------------------------------------------------------------------


def sidecar_for(call_outcome: CallOutcome) -> dict[str, Any]:
    where = recording_paths(Path("/rec"), CALL.uniqueid, T0)
    return sidecar_document(call_outcome, CALL, where, recording_started=T0, config_sha256="b" * 64)


@pytest.mark.parametrize(
    "purposes",
    [
        (documentation(),),
        (documentation(), consent("training", 30, "given")),
        (documentation(), consent("training", 30, "refused")),
        (consent("training", 30, "given"), consent("emergency_quality", 60, "given")),
    ],
    ids=["documentation", "both", "training_refused", "two_consents"],
)
def test_sidecar_document_matches_the_schema(purposes: tuple[PurposeOutcome, ...]) -> None:
    doc = sidecar_for(outcome(*purposes))
    assert schema_problems("sidecar.schema.json", doc) == []
    sidecar.validate(doc)  # what create() checks before writing


def test_sidecar_lists_only_recorded_purposes_and_keeps_caller_text_verbatim() -> None:
    doc = sidecar_for(outcome(documentation(), consent("training", 30, "refused")))
    assert [p["purpose"] for p in doc["purposes"]] == ["documentation"]
    assert doc["call"]["caller_name"] == "Anna \r\n; $(id)"
    assert doc["recording"]["file"] == f"2026/11/24/{CALL.uniqueid}.wav"
    assert doc["started_at"] == "2026-11-24T12:00:00.123Z"
    assert doc["delete_after"] == "2027-02-22T12:00:00.123Z"


def test_ledger_entry_matches_the_schema_and_lists_every_purpose() -> None:
    call_outcome = outcome(documentation(), consent("training", 30, "refused"))
    entry = ledger_entry(
        call_outcome,
        CALL,
        relative_file="2026/11/24/1764000000.42.wav",
        config_sha256="b" * 64,
        now=T0,
        caller=SEALED,
    )
    full = {"seq": 1, **entry, "prev_sha256": "0" * 64}
    assert schema_problems("ledger-entry.schema.json", full) == []
    assert "12345678" not in json.dumps(entry) and "Anna" not in json.dumps(entry)
    assert KEY is not None and callers.open_caller(entry["call"], {KEY.kid: KEY.key}.get) == (
        callers.Caller("+4512345678", "Anna \r\n; $(id)")
    )
    assert [p["purpose"] for p in entry["purposes"]] == ["documentation", "training"]
    assert entry["purposes"][1]["consent"]["status"] == "refused"
    assert entry["purposes"][0]["consent"] is None
    assert entry["recorded_purposes"] == ["documentation"]
    assert entry["recording"] == "2026/11/24/1764000000.42.wav"


def test_ledger_entry_without_recording_has_no_file() -> None:
    call_outcome = outcome(consent("training", 30, "refused"), status="refused")
    entry = ledger_entry(
        call_outcome, CALL, relative_file=None, config_sha256="b" * 64, now=T0, caller=None
    )
    assert entry["recording"] is None and entry["recorded_purposes"] == []
    full = {"seq": 1, **entry, "prev_sha256": "0" * 64}
    assert schema_problems("ledger-entry.schema.json", full) == []


def test_unhandled_call_entry_matches_the_schema() -> None:
    entry = unhandled_call_entry(
        CALL, status="error", reason="unknown_route", config_sha256="b" * 64, now=T0, caller=SEALED
    )
    full = {"seq": 1, **entry, "prev_sha256": "0" * 64}
    assert schema_problems("ledger-entry.schema.json", full) == []
    assert (entry["status"], entry["reason"], entry["purposes"]) == ("error", "unknown_route", [])
