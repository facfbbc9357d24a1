"""The FastAGI adapter (issue 17): the same consent machine, planner and evidence store as the
Stasis app, driven over a scripted AGI session (tests/support/agi_fakes.py)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from callconsent import names
from callconsent.agi.adapter import AgiFlow
from callconsent.agi.ended import RecordedCalls
from callconsent.agi.rules import ALL_DIGITS
from callconsent.agi.wire import AgiProtocolError
from callconsent.app import ConfigPlanner
from callconsent.evidence.documents import CallInfo
from callconsent.evidence.ledger import iter_entries
from callconsent.store import EvidenceStore
from tests.support.agi_fakes import FakeLine, request
from tests.support.ledger_faults import GatedLedger, RefusingLedger
from tests.support.sealed import caller_of
from tests.support.stasis_fakes import (
    ShortTimeouts,
    eventually,
    load_demo,
    pcm_wav,
    write_prompts,
)


class Flow:
    def __init__(self, tmp_path: Path) -> None:
        write_prompts(tmp_path / "prompts")
        self.config = load_demo(tmp_path)
        self.config.storage.recordings_dir.mkdir(parents=True, exist_ok=True)
        self.config.storage.ledger_path.parent.mkdir(parents=True, exist_ok=True)
        self.store = EvidenceStore(
            recordings_dir=self.config.storage.recordings_dir,
            ledger_path=self.config.storage.ledger_path,
            config_sha256=self.config.sha256,
        )
        planner = ShortTimeouts(ConfigPlanner(self.config, rng=lambda: 0.0), 1.0)
        self.flow = AgiFlow(planner, self.store)

    async def call(self, line: FakeLine) -> FakeLine:
        await self.flow(line)
        return line

    def entries(self) -> list[dict[str, Any]]:
        path = self.config.storage.ledger_path
        if not path.exists():
            return []
        return [e.entry for e in iter_entries(path) if e.entry is not None]

    def call_entry(self) -> dict[str, Any]:
        (entry,) = [e for e in self.entries() if e["type"] == "call"]
        return entry


@pytest.fixture
def flow(tmp_path: Path) -> Flow:
    return Flow(tmp_path)


def _result(line: FakeLine) -> tuple[str | None, str | None, str | None]:
    v = line.variables
    return v.get(names.VAR_STATUS), v.get(names.VAR_REASON), v.get(names.VAR_RECORDING)


async def test_pressing_1_after_the_question_records_with_adapter_agi(flow: Flow) -> None:
    line = await flow.call(FakeLine(script=["", "1"]))
    status, reason, recording = _result(line)
    assert (status, reason) == ("given", "digit") and recording
    assert list(line.variables)[-1] == names.VAR_STATUS, "STATUS is set last"
    entry = flow.call_entry()
    assert (entry["status"], entry["reason"]) == ("given", "digit")
    caller = caller_of(entry, flow.config.storage.ledger_path)
    assert entry["call"]["adapter"] == "agi" and caller.number == "+4511112222"
    assert entry["call"]["uniqueid"] == "1796455517.1" and entry["call"]["route"] == "support"
    doc = json.loads(Path(recording).with_suffix(".json").read_text())
    assert doc["call"]["adapter"] == "agi" and doc["state"] == "recording"
    assert line.closed, "closing the session continues the call in the dialplan"


async def test_notice_plays_with_no_escape_digits_and_the_question_with_all(flow: Flow) -> None:
    line = await flow.call(FakeLine(script=["1", "", ""]))
    notice, question = line.commands("STREAM FILE")
    assert notice[1] == "" and question[1] == ALL_DIGITS
    assert _result(line)[:2] == ("refused", "timeout")
    assert flow.call_entry()["purposes"][0]["consent"]["digit"] is None


async def test_invalid_digit_then_1_is_consent_on_the_second_attempt(flow: Flow) -> None:
    line = await flow.call(FakeLine(script=["", "5", "", "1"]))
    assert _result(line)[:2] == ("given", "digit")
    assert flow.call_entry()["purposes"][0]["consent"]["attempts"] == 2


async def test_two_invalid_digits_are_refusal(flow: Flow) -> None:
    line = await flow.call(FakeLine(script=["", "5", "7"]))
    assert _result(line) == ("refused", "invalid", "")


async def test_hangup_during_the_notice_writes_refused_hangup_and_sets_nothing(
    flow: Flow,
) -> None:
    line = await flow.call(FakeLine(script=["hangup"]))
    assert line.variables == {}
    entry = flow.call_entry()
    assert (entry["status"], entry["reason"], entry["recording"]) == ("refused", "hangup", None)
    assert not list(flow.config.storage.recordings_dir.rglob("*.json"))


async def test_notice_asterisk_cannot_play_is_notice_failed_after_asking_the_channel(
    flow: Flow,
) -> None:
    line = await flow.call(FakeLine(script=["missing"]))
    assert line.commands("CHANNEL STATUS") == [()]
    assert _result(line) == ("error", "notice_failed", "")


async def test_agi_timeout_mid_flow_continues_unrecorded_with_agi_error(flow: Flow) -> None:
    line = await flow.call(FakeLine(fail={"WAIT FOR DIGIT": TimeoutError()}))
    entry = flow.call_entry()
    assert (entry["status"], entry["reason"], entry["recording"]) == ("error", "agi_error", None)
    assert _result(line)[:2] == ("error", "agi_error")


async def test_a_call_the_hook_answered_gets_no_answer_command(flow: Flow) -> None:
    line = await flow.call(FakeLine(script=["", "1"], state="Up"))
    assert line.commands("ANSWER") == []
    assert line.sent[1][0] == "STREAM FILE"  # the notice, straight after the call's details
    assert _result(line)[:2] == ("given", "digit")


async def test_protocol_error_is_agi_error_too(flow: Flow) -> None:
    await flow.call(FakeLine(fail={"ANSWER": AgiProtocolError("junk")}))
    assert flow.call_entry()["reason"] == "agi_error"


async def test_storage_failure_continues_unrecorded_with_storage_error(
    flow: Flow, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def disk_full(*_args: object) -> str:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(flow.store, "prepare_recording", disk_full)
    line = await flow.call(FakeLine(script=["", "1"]))
    assert _result(line) == ("error", "storage_error", "")
    assert flow.call_entry()["recording"] is None


async def test_unknown_route_is_skipped_with_an_error_entry(flow: Flow) -> None:
    line = await flow.call(FakeLine(request=request("callconsent?route=nosuchroute")))
    assert _result(line) == ("error", "unknown_route", "")
    assert line.commands("ANSWER") == []
    entry = flow.call_entry()
    assert (entry["reason"], entry["call"]["adapter"]) == ("unknown_route", "agi")


async def test_bad_request_is_refused_and_logged_in_the_ledger(flow: Flow) -> None:
    line = await flow.call(FakeLine(request=request("callconsent?route=support&record=all")))
    assert _result(line) == ("error", "bad_agi_request", "")
    assert flow.call_entry()["reason"] == "bad_agi_request"


async def test_request_with_an_unsafe_uniqueid_is_refused_without_a_ledger_entry(
    flow: Flow,
) -> None:
    line = await flow.call(FakeLine(request=request(uniqueid="../../etc/passwd")))
    assert _result(line)[:2] == ("error", "bad_agi_request")
    assert flow.entries() == []


async def test_caller_text_is_read_verbatim_never_from_the_header(flow: Flow) -> None:
    hostile = 'Evil "\\" \n200 result=49\n$(reboot)'
    await flow.call(FakeLine(script=["", "2"], caller=("+45 1", hostile, "")))
    entry = flow.call_entry()
    caller = caller_of(entry, flow.config.storage.ledger_path)
    assert caller.name == hostile and entry["call"]["dialled_number"] is None


async def test_sigterm_mid_notice_continues_the_call_and_logs_shutdown(flow: Flow) -> None:
    line = FakeLine(block=asyncio.Event())
    running = asyncio.create_task(flow.call(line))
    await eventually(lambda: bool(line.commands("STREAM FILE")))
    stopping = asyncio.create_task(flow.flow.shutdown())
    await eventually(lambda: line.closed)
    assert line.block is not None
    line.block.set()  # Asterisk's reply to the prompt comes only once it has played
    await asyncio.wait_for(stopping, 2)
    assert running.done(), "shutdown waits for the flow's ledger entry"
    entry = flow.call_entry()
    assert (entry["status"], entry["reason"], entry["recording"]) == ("error", "shutdown", None)


async def test_hangup_handler_request_finalises_the_recorded_call(
    flow: Flow, monkeypatch: pytest.MonkeyPatch
) -> None:
    ended: list[tuple[CallInfo, datetime]] = []

    async def recording_ended(info: CallInfo, at: datetime) -> None:
        ended.append((info, at))

    monkeypatch.setattr(flow.store, "recording_ended", recording_ended)
    await flow.call(FakeLine(script=["", "1"]))
    done = await flow.call(FakeLine(request=request("callconsent-ended")))
    await eventually(lambda: bool(ended))
    assert ended[0][0].uniqueid == "1796455517.1" and ended[0][0].adapter == "agi"
    assert done.closed and done.sent == [], "the handler's AGI returns at once"
    await flow.call(FakeLine(request=request("callconsent-ended")))
    await asyncio.sleep(0.05)
    assert len(ended) == 1, "a second report of the same end is ignored"


async def test_objection_digit_in_the_notice_is_noted_and_the_notice_plays_on(
    flow: Flow,
) -> None:
    line = await flow.call(FakeLine(request=request("callconsent?route=docs"), script=["3", ""]))
    first, resumed = line.commands("STREAM FILE")
    assert first[1] == "3" and resumed[1:] == ("", "800"), "on from where it stopped"
    assert _result(line) == ("refused", "objection", "")
    assert flow.call_entry()["purposes"][0]["status"] == "objected"


async def test_documentation_route_records_after_the_notice_without_asking(flow: Flow) -> None:
    line = await flow.call(FakeLine(request=request("callconsent?route=docs"), script=[""]))
    status, reason, recording = _result(line)
    assert (status, reason) == ("not_required", "no_consent_needed") and recording
    assert line.commands("WAIT FOR DIGIT") == []


async def test_language_menu_digit_chooses_the_language(flow: Flow) -> None:
    line = await flow.call(
        FakeLine(request=request("callconsent?route=mixed"), script=["8", "", "", "1"])
    )
    menu = line.commands("STREAM FILE")[0]
    assert menu[1] == ALL_DIGITS
    entry = flow.call_entry()
    assert entry["language"] == "en" and entry["status"] == "given"


def test_recorded_calls_never_reported_ended_are_forgotten_after_a_day(flow: Flow) -> None:
    calls = RecordedCalls(flow.store, lambda: datetime.now(UTC))
    info = CallInfo("1.1", "1.1", "PJSIP/x-1", "support", None, None, None, "agi")
    calls.remember(info, now=0.0)
    calls.remember(CallInfo("1.2", "1.2", "PJSIP/x-2", "support", None, None, None), now=10.0)
    calls.remember(CallInfo("1.3", "1.3", "PJSIP/x-3", "support", None, None, None), now=86_405.0)
    assert len(calls) == 2, "only the call older than a day is gone"


async def test_no_recording_starts_while_the_app_cannot_watch_it(flow: Flow) -> None:
    """AMI away (the party watch is blind): the caller's yes is not recorded, as in Stasis."""
    flow.flow = AgiFlow(
        ShortTimeouts(ConfigPlanner(flow.config, rng=lambda: 0.0), 1.0),
        flow.store,
        can_record=lambda: False,
    )
    line = await flow.call(FakeLine(script=["", "1"]))
    assert _result(line) == ("error", "ami_unavailable", "")
    entry = flow.call_entry()
    assert (entry["status"], entry["reason"], entry["recording"]) == (
        "error",
        "ami_unavailable",
        None,
    )
    assert not list(flow.config.storage.recordings_dir.rglob("*.wav"))


async def test_the_caller_hears_the_confirmation_after_the_answer_as_in_stasis(
    flow: Flow, tmp_path: Path
) -> None:
    for prompt in (
        names.CONSENT_GIVEN_PROMPT,
        names.CONSENT_GIVEN_PLAIN_PROMPT,
        names.CONSENT_REFUSED_PROMPT,
    ):
        (tmp_path / "prompts" / "da" / f"{prompt}.wav").write_bytes(pcm_wav(16) + b"confirm")
    line = await flow.call(
        FakeLine(script=["", "1"], request=request("callconsent?route=confirmed"))
    )
    assert _result(line)[:2] == ("given", "digit")
    assert line.variables[names.VAR_CONFIRM_PROMPT].endswith(names.CONSENT_GIVEN_PROMPT)


async def test_a_refused_call_line_continues_unrecorded_and_tombstones_the_sidecar(
    flow: Flow,
) -> None:
    refusing = RefusingLedger(flow.store, times=1)  # the line before recording: disk full
    line = await flow.call(FakeLine(script=["", "1"]))
    assert [r["status"] for r in refusing.refused] == ["given"]
    assert _result(line) == ("error", "storage_error", "")
    assert line.closed
    entry = flow.call_entry()
    assert (entry["status"], entry["reason"], entry["recorded_purposes"]) == (
        "error",
        "storage_error",
        [],
    )
    (sidecar,) = flow.config.storage.recordings_dir.rglob("*.json")
    doc = json.loads(sidecar.read_text())
    assert (doc["state"], doc["reason"]) == ("tombstone", "storage_error")
    assert [e["type"] for e in flow.entries()] == ["call", "deleted"]


async def test_a_call_line_the_ledger_refuses_twice_is_written_before_the_next_call(
    flow: Flow,
) -> None:
    RefusingLedger(flow.store, times=2)  # the line before recording, then the final line
    line = await flow.call(FakeLine(script=["", "1"]))
    assert _result(line) == ("error", "storage_error", "")
    assert [e["type"] for e in flow.entries()] == ["deleted"]  # the call line is held
    other = FakeLine(request=request(uniqueid="1796455517.2"), script=["", "2"])
    await flow.call(other)
    calls = [(e["call"]["uniqueid"], e["reason"]) for e in flow.entries() if e["type"] == "call"]
    assert calls == [("1796455517.1", "storage_error"), ("1796455517.2", "digit")]


async def test_a_finished_agi_call_logs_one_timing_line_as_the_stasis_flow_does(
    flow: Flow,
) -> None:
    with capture_logs() as logs:
        await flow.call(FakeLine(script=["", "1"]))
    (timing,) = [e for e in logs if e["event"] == "call_timing"]
    assert timing["channel_id"] == "1796455517.1"  # bench/live.py keys the calls on it
    assert {"notice_ms", "continue_ms", "digit_at", "continued_at"} <= set(timing)
    assert timing["notice_ms"] >= 0 and timing["continue_ms"] >= 0
    assert timing["continued_at"] >= timing["digit_at"]


async def test_an_agi_caller_gone_in_the_notice_logs_no_continue_time(flow: Flow) -> None:
    with capture_logs() as logs:
        await flow.call(FakeLine(script=["hangup"]))
    (timing,) = [e for e in logs if e["event"] == "call_timing"]
    assert "notice_ms" in timing
    assert not {"continue_ms", "continued_at", "digit_at"} & set(timing)


# -- the ledger line and the result, at once (issue 14) ----------------------------------------


async def test_agi_sets_the_result_while_the_line_is_written_and_closes_only_once_durable(
    flow: Flow,
) -> None:
    gated = GatedLedger(flow.store)
    line = FakeLine(script=["", "1"])
    call = asyncio.create_task(flow.call(line))
    await eventually(lambda: gated.waiting == 1 and names.VAR_STATUS in line.variables)
    assert _result(line)[:2] == ("given", "digit") and _result(line)[2]
    await asyncio.sleep(0.05)
    assert not line.closed  # the hook would start MixMonitor: not before the line is durable
    gated.gate.set()
    await call
    assert line.closed
    assert flow.call_entry()["status"] == "given"


async def test_agi_replaces_a_result_saying_record_clearing_the_path_first(flow: Flow) -> None:
    RefusingLedger(flow.store, times=1)
    line = await flow.call(FakeLine(script=["", "1"]))
    sets = line.assignments
    statuses = [i for i, (name, _value) in enumerate(sets) if name == names.VAR_STATUS]
    assert [sets[i][1] for i in statuses] == ["given", "error"]
    replaced = sets[statuses[0] + 1 :]
    # a failure part-way through the second result must not leave the first one's path in force
    assert replaced[0] == (names.VAR_RECORDING, "")
    assert line.variables[names.VAR_RECORD_AT] == ""
    assert line.variables["__" + names.VAR_AGENT_PURPOSES] == ""
    assert line.variables[names.VAR_WITHDRAWABLE] == ""
    assert _result(line) == ("error", "storage_error", "")
    assert line.closed
