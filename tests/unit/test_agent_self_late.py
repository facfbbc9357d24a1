"""The agent's own-consent confirmation is never untrue under load: when the context's 5 s wait
ends without the app's answer, the agent hears "failed, nothing changed" and the context raises
``CallconsentAgentSelfLate``; a give the app applied meanwhile is undone (registry back to
refused unless it was given before, training out of the recordings made meanwhile), and a
withdrawal stays withdrawn.

The pure rule (:func:`callconsent.agents.own_consent.when_not_told`) over every case, and the
adapter over a fake AMI, the real registry and the real evidence store."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from callconsent import names
from callconsent.agents import own_consent as rules
from callconsent.agents.own_consent_adapter import OwnConsentHandler, revoke_runner
from callconsent.agents.registry import AgentConsent, AgentRegistry
from callconsent.evidence import sidecar
from callconsent.evidence.ledger import iter_entries, verify_chain
from tests.support.ami_fakes import FakeAmi
from tests.support.lifecycle_fixtures import T0, Store, make_store

NOW = T0 + timedelta(days=2)
CHANNEL = "PJSIP/agent1-0000002a"
FLAG_GIVEN = ("DBPut", "callconsent", "agent/agent1", "1")
FLAG_REFUSED = ("DBPut", "callconsent", "agent/agent1", "0")


# -- the pure rule --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("consent", "applied", "before", "action"),
    [
        ("given", True, None, "restore_refused"),
        ("given", True, "refused", "restore_refused"),
        ("given", True, "given", "unchanged"),
        ("given", False, None, "not_applied"),
        ("given", False, "refused", "not_applied"),
        ("given", False, "given", "not_applied"),
        ("refused", True, None, "kept_refused"),
        ("refused", True, "refused", "kept_refused"),
        ("refused", True, "given", "kept_refused"),
        ("refused", False, None, "not_applied"),
        ("refused", False, "refused", "not_applied"),
        ("refused", False, "given", "not_applied"),
    ],
)
def test_what_the_app_does_for_a_request_the_agent_was_not_told_of(
    consent: rules.Consent, applied: bool, before: rules.Consent | None, action: str
) -> None:
    assert rules.when_not_told(consent, applied=applied, before=before) == action


# -- the adapter ------------------------------------------------------------------------------


class BlockingRegistry(AgentRegistry):
    """The real registry whose ``set`` of a give waits (in its worker thread) until released."""

    def __init__(self, path: Path, ledger_path: Path) -> None:
        super().__init__(path, ledger_path)
        self.release = threading.Event()

    def set(
        self, agent_id: str, consent: str, *, actor: str, now: datetime, source: str = "cli"
    ) -> AgentConsent:
        if consent == "given":
            assert self.release.wait(10), "the test never released the registry"
        return super().set(agent_id, consent, actor=actor, now=now, source=source)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return make_store(tmp_path)


def registry_of(store: Store) -> AgentRegistry:
    return AgentRegistry(store.ledger_path.parent / "agents.json", store.ledger_path)


def handler(store: Store, ami: FakeAmi, registry: AgentRegistry | None = None) -> OwnConsentHandler:
    return OwnConsentHandler(
        ami,
        registry or registry_of(store),
        revoke_runner(store.root, store.ledger_path),
        clock=lambda: NOW,
    )


def event(consent: str, channel: str = CHANNEL, *, late: bool = False) -> dict[str, str]:
    name = names.AGENT_SELF_LATE_USER_EVENT if late else names.AGENT_SELF_USER_EVENT
    return {
        "Event": "UserEvent",
        "UserEvent": name,
        "Channel": channel,
        "Consent": consent,
        "Uniqueid": "1764000000.77",
    }


def consent_changes(store: Store) -> list[tuple[str, str]]:
    """(consent, changed_by) of every ``agent_consent`` ledger entry, in order."""
    if not store.ledger_path.exists():
        return []
    return [
        (e.entry["agent"]["consent"], e.entry["agent"]["changed_by"])
        for e in iter_entries(store.ledger_path)
        if e.entry and e.entry["type"] == "agent_consent"
    ]


def not_told(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == "agent_self_not_told"]


def late_after(
    store: Store, consent: str, before: str | None, *, meanwhile: bool = True
) -> tuple[FakeAmi, list[dict[str, Any]], Any]:
    """agent1 (``before`` in the registry, or absent) asks for ``consent``; the app applies it;
    a training-only recording of agent1 is made meanwhile; then the late event comes."""
    if before is not None:
        registry_of(store).set("agent1", before, actor="cli:root", now=T0)
    ami = FakeAmi()
    own = handler(store, ami)
    asyncio.run(own.on_event(event(consent)))
    recording = store.call("7000.1", purposes=("training",), agent="agent1") if meanwhile else None
    with capture_logs() as logs:
        asyncio.run(own.on_late(event(consent, late=True)))
    return ami, logs, recording


def test_a_give_not_heard_in_time_is_undone_when_the_agent_had_refused(store: Store) -> None:
    ami, logs, recording = late_after(store, "given", "refused")
    record = registry_of(store).get("agent1")
    assert record is not None and record.consent == "refused"
    assert record.changed_by == "phone:agent1"
    assert consent_changes(store) == [
        ("refused", "cli:root"),
        ("given", "phone:agent1"),
        ("refused", "phone:agent1"),
    ]
    assert ami.calls[-1] == FLAG_REFUSED  # after the give's flag and answer
    assert FLAG_GIVEN in ami.calls
    assert sidecar.load(recording)["state"] == "tombstone" and not recording.audio.exists()
    [line] = not_told(logs)
    assert (line["agent"], line["consent"], line["done"]) == ("agent1", "given", "restore_refused")
    assert line["log_level"] == "warning"
    assert verify_chain(store.ledger_path, check_schema=True) == []


def test_a_give_not_heard_in_time_is_undone_for_an_agent_not_in_the_registry(
    store: Store,
) -> None:
    _, logs, recording = late_after(store, "given", None)
    record = registry_of(store).get("agent1")
    assert record is not None and record.consent == "refused"
    assert consent_changes(store) == [("given", "phone:agent1"), ("refused", "phone:agent1")]
    assert sidecar.load(recording)["state"] == "tombstone"
    assert [line["done"] for line in not_told(logs)] == ["restore_refused"]


def test_a_give_not_heard_in_time_changes_nothing_when_the_agent_had_consented(
    store: Store,
) -> None:
    ami, logs, recording = late_after(store, "given", "given")
    record = registry_of(store).get("agent1")
    assert record is not None and record.consent == "given"
    assert consent_changes(store) == [("given", "cli:root"), ("given", "phone:agent1")]
    assert FLAG_REFUSED not in ami.calls
    assert sidecar.load(recording)["state"] == "final" and recording.audio.exists()
    assert [line["done"] for line in not_told(logs)] == ["unchanged"]


def test_a_withdrawal_not_heard_in_time_stays_withdrawn(store: Store) -> None:
    ami, logs, _ = late_after(store, "refused", "given", meanwhile=False)
    record = registry_of(store).get("agent1")
    assert record is not None and record.consent == "refused"
    assert consent_changes(store) == [("given", "cli:root"), ("refused", "phone:agent1")]
    assert FLAG_GIVEN not in ami.calls
    [line] = not_told(logs)
    assert (line["consent"], line["done"]) == ("refused", "kept_refused")


def test_a_give_that_failed_to_register_stays_unregistered(store: Store, tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("x")
    registry = AgentRegistry(blocked / "agents.json", store.ledger_path)
    ami = FakeAmi()
    own = handler(store, ami, registry)
    asyncio.run(own.on_event(event("given")))
    with capture_logs() as logs:
        asyncio.run(own.on_late(event("given", late=True)))
    assert consent_changes(store) == []
    assert ami.calls == [("Setvar", CHANNEL, names.VAR_AGENT_SELF_RESULT, "failed")]
    assert [line["done"] for line in not_told(logs)] == ["not_applied"]


def test_a_late_event_for_a_request_the_app_never_saw_changes_nothing(store: Store) -> None:
    registry_of(store).set("agent1", "given", actor="cli:root", now=T0)
    ami = FakeAmi()
    with capture_logs() as logs:
        asyncio.run(handler(store, ami).on_late(event("given", late=True)))
    assert consent_changes(store) == [("given", "cli:root")]
    assert ami.calls == []
    assert [line["done"] for line in not_told(logs)] == ["not_applied"]


def test_a_late_event_pairs_with_the_request_of_its_own_channel(store: Store) -> None:
    """agent1 gave consent on one call (heard); a late event of another call of agent1 that the
    app never saw does not undo it."""
    registry_of(store).set("agent1", "refused", actor="cli:root", now=T0)
    ami = FakeAmi()
    own = handler(store, ami)
    asyncio.run(own.on_event(event("given")))
    asyncio.run(own.on_late(event("given", "PJSIP/agent1-0000002b", late=True)))
    record = registry_of(store).get("agent1")
    assert record is not None and record.consent == "given"


def test_the_late_event_waits_for_the_request_still_being_handled(store: Store) -> None:
    registry_of(store).set("agent1", "refused", actor="cli:root", now=T0)
    registry = BlockingRegistry(store.ledger_path.parent / "agents.json", store.ledger_path)
    ami = FakeAmi()
    own = handler(store, ami, registry)

    async def run() -> list[tuple[str, str]]:
        request = asyncio.create_task(own.on_event(event("given")))
        late = asyncio.create_task(own.on_late(event("given", late=True)))
        await asyncio.sleep(0.2)
        seen_while_blocked = consent_changes(store)
        assert not late.done()
        registry.release.set()
        await asyncio.gather(request, late)
        return seen_while_blocked

    assert asyncio.run(run()) == [("refused", "cli:root")]
    assert consent_changes(store) == [
        ("refused", "cli:root"),
        ("given", "phone:agent1"),
        ("refused", "phone:agent1"),
    ]
    record = registry_of(store).get("agent1")
    assert record is not None and record.consent == "refused"


@pytest.mark.parametrize(
    "late",
    [
        event("given", "Local/agent1@callconsent-lab-agent-00000001;2", late=True),
        event("given", "PJSIP/agent1-0000002a\r\nConsent: refused", late=True),
        event("maybe", late=True),
        event("given", "", late=True),
    ],
)
def test_a_malformed_late_event_changes_nothing(store: Store, late: dict[str, str]) -> None:
    registry_of(store).set("agent1", "refused", actor="cli:root", now=T0)
    ami = FakeAmi()
    own = handler(store, ami)
    asyncio.run(own.on_event(event("given")))
    calls = list(ami.calls)
    with capture_logs() as logs:
        asyncio.run(own.on_late(late))
    record = registry_of(store).get("agent1")
    assert record is not None and record.consent == "given"
    assert ami.calls == calls
    assert [e["event"] for e in logs] == ["agent_self_late_invalid"]
