"""The live consent flow on the real Asterisk with real SIP callers (issue: live consent flow).

All behaviours are placed as concurrent calls once per module (the notice alone lasts ~15 s), and
each test checks one caller's outcome: what Asterisk did (the lab dialplan's LABDEST/LABEND log
lines), the ledger entry, and the recording with its sidecar.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from callconsent.config import Config
from callconsent.evidence import sidecar
from callconsent.evidence.wav import inspect
from tests.e2e.lab_app import LabApp, RouteTiming, route_timing, wait_ledger
from tests.harness.asterisk import AsteriskLab, LabLine
from tests.harness.sipp import Call, CallResult, Digit, Pause, run_calls
from tests.support.sealed import caller_of

HOSTILE_NUMBER = "../../etc/passwd;$HOME`id`" + "9" * 40
HOSTILE_NAME = 'Evil "\\" ../../x; $(reboot) ' + "A" * 160


@dataclass
class Placed:
    call: Call
    result: CallResult
    dest: LabLine | None
    end: LabLine


def _calls(support: RouteTiming, docs: RouteTiming) -> dict[str, Call]:
    after_q = support.question_end + 1.0
    late = support.question_end + support.timeout + 4.0
    retry_end = after_q + support.retry_seconds + 1.0
    return {
        "given": Call(
            to="support",
            caller_number="+4510000001",
            timeline=[Pause(after_q), Digit("1"), Pause(6.0)],
        ),
        "refused": Call(
            to="support",
            caller_number="+4510000002",
            timeline=[Pause(after_q), Digit("2"), Pause(3.0)],
        ),
        "silent": Call(to="support", caller_number="+4510000003", timeline=[Pause(late)]),
        "hangup": Call(to="support", caller_number="+4510000004", timeline=[Pause(4.0)]),
        "digit_in_notice": Call(
            to="support",
            caller_number="+4510000005",
            timeline=[Pause(4.0), Digit("1"), Pause(late - 4.0)],
        ),
        "invalid_then_yes": Call(
            to="support",
            caller_number="+4510000006",
            timeline=[
                Pause(after_q),
                Digit("5"),
                Pause(retry_end - after_q),
                Digit("1"),
                Pause(5.0),
            ],
        ),
        "invalid_twice": Call(
            to="support",
            caller_number="+4510000007",
            timeline=[
                Pause(after_q),
                Digit("5"),
                Pause(retry_end - after_q),
                Digit("7"),
                Pause(3.0),
            ],
        ),
        "documentation": Call(
            to="docs", caller_number="+4510000008", timeline=[Pause(docs.notices_end + 6.0)]
        ),
        "hostile_caller_id": Call(
            to="support",
            caller_number=HOSTILE_NUMBER,
            caller_name=HOSTILE_NAME,
            timeline=[Pause(after_q), Digit("1"), Pause(6.0)],
        ),  # like "given": room for a slow start
    }


@pytest.fixture(scope="module")
def placed(asterisk: AsteriskLab, lab_app: LabApp, config: Config) -> dict[str, Placed]:
    mark = asterisk.log_offset()
    calls = _calls(route_timing(config, "support"), route_timing(config, "docs"))
    results = run_calls(list(calls.values()), concurrency=len(calls))
    out: dict[str, Placed] = {}
    for (name, call), result in zip(calls.items(), results, strict=True):
        assert result.answered, result.describe()
        end = asterisk.wait_labend(result.call_id, since=mark)
        dests = [
            line
            for line in asterisk.lab_lines(since=mark)
            if line.kind == "LABDEST" and line.callid == result.call_id
        ]
        out[name] = Placed(call, result, dests[0] if dests else None, end)
    return out


def _entry(config: Config, placed: Placed) -> dict[str, Any]:
    return wait_ledger(config, placed.end.uniqueid)


def _final_sidecar(config: Config, relative: str, timeout: float = 20.0) -> dict[str, Any]:
    path = (config.storage.recordings_dir / relative).with_suffix(".json")
    deadline = time.monotonic() + timeout
    while True:
        doc = json.loads(path.read_text())
        if doc["state"] != "recording" or time.monotonic() > deadline:
            return doc  # type: ignore[no-any-return]
        time.sleep(0.2)


def _assert_reached_destination(p: Placed, status: str, reason: str) -> None:
    assert p.dest is not None, f"call never reached its destination: {p.result.describe()}"
    assert (p.dest.status, p.dest.reason) == (status, reason)


def _assert_recording(config: Config, p: Placed, entry: dict[str, Any]) -> dict[str, Any]:
    assert p.dest is not None
    relative = entry["recording"]
    assert relative, entry
    audio = config.storage.recordings_dir / relative
    assert p.dest.recording == str(audio)
    assert relative == f"{relative[:10]}/{p.end.uniqueid}.wav"
    doc = _final_sidecar(config, relative)
    sidecar.validate(doc)
    assert doc["state"] == "final", doc
    assert doc["recording"]["has_audio"] is True
    data = audio.read_bytes()
    assert doc["recording"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert doc["recording"]["bytes"] == len(data)
    info = inspect(audio)
    assert info.finalised and not info.header_only
    assert info.duration_seconds > 2.0, "the bridged conversation is recorded"
    return doc


def _assert_no_recording(config: Config, p: Placed, entry: dict[str, Any]) -> None:
    assert entry["recording"] is None
    assert entry["recorded_purposes"] == []
    assert not list(config.storage.recordings_dir.rglob(f"{p.end.uniqueid}.*"))


def test_caller_pressing_1_after_the_question_is_recorded_with_a_final_sidecar(
    placed: dict[str, Placed], config: Config
) -> None:
    p = placed["given"]
    _assert_reached_destination(p, "given", "digit")
    entry = _entry(config, p)
    assert (entry["status"], entry["reason"]) == ("given", "digit")
    doc = _assert_recording(config, p, entry)
    (training,) = doc["purposes"]
    assert training["purpose"] == "training" and training["lawful_basis"] == "6(1)(a)"
    consent = training["consent"]
    assert (consent["status"], consent["digit"], consent["attempts"]) == ("given", "1", 1)
    assert consent["question_started_at"] < consent["question_ended_at"] < consent["digit_at"]
    assert "purpose:training" in doc["tags"] and "consent:given" in doc["tags"]
    assert doc["call"]["caller_number"] == "+4510000001"
    assert doc["notices"][0]["played"] is True and len(doc["notices"][0]["version"]) == 64
    # one playback for the notice and the question (one play request): the question started
    # the instant the notice ended (Asterisk's PlaybackContinuing), no second request between
    assert doc["notices"][0]["ended_at"] == consent["question_started_at"]
    assert doc["config_sha256"] == config.sha256


def test_caller_pressing_2_is_refused_and_not_recorded(
    placed: dict[str, Placed], config: Config
) -> None:
    p = placed["refused"]
    _assert_reached_destination(p, "refused", "digit")
    entry = _entry(config, p)
    assert (entry["status"], entry["reason"]) == ("refused", "digit")
    _assert_no_recording(config, p, entry)


def test_silent_caller_is_refused_by_timeout(placed: dict[str, Placed], config: Config) -> None:
    p = placed["silent"]
    _assert_reached_destination(p, "refused", "timeout")
    entry = _entry(config, p)
    assert (entry["status"], entry["reason"]) == ("refused", "timeout")
    _assert_no_recording(config, p, entry)


def test_caller_hanging_up_during_the_notice_is_refused_by_hangup(
    placed: dict[str, Placed], config: Config
) -> None:
    p = placed["hangup"]
    assert p.dest is None, "a caller who hung up never reaches the destination"
    entry = _entry(config, p)
    assert (entry["status"], entry["reason"]) == ("refused", "hangup")
    _assert_no_recording(config, p, entry)


def test_digit_pressed_only_during_the_notice_is_ignored(
    placed: dict[str, Placed], config: Config
) -> None:
    p = placed["digit_in_notice"]
    _assert_reached_destination(p, "refused", "timeout")
    entry = _entry(config, p)
    assert entry["purposes"][0]["consent"]["digit"] is None
    _assert_no_recording(config, p, entry)


def test_invalid_digit_then_1_is_consent_on_the_second_attempt(
    placed: dict[str, Placed], config: Config
) -> None:
    p = placed["invalid_then_yes"]
    _assert_reached_destination(p, "given", "digit")
    entry = _entry(config, p)
    assert entry["purposes"][0]["consent"]["attempts"] == 2
    _assert_recording(config, p, entry)


def test_two_invalid_digits_are_refusal(placed: dict[str, Placed], config: Config) -> None:
    p = placed["invalid_twice"]
    _assert_reached_destination(p, "refused", "invalid")
    _assert_no_recording(config, p, _entry(config, p))


def test_documentation_route_records_after_the_notice_without_asking(
    placed: dict[str, Placed], config: Config
) -> None:
    p = placed["documentation"]
    _assert_reached_destination(p, "not_required", "no_consent_needed")
    entry = _entry(config, p)
    doc = _assert_recording(config, p, entry)
    (documentation,) = doc["purposes"]
    assert documentation["lawful_basis"] in ("6(1)(c)", "6(1)(e)", "6(1)(f)")
    assert documentation["consent"] is None
    assert doc["tags"] == ["purpose:documentation"]


def test_hostile_caller_id_is_stored_as_data_and_never_reaches_a_path(
    placed: dict[str, Placed], config: Config
) -> None:
    p = placed["hostile_caller_id"]
    _assert_reached_destination(p, "given", "digit")
    entry = _entry(config, p)
    doc = _assert_recording(config, p, entry)
    stored_number, stored_name = doc["call"]["caller_number"], doc["call"]["caller_name"]
    # Asterisk cuts the number at ';' and both at 79 characters; what it gave is kept verbatim
    assert HOSTILE_NUMBER.startswith(stored_number) and "../../etc/passwd" in stored_number
    assert "$(reboot)" in stored_name and '"' in stored_name
    assert caller_of(entry, config.storage.ledger_path).number == stored_number
    for path in config.storage.recordings_dir.rglob("*"):
        assert path.resolve().is_relative_to(config.storage.recordings_dir.resolve())
        assert "passwd" not in path.name and "reboot" not in path.name
    assert not Path("/etc/passwd.wav").exists()
