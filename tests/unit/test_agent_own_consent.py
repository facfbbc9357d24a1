"""The agent's own consent from their phone (R15): the feature code's UserEvent gives or
revokes it (registry, ledger, AstDB, audit, spoken answer); revoking ends training in the
agent's earlier recordings (training-only ones become tombstones)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from callconsent import names
from callconsent.agents import own_consent as rules
from callconsent.agents.own_consent_adapter import (
    OwnConsentHandler,
    prompt_sources,
    revoke_runner,
)
from callconsent.agents.registry import AgentRegistry
from callconsent.evidence import sidecar
from callconsent.evidence.ledger import iter_entries, verify_chain
from callconsent.lifecycle import audit
from callconsent.lifecycle.audit import AUDIT_NAME
from tests.support.ami_fakes import FakeAmi
from tests.support.lifecycle_fixtures import T0, Store, make_store

NOW = T0 + timedelta(days=2)
CHANNEL = "PJSIP/agent1-0000002a"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return make_store(tmp_path)


def handler(store: Store, ami: FakeAmi, registry_path: Path | None = None) -> OwnConsentHandler:
    registry = AgentRegistry(
        registry_path or store.ledger_path.parent / "agents.json", store.ledger_path
    )
    return OwnConsentHandler(
        ami, registry, revoke_runner(store.root, store.ledger_path), clock=lambda: NOW
    )


def event(consent: str, channel: str = CHANNEL) -> dict[str, str]:
    return {
        "Event": "UserEvent",
        "UserEvent": "CallconsentAgentSelf",
        "Channel": channel,
        "Consent": consent,
        "Uniqueid": "1764000000.77",
    }


def ledger(store: Store, kind: str) -> list[dict[str, Any]]:
    return [e.entry for e in iter_entries(store.ledger_path) if e.entry and e.entry["type"] == kind]


# -- rules ----------------------------------------------------------------------------------


def test_the_agent_is_the_pjsip_endpoint_of_the_event_s_own_channel() -> None:
    request = rules.from_event(event("given"))
    assert request == rules.OwnConsentRequest("agent1", "given", CHANNEL)


@pytest.mark.parametrize(
    "channel",
    [
        "Local/agent@callconsent-lab-agent-00000001;2",
        "PJSIP/trunk provider-00000001",
        "PJSIP/agent1",
        "PJSIP/agent1-0000002a\r\nConsent: given",
        "",
    ],
)
def test_a_channel_that_names_no_agent_endpoint_is_refused(channel: str) -> None:
    assert rules.from_event(event("given", channel)) is None


@pytest.mark.parametrize("consent", ["", "yes", "GIVEN", "given;x", "1"])
def test_only_given_or_refused_is_a_consent(consent: str) -> None:
    assert rules.from_event(event(consent)) is None


def test_every_result_has_a_prompt_in_danish_and_english() -> None:
    assert set(rules.TEXTS) == set(names.AGENT_SELF_PROMPTS)
    sources = prompt_sources()
    assert {(s.language, s.text.audio) for s in sources} == {
        (lang, names.AGENT_SELF_PROMPTS[r]) for r in rules.TEXTS for lang in ("da", "en")
    }


def test_result_of_a_revocation_with_recordings_left_to_do_is_pending() -> None:
    assert rules.result_of("refused", registered=True, recordings_done=False) == "refused_pending"
    assert rules.result_of("given", registered=False, recordings_done=True) == "failed"


# -- the adapter -----------------------------------------------------------------------------


def test_the_agent_gives_consent_from_their_phone(store: Store) -> None:
    ami = FakeAmi()
    asyncio.run(handler(store, ami).on_event(event("given")))
    registry = AgentRegistry(store.ledger_path.parent / "agents.json", store.ledger_path)
    record = registry.get("agent1")
    assert record is not None and record.given and record.changed_by == "phone:agent1"
    [entry] = ledger(store, "agent_consent")
    assert entry["agent"] == {"id": "agent1", "consent": "given", "changed_by": "phone:agent1"}
    assert entry["source"] == "phone"
    assert ami.calls == [
        ("DBPut", "callconsent", "agent/agent1", "1"),
        ("Setvar", CHANNEL, names.VAR_AGENT_SELF_RESULT, "given"),
    ]


def test_revoking_tombstones_training_only_recordings_and_keeps_documentation(
    store: Store,
) -> None:
    only = store.call("6000.1", purposes=("training",), agent="agent1")
    mixed = store.call("6000.2", purposes=("documentation", "training"), agent="agent1")
    other = store.call("6000.3", purposes=("training",), agent="agent2")
    assert only is not None and mixed is not None and other is not None
    ami = FakeAmi()
    asyncio.run(handler(store, ami).on_event(event("refused")))
    assert sidecar.load(only)["state"] == "tombstone" and not only.audio.exists()
    assert [p["purpose"] for p in sidecar.load(mixed)["purposes"]] == ["documentation"]
    assert mixed.audio.exists()
    assert sidecar.load(other)["state"] == "final" and other.audio.exists()
    assert ami.calls[-1] == ("Setvar", CHANNEL, names.VAR_AGENT_SELF_RESULT, "refused")
    assert ("DBPut", "callconsent", "agent/agent1", "0") in ami.calls
    withdrawn = ledger(store, "withdrawn")
    assert {e["call"]["uniqueid"] for e in withdrawn} == {"6000.1", "6000.2"}
    assert all(e["via"] == "agent" for e in withdrawn)
    lines = audit.read(store.ledger_path.parent / AUDIT_NAME)
    assert any(line["action"] == "withdraw" and line["actor"] == "phone:agent1" for line in lines)
    assert verify_chain(store.ledger_path, check_schema=True) == []


def test_a_malformed_event_changes_nothing_and_the_agent_hears_failed(store: Store) -> None:
    ami = FakeAmi()
    asyncio.run(handler(store, ami).on_event(event("maybe")))
    assert not store.ledger_path.exists()  # not even an entry
    assert ami.calls == [("Setvar", CHANNEL, names.VAR_AGENT_SELF_RESULT, "failed")]


def test_a_registry_that_cannot_be_written_changes_nothing(store: Store, tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("x")
    ami = FakeAmi()
    asyncio.run(handler(store, ami, blocked / "agents.json").on_event(event("given")))
    assert ami.calls == [("Setvar", CHANNEL, names.VAR_AGENT_SELF_RESULT, "failed")]


def test_a_failed_mirror_still_registers_and_answers(store: Store) -> None:
    ami = FakeAmi(fail={"DBPut"})
    asyncio.run(handler(store, ami).on_event(event("given")))
    assert ami.calls[-1] == ("Setvar", CHANNEL, names.VAR_AGENT_SELF_RESULT, "given")
    assert len(ledger(store, "agent_consent")) == 1
