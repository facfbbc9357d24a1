"""Several purposes, languages and the right to object, on the real Asterisk."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from callconsent.config import Config
from tests.e2e.lab_app import LabApp, route_timing, wait_ledger
from tests.harness.asterisk import AsteriskLab, LabLine
from tests.harness.sipp import Call, Digit, Pause, run_calls


@pytest.fixture(scope="module")
def placed(asterisk: AsteriskLab, lab_app: LabApp, config: Config) -> dict[str, LabLine]:
    mixed = route_timing(config, "mixed")
    english = route_timing(config, "mixed", "en")
    docs = route_timing(config, "docs")
    calls = {
        "mixed_refuses_training": Call(
            to="mixed",
            caller_number="+4540000001",
            timeline=[Pause(mixed.question_end + 1.0), Digit("2"), Pause(5.0)],
        ),
        "english_by_menu": Call(
            to="mixed",
            caller_number="+4540000002",
            timeline=[
                Pause(0.6),
                Digit("8"),
                Pause(english.question_end + 0.4),
                Digit("1"),
                Pause(4.0),
            ],
        ),
        "objection": Call(
            to="docs",
            caller_number="+4540000003",
            timeline=[Pause(3.0), Digit("3"), Pause(docs.notices_end + 3.0)],
        ),
    }
    mark = asterisk.log_offset()
    results = run_calls(list(calls.values()), concurrency=len(calls))
    out = {}
    for name, result in zip(calls, results, strict=True):
        assert result.answered, result.describe()
        out[name] = asterisk.wait_labdest(result.call_id, since=mark, timeout=90)
        asterisk.wait_labend(result.call_id, since=mark, timeout=90)
    return out


def _sidecar(config: Config, entry: dict[str, object]) -> dict[str, object]:
    path = (config.storage.recordings_dir / str(entry["recording"])).with_suffix(".json")
    doc: dict[str, object] = json.loads(path.read_text())
    return doc


def _stamp(value: object) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def test_refusing_training_on_a_documentation_route_records_for_documentation_only(
    placed: dict[str, LabLine], config: Config
) -> None:
    dest = placed["mixed_refuses_training"]
    assert (dest.status, dest.reason) == ("refused", "digit")
    entry = wait_ledger(config, dest.uniqueid)
    assert entry["recorded_purposes"] == ["documentation"]
    doc = _sidecar(config, entry)
    assert doc["tags"] == ["purpose:documentation"]
    assert [p["purpose"] for p in doc["purposes"]] == ["documentation"]  # type: ignore[attr-defined]
    kept = _stamp(doc["delete_after"]) - _stamp(doc["recording"]["started_at"])  # type: ignore[index]
    assert kept == timedelta(days=90), "documentation retention, not training's"
    statuses = {p["purpose"]: p["status"] for p in entry["purposes"]}
    assert statuses == {"documentation": "not_required", "training": "refused"}


def test_caller_choosing_english_in_the_menu_hears_english_and_evidence_says_en(
    placed: dict[str, LabLine], config: Config
) -> None:
    dest = placed["english_by_menu"]
    assert (dest.status, dest.reason) == ("given", "digit")
    entry = wait_ledger(config, dest.uniqueid)
    assert entry["language"] == "en"
    assert {n["language"] for n in entry["notices"]} == {"en"}
    assert all(n["played"] for n in entry["notices"])
    doc = _sidecar(config, entry)
    assert doc["language"] == "en"
    assert sorted(doc["tags"]) == [  # type: ignore[arg-type]
        "agent:echo",  # the lab destination's agent, who consented to training (R15)
        "consent:given",
        "purpose:documentation",
        "purpose:training",
    ]


def test_objection_digit_during_the_notice_stops_documentation_recording(
    placed: dict[str, LabLine], config: Config
) -> None:
    dest = placed["objection"]
    assert (dest.status, dest.reason, dest.recording) == ("refused", "objection", "")
    entry = wait_ledger(config, dest.uniqueid)
    assert entry["recording"] is None
    (documentation,) = entry["purposes"]
    assert (documentation["status"], documentation["reason"]) == ("objected", "objection")
    assert not list(config.storage.recordings_dir.rglob(f"{dest.uniqueid}.*"))
