"""Objection to documentation during the call (Art 21, R30): the rules, and the adapter over a
fake AMI and the real evidence store."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from callconsent import names
from callconsent.config import ObjectionSettings
from callconsent.evidence.ledger import iter_entries
from callconsent.objection import rules
from callconsent.objection.adapter import ObjectionHandler
from callconsent.store import EvidenceStore
from tests.support.party_fakes import (
    CALLER,
    T0,
    PartyAmi,
    documentation_recording,
    sidecar_doc,
)
from tests.support.stasis_fakes import schema_problems

NOW = T0 + timedelta(minutes=5)
DO_NOT_RECORD = ObjectionSettings("3", "do_not_record")
WITH_GROUNDS = ObjectionSettings("3", "record_with_grounds", "CG-2026-07")


def entries(tmp_path: Path) -> list[dict[str, Any]]:
    if not (tmp_path / "ledger.jsonl").exists():
        return []
    found = [x.entry for x in iter_entries(tmp_path / "ledger.jsonl") if x.entry is not None]
    return [e for e in found if e["type"] == rules.ENTRY_TYPE]


def handler(
    store: EvidenceStore,
    tmp_path: Path,
    ami: PartyAmi,
    settings: ObjectionSettings = DO_NOT_RECORD,
    bridged: bool = False,
) -> ObjectionHandler:
    return ObjectionHandler(
        ami,
        store,
        {"docs": settings},
        tmp_path / "recordings",
        bridged=lambda _uniqueid: bridged,
        clock=lambda: NOW,
    )


def agent_event(caller: str = CALLER, via: str = "agent_dtmf") -> dict[str, str]:
    return {
        "Event": "UserEvent",
        "UserEvent": names.OBJECTION_USER_EVENT,
        "Caller": caller,
        "Agent": "agent1",
        "Via": via,
    }


# -- the rule ----------------------------------------------------------------------------------


async def test_rule_deletes_a_documentation_only_recording_under_do_not_record(
    store: EvidenceStore,
) -> None:
    doc = sidecar_doc(await documentation_recording(store))
    done = rules.object_to(doc, at=NOW, action="do_not_record", via="agent_dtmf", agent_id="agent1")
    assert (done.outcome, done.stops_recording, done.doc) == ("deleted", True, None)


async def test_rule_keeps_the_recording_and_names_the_grounds_under_record_with_grounds(
    store: EvidenceStore,
) -> None:
    doc = sidecar_doc(await documentation_recording(store))
    done = rules.object_to(
        doc,
        at=NOW,
        action="record_with_grounds",
        via="caller_feature",
        agent_id=None,
        grounds_ref="CG-2026-07",
    )
    assert done.outcome == "kept_with_grounds" and not done.stops_recording
    assert done.doc is not None
    assert done.doc["objection"] == {
        "at": "2026-11-24T09:05:00.000Z",
        "via": "caller_feature",
        "agent_id": None,
        "action": "record_with_grounds",
        "grounds_ref": "CG-2026-07",
    }
    again = rules.object_to(
        done.doc, at=NOW, action="record_with_grounds", via="agent_dtmf", agent_id="agent1"
    )
    assert again.outcome == "nothing_to_object"  # once


def test_rule_has_nothing_to_object_to_without_a_documentation_recording() -> None:
    assert rules.object_to(
        None, at=NOW, action="do_not_record", via="caller_digit", agent_id=None
    ) == rules.Objecting("nothing_to_object")


# -- the adapter -------------------------------------------------------------------------------


async def test_agent_code_stops_the_recording_first_then_deletes_it_and_writes_the_ledger(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio = await documentation_recording(store)
    ami = PartyAmi()
    await handler(store, tmp_path, ami).on_objection_event(agent_event())
    assert ami.calls == [("StopMixMonitor", CALLER)]
    assert not audio.exists()
    assert sidecar_doc(audio)["state"] == "tombstone"
    assert sidecar_doc(audio)["reason"] == rules.TOMBSTONE_REASON
    (entry,) = entries(tmp_path)
    assert schema_problems("ledger-entry.schema.json", entry) == []
    assert (entry["via"], entry["by"], entry["agent_id"], entry["outcome"]) == (
        "agent_dtmf",
        "agent",
        "agent1",
        "deleted",
    )


async def test_record_with_grounds_keeps_recording_and_the_ledger_says_who(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio = await documentation_recording(store)
    ami = PartyAmi()
    h = handler(store, tmp_path, ami, WITH_GROUNDS)
    await h.on_objection_event(agent_event(via="caller_feature"))
    assert ami.calls == []  # the recording goes on
    assert audio.exists()
    assert sidecar_doc(audio)["objection"]["grounds_ref"] == "CG-2026-07"
    (entry,) = entries(tmp_path)
    assert (entry["by"], entry["agent_id"], entry["action"]) == (
        "caller",
        None,
        "record_with_grounds",
    )


@pytest.mark.parametrize(
    ("digit", "bridged", "objected"),
    [("3", False, True), ("3", True, False), ("4", False, False)],
    ids=["objection_digit_before_bridge", "digit_while_bridged", "other_digit"],
)
async def test_objection_digit_counts_after_the_notice_until_the_bridge(
    tmp_path: Path, store: EvidenceStore, digit: str, bridged: bool, objected: bool
) -> None:
    audio = await documentation_recording(store)
    ami = PartyAmi()
    await handler(store, tmp_path, ami, bridged=bridged).on_late_digit(CALLER, digit, "docs")
    assert audio.exists() is not objected
    assert [e["via"] for e in entries(tmp_path)] == (["caller_digit"] if objected else [])


@pytest.mark.parametrize(
    "headers",
    [
        agent_event(caller="../../etc"),
        agent_event(via="caller_digit"),  # only the ARI side reports the digit
        agent_event(caller=""),
    ],
)
async def test_malformed_objection_events_change_nothing(
    tmp_path: Path, store: EvidenceStore, headers: dict[str, str]
) -> None:
    audio = await documentation_recording(store)
    ami = PartyAmi()
    await handler(store, tmp_path, ami).on_objection_event(headers)
    assert ami.calls == [] and audio.exists()


async def test_a_route_without_objection_settings_is_not_objected_to(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio = await documentation_recording(store)
    ami = PartyAmi()
    h = ObjectionHandler(ami, store, {}, tmp_path / "recordings", clock=lambda: NOW)
    await h.on_objection_event(agent_event())
    assert ami.calls == [] and audio.exists()


def test_variables_enable_the_codes_only_for_recorded_documentation(
    tmp_path: Path, store: EvidenceStore
) -> None:
    h = handler(store, tmp_path, PartyAmi())
    assert h.variables("docs", ("documentation",)) == [("__" + names.VAR_OBJECTABLE, "1")]
    assert h.variables("docs", ("training",)) == []
    assert h.variables("support", ("documentation",)) == []
