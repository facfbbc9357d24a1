"""The ARI adapter: realistic ARI events in, ARI calls and evidence out (no Asterisk).

Each test drives :meth:`StasisApp.on_channel_event` with events shaped like Asterisk's, over a
fake ARI that records calls, the real planner on the demo config and the real evidence store.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from callconsent import names
from callconsent.app import ConfigPlanner
from callconsent.ari import AriError
from callconsent.evidence.caller_keys import store_path
from callconsent.evidence.ledger import verify_chain
from callconsent.stasis import StasisApp
from tests.support.ledger_faults import RefusingLedger
from tests.support.sealed import caller_of
from tests.support.stasis_fakes import (
    Harness,
    ari_error,
    channel_event,
    eventually,
    files_under,
    is_file,
    load_demo,
    pcm_wav,
    playback_event,
    schema_problems,
    stasis_start,
    write_audio,
    write_prompts,
)

REC, REASON, STATUS = names.VAR_RECORDING, names.VAR_REASON, names.VAR_STATUS
CID = "1764000000.42"
#: 00:30 on 25 November at UTC+2 is still 24 November in UTC: the date folder is 2026/11/24
LOCAL_AFTER_MIDNIGHT = datetime(2026, 11, 25, 0, 30, tzinfo=timezone(timedelta(hours=2)))


def fixed_clock() -> datetime:
    return LOCAL_AFTER_MIDNIGHT


def result(status: str, reason: str, recording: str = "") -> list[tuple[str, str]]:
    """The variables in the order the adapter must set them: STATUS last."""
    return [(REC, recording), (REASON, reason), (STATUS, status)]


def training_waits_for_agent(channel_id: str) -> list[tuple[str, str]]:
    """A training-only recording starts at the agent bridge (R15): set before the result."""
    return [
        (names.VAR_RECORD_AT, "bridge"),
        ("__" + names.VAR_CALLER, channel_id),
        ("__" + names.VAR_AGENT_PURPOSES, "training"),
        ("__" + names.VAR_AGENT_WAIT, "2"),
        *withdrawable("training"),
    ]


def withdrawable(purposes: str, keeps: str = "") -> list[tuple[str, str]]:
    """The caller's withdrawal code is enabled for a consent purpose (R16); no prompts folder."""
    return [
        (names.VAR_WITHDRAW_KEEPS, keeps),
        (names.VAR_WITHDRAW_PROMPT, ""),
        (names.VAR_WITHDRAWABLE, purposes),
    ]


def read_json(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="ascii"))
    return doc


def read_bytes(path: Path) -> bytes:
    return path.read_bytes()


def assert_ledger_sound(h: Harness) -> None:
    """Every ledger line matches the shipped schema and the hash chain holds."""
    for entry in h.ledger():
        assert schema_problems("ledger-entry.schema.json", entry) == [], entry
    assert verify_chain(h.ledger_path) == []


# -- consent given: the recording path, the sidecar, the ledger -----------------------------


async def test_digit_1_after_question_sets_recording_reason_then_status_given(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path, clock=fixed_clock)
    await h.answer_question(CID, "1")

    audio = h.recordings / "2026" / "11" / "24" / f"{CID}.wav"
    assert audio.is_absolute()
    assert h.ari.variables(CID) == training_waits_for_agent(CID) + result(
        "given", "digit", str(audio)
    )
    assert h.ari.continues(CID) == 1
    assert h.ari.of("answer") == [("answer", CID)]
    assert ("subscribe", f"channel:{CID}") in h.ari.calls
    assert not audio.exists()  # MixMonitor writes it, not the app


async def test_a_call_the_hook_answered_gets_no_answer_request_and_hears_the_notice_at_once(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path, clock=fixed_clock)
    await h.send(CID, stasis_start(CID, "support", state="Up"))

    assert h.ari.of("answer") == []
    assert len(h.ari.plays(CID)) == 1  # the notice, straight after StasisStart
    await h.play_through(CID)
    await h.play_through(CID)
    await h.digit(CID, "1")
    assert h.ari.continues(CID) == 1
    assert h.ari.result(CID)[STATUS] == "given"


async def test_consent_given_writes_a_recording_sidecar_that_matches_the_schema(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path, clock=fixed_clock)
    await h.answer_question(CID, "1")

    (path,) = h.sidecars()
    assert path == h.recordings / "2026" / "11" / "24" / f"{CID}.json"
    doc = read_json(path)
    assert schema_problems("sidecar.schema.json", doc) == []
    assert doc["state"] == "recording"
    assert doc["call"]["uniqueid"] == CID
    assert doc["call"]["caller_number"] == "4512345678"
    assert doc["call"]["route"] == "support"
    assert doc["recording"]["file"] == f"2026/11/24/{CID}.wav"
    assert doc["recording"]["started_at"] == "2026-11-24T22:30:00.000Z"
    assert doc["purposes"] == []  # training is listed only once the agent consents (R15)
    (purpose,) = doc["agent_purposes"]
    assert purpose["agent_consent"]["status"] == "pending"
    assert purpose["purpose"] == "training"
    assert purpose["consent"]["status"] == "given"
    assert purpose["consent"]["digit"] == "1"
    assert purpose["consent"]["question_id"] == "lab_training_v1.question"
    assert len(purpose["consent"]["question_version"]) == 64
    (notice,) = doc["notices"]
    assert notice["played"] is True and len(notice["version"]) == 64
    assert doc["config_sha256"] == h.config.sha256
    assert doc["delete_after"] == "2026-12-24T22:30:00.000Z"  # 30 days of training retention


async def test_consent_given_writes_one_call_entry_to_the_ledger(tmp_path: Path) -> None:
    h = Harness(tmp_path, clock=fixed_clock)
    await h.answer_question(CID, "1")

    (entry,) = h.ledger()
    assert entry["type"] == "call"
    assert (entry["status"], entry["reason"]) == ("given", "digit")
    assert entry["recorded_purposes"] == ["training"]
    assert entry["recording"] == f"2026/11/24/{CID}.wav"
    assert entry["call"]["uniqueid"] == CID
    assert_ledger_sound(h)


async def test_evidence_times_come_from_the_ari_event_timestamps(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.start(CID)
    await h.play_started(CID)  # the notice, then the question in the same playback:
    await h.play_finished(CID, timestamp="2026-11-24T13:00:00.250+0100")  # ... the switch
    await h.play_started(CID, timestamp="2026-11-24T13:00:00.260+0100")
    await h.play_finished(CID, timestamp="2026-11-24T13:00:03.500+0100")
    await h.digit(CID, "1")

    consent = h.calls_in_ledger(CID)[0]["purposes"][0]["consent"]
    assert consent["question_started_at"] == "2026-11-24T12:00:00.250Z"
    assert consent["question_ended_at"] == "2026-11-24T12:00:03.500Z"


async def test_channel_destroyed_finalises_the_sidecar_with_the_audio_hash(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    await h.answer_question(CID, "1")
    audio = Path(h.ari.result(CID)[REC])
    await h.agent_consents(CID)
    await h.send(CID, channel_event("StasisEnd", CID))  # back in the dialplan: MixMonitor runs
    assert h.app.active_calls == 1  # still waiting for the channel's end
    wav = pcm_wav(8000)  # one second of audio
    write_audio(audio, wav)

    await h.send(CID, channel_event("ChannelDestroyed", CID))

    doc = read_json(audio.with_suffix(".json"))
    assert schema_problems("sidecar.schema.json", doc) == []
    assert doc["state"] == "final"
    assert doc["recording"]["sha256"] == hashlib.sha256(wav).hexdigest()
    assert doc["recording"]["bytes"] == len(wav)
    assert doc["recording"]["has_audio"] is True
    assert doc["recording"]["duration_seconds"] == 1.0
    assert [e["type"] for e in h.ledger()] == ["call", "agent_decision", "recording_final"]
    final = h.ledger()[2]
    assert final["call"] == {"uniqueid": CID}
    assert final["recording"]["sha256"] == hashlib.sha256(wav).hexdigest()
    assert hashlib.sha256(read_bytes(audio)).hexdigest() == doc["recording"]["sha256"]
    assert h.app.active_calls == 0
    assert_ledger_sound(h)


async def test_header_only_recording_becomes_a_no_audio_tombstone(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.answer_question(CID, "1")
    audio = Path(h.ari.result(CID)[REC])
    await h.agent_consents(CID)
    header = pcm_wav(0)
    assert len(header) == 44
    write_audio(audio, header)

    await h.hangup(CID)

    assert not is_file(audio)
    doc = read_json(audio.with_suffix(".json"))
    assert schema_problems("sidecar.schema.json", doc) == []
    assert doc["state"] == "tombstone"
    assert doc["reason"] == "no_audio"
    assert doc["call"] == {"uniqueid": CID}  # no personal data left
    assert [e["type"] for e in h.ledger()] == [
        "call",
        "agent_decision",
        "recording_final",
        "deleted",
    ]
    assert h.ledger()[3]["reason"] == "no_audio"
    assert_ledger_sound(h)


# -- refusal -------------------------------------------------------------------------------


async def test_digit_2_refuses_with_no_recording_and_no_sidecar(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.answer_question(CID, "2")

    assert h.ari.variables(CID) == result("refused", "digit")
    assert h.ari.continues(CID) == 1
    assert h.sidecars() == []
    assert ("subscribe", f"channel:{CID}") not in h.ari.calls
    (entry,) = h.ledger()
    assert (entry["status"], entry["reason"]) == ("refused", "digit")
    assert entry["recording"] is None and entry["recorded_purposes"] == []
    assert entry["purposes"][0]["consent"]["digit"] == "2"
    assert_ledger_sound(h)


async def test_silence_after_the_question_refuses_by_timeout(tmp_path: Path) -> None:
    h = Harness(tmp_path, timeout=0.2)
    await h.start(CID)
    await h.play_through(CID)
    await h.play_through(CID)
    assert h.ari.variables(CID) == []

    await eventually(lambda: h.ari.continues(CID) == 1 and bool(h.ledger()))

    assert h.ari.variables(CID) == result("refused", "timeout")
    (entry,) = h.ledger()
    assert (entry["status"], entry["reason"]) == ("refused", "timeout")
    assert entry["purposes"][0]["consent"]["reason"] == "timeout"
    assert h.sidecars() == []


async def test_hangup_during_the_notice_continues_nothing_and_logs_refused_hangup(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    await h.start(CID)
    await h.play_started(CID)

    await h.hangup(CID)

    assert h.ari.continues(CID) == 0
    assert h.ari.variables(CID) == []
    (entry,) = h.ledger()
    assert (entry["status"], entry["reason"]) == ("refused", "hangup")
    assert entry["notices"][0]["played"] is False
    assert h.sidecars() == []
    assert h.app.active_calls == 0
    assert_ledger_sound(h)


async def test_digit_pressed_during_the_notice_is_ignored(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.start(CID)
    await h.play_started(CID)
    await h.digit(CID, "1")  # before any question: not consent
    await h.play_finished(CID)
    assert h.ari.variables(CID) == []
    ((media, _),) = h.ari.plays(CID)  # the question is asked anyway: it follows the notice
    assert isinstance(media, list) and len(media) == 2 and h.ari.of("stop_playback") == []

    await h.play_through(CID)
    await h.digit(CID, "2")

    assert h.ari.variables(CID) == result("refused", "digit")
    assert h.sidecars() == []


async def test_digit_during_the_question_stops_it_and_counts(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.start(CID)
    await h.play_through(CID)
    await h.play_started(CID)
    question = h.last_playback(CID)

    await h.digit(CID, "1")

    assert h.ari.of("stop_playback") == [("stop_playback", question)]
    assert h.ari.result(CID)[STATUS] == "given"


async def test_invalid_digit_plays_the_retry_prompt_then_a_valid_one_counts(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    await h.answer_question(CID, "7")
    medias = [m for m, _ in h.ari.plays(CID)]
    assert medias[-1].endswith("/da/lab-training-v1-retry")
    assert h.ari.variables(CID) == []

    await h.play_through(CID)
    await h.digit(CID, "1")

    assert h.ari.result(CID)[STATUS] == "given"
    assert h.calls_in_ledger(CID)[0]["purposes"][0]["consent"]["attempts"] == 2


# -- routes --------------------------------------------------------------------------------


async def test_documentation_route_records_after_the_notice_without_a_question(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    await h.start(CID, "docs")
    await h.play_through(CID)

    (play,) = h.ari.plays(CID)
    assert play[0].endswith("/da/lab-docs-v1")
    variables = h.ari.variables(CID)
    assert [name for name, _ in variables] == [REC, REASON, STATUS]
    assert variables[2] == (STATUS, "not_required")
    assert variables[0][1].endswith(f"/{CID}.wav")
    (path,) = h.sidecars()
    doc = read_json(path)
    assert schema_problems("sidecar.schema.json", doc) == []
    assert doc["purposes"] == [
        {
            "purpose": "documentation",
            "lawful_basis": "6(1)(f)",
            "retention_days": 90,
            "consent": None,
        }
    ]
    assert doc["tags"] == ["purpose:documentation"]
    assert h.ledger()[0]["recorded_purposes"] == ["documentation"]


async def test_disabled_route_continues_unrecorded_with_route_disabled(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.start(CID, "closed")

    assert h.ari.variables(CID) == result("not_required", "route_disabled")
    assert h.ari.continues(CID) == 1
    assert h.ari.of("answer") == [] and h.ari.of("play") == []
    (entry,) = h.ledger()
    assert (entry["status"], entry["reason"]) == ("not_required", "route_disabled")
    assert entry["call"]["route"] == "closed"
    assert h.app.active_calls == 0
    assert_ledger_sound(h)


async def test_unknown_route_continues_with_error_unknown_route(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.start(CID, "nosuch")

    assert h.ari.variables(CID) == result("error", "unknown_route")
    assert h.ari.continues(CID) == 1
    assert h.ari.of("answer") == []
    (entry,) = h.ledger()
    assert (entry["status"], entry["reason"]) == ("error", "unknown_route")
    assert_ledger_sound(h)


async def test_hook_without_a_route_argument_is_still_continued(tmp_path: Path) -> None:
    """No Stasis argument and a dialled number no route claims: error, continued, no crash."""
    h = Harness(tmp_path)
    await h.start(CID, None)

    assert h.ari.variables(CID) == result("error", "unknown_route")
    assert h.ari.continues(CID) == 1


# -- fail safe -----------------------------------------------------------------------------


async def test_answer_failing_continues_with_error_ari_error(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.ari.fail["answer"] = ari_error()
    await h.start(CID)

    assert h.ari.variables(CID) == result("error", "ari_error")
    assert h.ari.continues(CID) == 1
    assert h.ari.of("play") == []
    (entry,) = h.ledger()
    assert (entry["status"], entry["reason"]) == ("error", "ari_error")
    assert h.sidecars() == []
    assert_ledger_sound(h)


async def test_play_failing_continues_with_error_ari_error(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.ari.fail["play"] = ari_error()
    await h.start(CID)

    assert h.ari.variables(CID) == result("error", "ari_error")
    assert h.ari.continues(CID) == 1


@pytest.mark.parametrize("in_the_way", ["recordings", "recordings/2026"])
async def test_storage_failure_continues_unrecorded_with_storage_error(
    tmp_path: Path, in_the_way: str
) -> None:
    h = Harness(tmp_path, clock=fixed_clock)
    blocker = tmp_path / in_the_way
    if blocker.is_dir():
        blocker.rmdir()
    blocker.write_text("not a folder")

    await h.answer_question(CID, "1")

    assert h.ari.variables(CID) == result("error", "storage_error")
    assert h.ari.continues(CID) == 1
    (entry,) = h.ledger()
    assert (entry["status"], entry["reason"]) == ("error", "storage_error")
    assert entry["recording"] is None and entry["recorded_purposes"] == []
    assert_ledger_sound(h)


async def test_sidecar_already_present_is_a_storage_error_not_an_overwrite(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path, clock=fixed_clock)
    existing = h.recordings / "2026" / "11" / "24" / f"{CID}.json"
    existing.parent.mkdir(parents=True)
    existing.write_text('{"earlier": true}')

    await h.answer_question(CID, "1")

    assert h.ari.variables(CID) == result("error", "storage_error")
    assert existing.read_text() == '{"earlier": true}'


async def test_missing_notice_audio_is_error_notice_failed_without_playing(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    (tmp_path / "prompts" / "da" / "lab-training-v1.wav").unlink()
    await h.start(CID)

    assert h.ari.of("play") == []
    assert h.ari.variables(CID) == result("error", "notice_failed")
    assert h.ari.continues(CID) == 1
    (entry,) = h.ledger()
    assert entry["notices"][0]["version"] == ""
    assert entry["notices"][0]["played"] is False
    assert_ledger_sound(h)


async def test_missing_question_audio_refuses_without_playing_the_question(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    (tmp_path / "prompts" / "da" / "lab-training-v1-question.wav").unlink()
    await h.start(CID)
    await h.play_through(CID)

    assert len(h.ari.plays(CID)) == 1  # the notice only
    assert h.ari.variables(CID) == result("refused", "notice_failed")
    assert h.sidecars() == []


async def test_failed_notice_playback_is_error_notice_failed(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.start(CID)
    await h.play_started(CID)
    await h.play_finished(CID, state="failed")

    assert h.ari.variables(CID) == result("error", "notice_failed")
    assert len(h.ari.plays(CID)) == 1


async def test_caller_gone_while_setting_the_result_leaves_no_error(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.start(CID)
    await h.play_through(CID)
    await h.play_through(CID)
    h.ari.gone.add(CID)

    await h.digit(CID, "2")
    await h.hangup(CID)

    (attempt,) = h.ari.of("set_variables")  # one request for the whole result: refused (404)
    assert dict(attempt[2])[names.VAR_STATUS] == "refused"
    assert h.ari.variables(CID) == []
    (entry,) = h.ledger()
    assert (entry["status"], entry["reason"]) == ("refused", "digit")


async def test_continue_is_retried_after_a_transient_ari_error(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.ari.fail["continue_in_dialplan"] = ari_error()
    h.ari.fail_times["continue_in_dialplan"] = 1
    await h.start(CID, "closed")

    assert len(h.ari.of("continue_in_dialplan", CID)) == 2


# -- several calls ---------------------------------------------------------------------------


async def test_interleaved_calls_keep_their_evidence_apart(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    a, b = "1764000000.1", "1764000000.2"
    await h.start(a, number="11111111", name="Anna")
    await h.start(b, number="22222222", name="Bo")
    await h.play_through(b)
    await h.play_through(a)
    # a playback event of call b delivered on call a's channel changes nothing on a
    await h.send(a, playback_event("PlaybackFinished", a, h.last_playback(b), "done"))
    await h.play_started(a)
    await h.play_started(b)
    await h.play_finished(b)
    await h.play_finished(a)
    await h.digit(b, "2")
    await h.digit(a, "1")

    assert {pid for _, pid in h.ari.plays(a)}.isdisjoint(pid for _, pid in h.ari.plays(b))
    assert h.ari.result(a)[STATUS] == "given"
    assert h.ari.variables(b) == result("refused", "digit")
    assert h.ari.result(a)[REC].endswith(f"/{a}.wav")
    (entry_a,) = h.calls_in_ledger(a)
    (entry_b,) = h.calls_in_ledger(b)
    caller_a, caller_b = caller_of(entry_a, h.ledger_path), caller_of(entry_b, h.ledger_path)
    assert (caller_a.number, entry_a["status"]) == ("11111111", "given")
    assert (caller_b.number, entry_b["status"]) == ("22222222", "refused")
    assert caller_a.name == "Anna" and caller_b.name == "Bo"
    (path,) = h.sidecars()
    doc = read_json(path)
    assert path.stem == a
    assert (doc["call"]["uniqueid"], doc["call"]["caller_number"]) == (a, "11111111")
    assert_ledger_sound(h)


async def test_concurrent_calls_each_get_their_own_flow(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    ids = [f"1764000001.{n}" for n in range(8)]
    await asyncio.gather(
        *(h.answer_question(cid, "1" if n % 2 else "2") for n, cid in enumerate(ids))
    )

    for n, cid in enumerate(ids):
        assert h.ari.result(cid)[STATUS] == ("given" if n % 2 else "refused")
        assert h.ari.continues(cid) == 1
        assert len(h.calls_in_ledger(cid)) == 1
    assert sorted(p.stem for p in h.sidecars()) == sorted(ids[1::2])
    assert_ledger_sound(h)


# -- hostile input -----------------------------------------------------------------------------

HOSTILE_NUMBER = "../../etc/passwd"
HOSTILE_NAME = '"O\'Brien"; rm -rf / $HOME `id`\r\nX-Injected: 1' + "A" * 200


async def test_hostile_caller_text_is_stored_verbatim_and_never_names_a_file(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    await h.start(CID, number=HOSTILE_NUMBER, name=HOSTILE_NAME)
    await h.play_through(CID)
    await h.play_through(CID)
    await h.digit(CID, "1")

    recording = Path(h.ari.result(CID)[REC])
    assert recording.parent.parent.parent.parent == h.recordings
    assert recording.name == f"{CID}.wav"
    (path,) = h.sidecars()
    doc = read_json(path)
    assert doc["call"]["caller_number"] == HOSTILE_NUMBER
    assert doc["call"]["caller_name"] == HOSTILE_NAME
    (entry,) = h.ledger()
    caller = caller_of(entry, h.ledger_path)
    assert (caller.number, caller.name) == (HOSTILE_NUMBER, HOSTILE_NAME)
    assert h.files_outside() == []
    assert [p.name for p in files_under(h.recordings)] == [f"{CID}.json"]
    assert len(h.ledger_path.read_bytes().splitlines()) == 1  # CR/LF escaped, one line
    assert_ledger_sound(h)


async def test_hostile_channel_id_writes_no_file_and_continues_with_storage_error(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    hostile = "../x"
    await h.answer_question(hostile, "1")

    assert h.ari.variables(hostile) == result("error", "storage_error")
    assert h.ari.continues(hostile) == 1
    assert h.sidecars() == []
    assert h.files_outside() == []
    assert not (tmp_path / "x.json").exists()
    assert not (h.recordings / "x.json").exists()


# -- reconnect and shutdown ----------------------------------------------------------------------


async def test_reconnect_continues_unknown_channels_with_app_restarted(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    strangers = ["1764000002.1", "1764000002.2"]
    h.ari.in_stasis = list(strangers)
    for cid in strangers:
        h.ari.channel_vars[(cid, "CHANNEL(name)")] = f"PJSIP/trunk-{cid}"
        h.ari.channel_vars[(cid, "ARG1")] = "support"

    await h.app.on_connected()

    for cid in strangers:
        assert h.ari.variables(cid) == result("error", "app_restarted")
        assert h.ari.continues(cid) == 1
        (entry,) = h.calls_in_ledger(cid)
        assert (entry["status"], entry["reason"]) == ("error", "app_restarted")
        assert entry["call"]["channel"] == f"PJSIP/trunk-{cid}"
        assert entry["call"]["route"] == "support"
    assert h.ari.of("answer") == []
    assert_ledger_sound(h)


async def test_reconnect_continues_unknown_channels_even_when_the_ledger_fails(
    tmp_path: Path,
) -> None:
    """Evidence trouble for one stranger must not strand the next one in Stasis."""
    h = Harness(tmp_path)
    h.ari.in_stasis = ["1764000002.1", "1764000002.2"]
    h.ledger_path.parent.rmdir()
    h.ledger_path.parent.write_text("not a folder")

    await h.app.on_connected()

    for cid in h.ari.in_stasis:
        assert h.ari.variables(cid) == result("error", "app_restarted")
        assert h.ari.continues(cid) == 1


async def test_reconnect_continues_a_call_still_in_the_flow_unrecorded(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.start(CID)
    await h.play_started(CID)
    notice = h.last_playback(CID)
    h.ari.in_stasis = [CID]

    await h.app.on_connected()

    assert h.ari.variables(CID) == result("error", "event_gap")
    assert h.ari.continues(CID) == 1
    assert ("stop_playback", notice) in h.ari.calls
    (entry,) = h.ledger()
    assert (entry["status"], entry["reason"]) == ("error", "event_gap")
    assert entry["purposes"][0]["status"] == "refused"


async def test_reconnect_ends_a_call_that_left_stasis_during_the_gap(tmp_path: Path) -> None:
    """The caller hung up while events were lost: one ledger entry, the call is let go."""
    h = Harness(tmp_path)
    await h.start(CID)
    await h.play_started(CID)
    h.ari.in_stasis = []

    await h.app.on_connected()

    assert h.ari.continues(CID) == 0
    (entry,) = h.ledger()
    assert (entry["status"], entry["reason"]) == ("refused", "hangup")
    assert h.app.active_calls == 0


async def test_reconnect_leaves_finished_calls_alone(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.answer_question(CID, "1")
    h.ari.in_stasis = [CID]  # the continue has not taken effect yet

    await h.app.on_connected()

    assert h.ari.continues(CID) == 1
    assert len(h.ledger()) == 1


async def test_reconnect_finalises_a_recorded_call_whose_channel_ended_during_the_gap(
    tmp_path: Path,
) -> None:
    """Its ChannelDestroyed was lost (websocket gap, Asterisk restart): the sidecar is
    finalised at the reconnect instead of staying ``recording`` and the call forgotten."""
    h = Harness(tmp_path)
    await h.answer_question(CID, "1")
    audio = Path(h.ari.result(CID)[REC])
    await h.agent_consents(CID)
    await h.send(CID, channel_event("StasisEnd", CID))
    write_audio(audio, pcm_wav(8000))
    h.ari.in_stasis, h.ari.gone = [], {CID}

    await h.app.on_connected()

    await eventually(lambda: h.app.active_calls == 0, within=10)  # after the ledger entry
    assert read_json(audio.with_suffix(".json"))["state"] == "final"
    assert [e["type"] for e in h.ledger()] == ["call", "agent_decision", "recording_final"]


async def test_reconnect_subscribes_again_to_a_recorded_call_still_up(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.answer_question(CID, "1")
    await h.send(CID, channel_event("StasisEnd", CID))
    h.ari.in_stasis = []

    await h.app.on_connected()

    assert h.ari.of("subscribe").count(("subscribe", f"channel:{CID}")) == 2
    assert h.app.active_calls == 1
    assert [e["type"] for e in h.ledger()] == ["call"]


async def test_a_call_stranded_while_ari_was_away_is_continued_at_the_reconnect(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    h.ari.fail["continue_in_dialplan"] = AriError(None, "POST", "/continue", "refused")
    h.ari.fail_times["continue_in_dialplan"] = 3
    await h.answer_question(CID, "2")
    assert h.ari.continues(CID) == 3 and h.app.active_calls == 1
    h.ari.in_stasis = [CID]

    await h.app.on_connected()

    assert h.ari.continues(CID) == 4
    assert [(e["status"], e["reason"]) for e in h.calls_in_ledger(CID)] == [("refused", "digit")]


async def test_reconnect_forgets_a_finished_call_that_left_stasis_in_the_gap(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    await h.answer_question(CID, "2")
    h.ari.in_stasis = []

    await h.app.on_connected()

    assert h.app.active_calls == 0
    assert h.ari.continues(CID) == 1


async def test_no_recording_starts_while_the_app_cannot_watch_it(tmp_path: Path) -> None:
    """AMI away (the party watch cannot see a transfer): the call goes on unrecorded, with its
    reason in the result and the ledger, and no sidecar is written (R36)."""
    h = Harness(tmp_path)
    h.app = StasisApp(
        h.ari, ConfigPlanner(h.config, rng=lambda: 0.0), h.store, can_record=lambda: False
    )
    await h.answer_question(CID, "1")

    assert h.ari.result(CID) == {
        names.VAR_RECORDING: "",
        names.VAR_REASON: "ami_unavailable",
        names.VAR_STATUS: "error",
    }
    assert h.ari.continues(CID) == 1
    (entry,) = h.calls_in_ledger(CID)
    assert (entry["status"], entry["reason"], entry["recording"]) == (
        "error",
        "ami_unavailable",
        None,
    )
    assert h.sidecars() == []


async def test_shutdown_continues_every_call_in_the_flow_unrecorded(tmp_path: Path) -> None:
    h = Harness(tmp_path, timeout=30)  # no consent timeout while the test runs, even under load
    in_notice, awaiting, done = "1764000003.1", "1764000003.2", "1764000003.3"
    await h.start(in_notice)
    await h.start(awaiting)
    await h.play_through(awaiting)
    await h.play_through(awaiting)
    await h.answer_question(done, "1")
    (timer,) = h.app._calls[awaiting].timers.values()  # the consent question's

    await h.app.shutdown()

    for cid in (in_notice, awaiting):
        assert h.ari.variables(cid) == result("error", "shutdown")
        assert h.ari.continues(cid) == 1
        (entry,) = h.calls_in_ledger(cid)
        assert (entry["status"], entry["reason"]) == ("error", "shutdown")
    assert h.ari.continues(done) == 1
    assert h.ari.result(done)[STATUS] == "given"
    assert timer.cancelled()  # it never fires into the ended call
    assert len(h.ledger()) == 3


# -- odd events ------------------------------------------------------------------------------------


async def test_repeated_stasis_start_does_not_start_a_second_flow(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.start(CID)
    await h.start(CID)

    assert h.ari.of("answer") == [("answer", CID)]
    assert len(h.ari.plays(CID)) == 1


async def test_events_for_unknown_channels_are_ignored(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.app.on_channel_event(None, {"type": "DeviceStateChanged"})
    await h.send("nobody", channel_event("ChannelDestroyed", "nobody"))
    await h.digit("nobody", "1")

    assert h.ari.calls == []
    assert h.ledger() == []


async def test_stasis_end_after_a_refusal_forgets_the_call(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.answer_question(CID, "2")
    await h.send(CID, channel_event("StasisEnd", CID))

    assert h.app.active_calls == 0
    assert len(h.ledger()) == 1


def test_fixed_clock_is_after_midnight_locally_but_not_in_utc() -> None:
    assert LOCAL_AFTER_MIDNIGHT.day == 25
    assert LOCAL_AFTER_MIDNIGHT.astimezone(UTC).day == 24


def two_consent_purposes(data: dict[str, Any]) -> None:
    """support asks for training and, with its own notice and question, emergency_quality."""
    quality = copy.deepcopy(data["notices"]["lab_training_v1"])
    quality["purpose"] = "emergency_quality"
    data["notices"]["lab_quality_v1"] = quality
    data["routes"]["support"]["purposes"]["emergency_quality"] = {
        "notice": "lab_quality_v1",
        "lawful_basis": "6(1)(a)",
        "retention_days": 30,
        "consent": {"timeout_seconds": 5},
    }


async def test_two_consent_purposes_both_given_are_recorded(tmp_path: Path) -> None:
    write_prompts(tmp_path / "prompts")
    h = Harness(tmp_path, config=load_demo(tmp_path, two_consent_purposes))
    await h.start(CID)
    await h.play_through(CID)  # training notice
    await h.play_through(CID)  # emergency_quality notice
    await h.play_through(CID)  # first question
    await h.digit(CID, "1")
    await h.play_through(CID)  # second question
    await h.digit(CID, "1")

    assert h.ari.result(CID)[STATUS] == "given"
    assert h.ari.result(CID)[REC].endswith(f"/{CID}.wav")
    (path,) = h.sidecars()
    await h.agent_consents(CID)
    doc = read_json(path)
    assert {p["purpose"] for p in doc["purposes"]} == {"training", "emergency_quality"}
    assert sorted(doc["tags"]) == sorted(
        ["purpose:training", "purpose:emergency_quality", "consent:given", "agent:agent1"]
    )


async def test_an_unusable_caller_key_store_writes_no_call_line_and_the_call_goes_on(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path, clock=fixed_clock)
    store_path(h.ledger_path).mkdir(parents=True)  # the key store cannot be opened

    await h.answer_question(CID, "1")

    assert h.ari.continues(CID) == 1
    assert [e for e in h.ledger() if e["type"] == "call"] == []  # never a line without its key


# -- the call's ledger line refused (issue 14: no recording without its line) --------------


async def test_a_refused_call_line_continues_the_call_unrecorded_and_tombstones_the_sidecar(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path, clock=fixed_clock)
    refusing = RefusingLedger(h.store, times=1)  # the line before recording: disk full

    await h.answer_question(CID, "1")

    assert [r["status"] for r in refusing.refused] == ["given"]
    assert h.ari.result(CID)[STATUS] == "error" and h.ari.result(CID)[REC] == ""
    assert h.ari.result(CID)[REASON] == "storage_error"
    assert h.ari.continues(CID) == 1
    (line,) = h.calls_in_ledger(CID)
    assert (line["status"], line["reason"], line["recorded_purposes"]) == (
        "error",
        "storage_error",
        [],
    )
    (sidecar_path,) = h.sidecars()
    doc = read_json(sidecar_path)
    assert (doc["state"], doc["reason"]) == ("tombstone", "storage_error")
    assert [e["type"] for e in h.ledger()] == ["call", "deleted"]
    assert not sidecar_path.with_suffix(".wav").exists()
    assert h.store.live_recordings() == []
    assert_ledger_sound(h)


async def test_a_call_line_refused_while_the_ledger_is_unwritable_is_written_once_it_is_again(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path, clock=fixed_clock)
    await h.answer_question("1764000000.1", "2")
    kept = h.ledger_path.with_name("ledger.kept")
    h.ledger_path.rename(kept)
    h.ledger_path.mkdir()  # the ledger cannot be opened for writing: every append fails

    await h.answer_question(CID, "1")

    assert (h.ari.result(CID)[STATUS], h.ari.result(CID)[REC]) == ("error", "")
    assert h.ari.continues(CID) == 1
    (sidecar_path,) = h.sidecars()  # no tombstone without its ledger line: reconcile's work
    assert read_json(sidecar_path)["state"] == "recording"
    assert not sidecar_path.with_suffix(".wav").exists()
    h.ledger_path.rmdir()
    kept.rename(h.ledger_path)

    await h.answer_question("1764000000.3", "2")

    calls = [(e["call"]["uniqueid"], e["status"], e["reason"]) for e in h.ledger()]
    assert calls == [
        ("1764000000.1", "refused", "digit"),
        (CID, "error", "storage_error"),  # held, written before the next line
        ("1764000000.3", "refused", "digit"),
    ]
    assert_ledger_sound(h)
