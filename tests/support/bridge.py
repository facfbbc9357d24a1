"""A caller's call as the agent bridge and the in-call adapters see it, for their unit tests:
the call and its consent outcome, the AMI UserEvents the dialplan hook sends, a fake agent
registry, and readers of the evidence the real store wrote (ledger entries, sidecars)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from callconsent import names
from callconsent.agents.bridge import BridgeHandler
from callconsent.agents.registry import AgentConsent
from callconsent.consent import CallOutcome, NoticeEvidence, Prompt, PurposeOutcome
from callconsent.evidence.documents import CallInfo
from callconsent.evidence.ledger import iter_entries
from callconsent.store import EvidenceStore
from tests.support.ami_fakes import FakeAmi
from tests.support.stasis_fakes import schema_problems

T0 = datetime(2026, 11, 24, 9, 0, 0, tzinfo=UTC)
SHA = "c" * 64
CALLER, AGENT_CHAN = "1764000000.42", "1764000001.43"
NOTICE = Prompt("lab_training_v1.notice", "sound:/p/da/x", "da", SHA)
QUESTION = Prompt("lab_training_v1.question", "sound:/p/da/q", "da", SHA)
#: The AstDB key the hook's withdrawal leaves for CALLER.
MARKER = names.ASTDB_WITHDRAWN_PREFIX + CALLER
#: A uniqueid as Asterisk makes them: the epoch of the call's start (T0), then a counter.
REAL_ID = "1795510800.7"


class FakeRegistry:
    def __init__(self, **consents: str) -> None:
        self.agents = {a: AgentConsent(a, c, T0, "hr:jane") for a, c in consents.items()}  # type: ignore[arg-type]

    def get(self, agent_id: str) -> AgentConsent | None:
        return self.agents.get(agent_id)


def outcome(*purposes: str) -> CallOutcome:
    def one(name: str) -> PurposeOutcome:
        if name == "training":
            return PurposeOutcome(
                name, "6(1)(a)", 30, "given", "digit", "1", QUESTION, T0, T0, T0, 1
            )
        return PurposeOutcome(name, "6(1)(f)", 90, "not_required", "no_consent_needed")

    return CallOutcome(
        "support",
        "da",
        "given",
        "digit",
        (NoticeEvidence(NOTICE, T0, T0, played=True),),
        tuple(one(p) for p in purposes),
        purposes,
        T0,
    )


def call() -> CallInfo:
    return CallInfo(CALLER, CALLER, "PJSIP/lab-caller-1", "support", "+4512345678", "A", None)


def real_call() -> CallInfo:
    return CallInfo(REAL_ID, REAL_ID, "PJSIP/lab-caller-2", "support", "+4512345678", "A", None)


def event(agent: str = "agent1", flag: str = "1", caller: str = CALLER) -> dict[str, str]:
    return {
        "Event": "UserEvent",
        "UserEvent": names.AGENT_USER_EVENT,
        "Uniqueid": AGENT_CHAN,
        "Caller": caller,
        "Agent": agent,
        "Flag": flag,
    }


def withdraw_event(at: str = "2026-11-24T09:02:00.000Z", caller: str = CALLER) -> dict[str, str]:
    return {
        "Event": "UserEvent",
        "UserEvent": names.WITHDRAW_USER_EVENT,
        "Caller": caller,
        "At": at,
    }


async def agent_consents(store: EvidenceStore) -> None:
    """agent1, who consents, takes CALLER's call."""
    await BridgeHandler(FakeAmi(), store, FakeRegistry(agent1="given")).on_agent_event(event())


def ledger(tmp_path: Path) -> list[dict[str, Any]]:
    return [x.entry for x in iter_entries(tmp_path / "ledger.jsonl") if x.entry is not None]


def sidecar_of(audio: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(audio.with_suffix(".json").read_text())
    assert schema_problems("sidecar.schema.json", doc) == []
    return doc


def gone(path: Path) -> bool:
    return not path.exists()
