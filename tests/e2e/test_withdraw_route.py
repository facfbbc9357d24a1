"""Withdrawal after the call on the phone, on the real Asterisk (R17a, b; issue 6).

A caller who said yes to training on two earlier calls (and made a documentation-only call) dials
the lab's withdrawal route (``withdraw`` in extensions-lab.conf: ``[callconsent-withdraw-route]``)
from the same number and presses 1: both training recordings are deleted (tombstones, ledger
``withdrawn``), the documentation recording is untouched, and the app log and the audit log say
what was done. A caller with a withheld number hears the call reference after saying yes on the
``callref`` route (``call_reference: withheld``) and types it on the route instead. With the app
down, the route marks the request in AstDB and the app carries it out when it is back.
"""

from __future__ import annotations

import json
import random
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from callconsent.config import Config
from callconsent.evidence import callref
from tests.e2e.lab_app import LabApp, route_timing, wait_ledger
from tests.e2e.lab_app import wait_sidecar as _sidecar
from tests.e2e.withdraw_route import LATE_EVENT, WITHHELD, route_call, route_result
from tests.harness.asterisk import AsteriskLab, LabLine
from tests.harness.sipp import Call, CallResult, Digit, Pause, run_call, run_calls


def _number() -> str:
    """A caller number of this run only, so earlier runs' calls stay out of scope: +4599 and six
    random digits (no other test calls from +4599: a withdrawal by number takes every call of
    the number, so a shared number would widen the scope)."""
    return f"+4599{random.randrange(10**6):06d}"


def _consenting_call(config: Config, route: str, number: str, talk: float = 4.0) -> Call:
    timing = route_timing(config, route)
    return Call(
        to=route,
        caller_number=number,
        audio="speech",
        timeline=[Pause(timing.question_end + 1.0), Digit("1"), Pause(talk)],
    )


def _documentation_call(config: Config, number: str) -> Call:
    timing = route_timing(config, "docs")
    return Call(
        to="docs", caller_number=number, audio="speech", timeline=[Pause(timing.notices_end + 4.0)]
    )


def _recorded(asterisk: AsteriskLab, result: CallResult, since: int) -> LabLine:
    assert result.ok, result.describe()
    end = asterisk.wait_labend(result.call_id, since=since)
    assert end.recording, f"nothing recorded: {end.line}"
    return end


def _answer_ms(asterisk: AsteriskLab, route: str, since: int) -> float:
    """Milliseconds from the route's UserEvent to its wait ending with the app's answer (the
    wait polls every 100 ms), from Asterisk's own log."""

    def at(pattern: str) -> datetime:
        m = asterisk.wait_for_log(rf"(?m)^\[([0-9-]+ [0-9:.]+)\].*{pattern}", since)
        return datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f")

    sent = at(rf"UserEvent\(\".*\", \"CallconsentWithdrawRequest,Request: {re.escape(route)}-0,")
    answered = at(rf"callconsent withdraw request={re.escape(route)}-0 ")
    return (answered - sent).total_seconds() * 1000


def _audit(config: Config, request_id: str) -> dict[str, Any]:
    path = config.storage.ledger_path.parent / "audit.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    [line] = [a for a in lines if request_id in (a.get("reason") or "")]
    return line


def _app_log(lab_app: LabApp, request_id: str) -> dict[str, Any]:
    for line in lab_app.log_path.read_text().splitlines():
        if '"withdraw_request_done"' in line and request_id in line:
            entry: dict[str, Any] = json.loads(line)
            return entry
    raise AssertionError(f"no withdraw_request_done for {request_id} in the app log")


def _assert_withdrawn(config: Config, end: LabLine, via: str) -> None:
    entry = wait_ledger(config, end.uniqueid, kind="withdrawn")
    assert (entry["outcome"], entry["purposes"], entry["via"]) == ("deleted", ["training"], via)
    tomb = _sidecar(config, end.recording, until="tombstone")
    assert (tomb["state"], tomb["reason"]) == ("tombstone", "withdrawn")
    assert not Path(end.recording).exists(), "the training recording must be deleted"
    assert wait_ledger(config, end.uniqueid, kind="deleted")["reason"] == "withdrawn"


def _marker(asterisk: AsteriskLab, request_id: str) -> bool:
    return f"/callconsent/withdrawreq/{request_id}" in asterisk.cli(
        "database show callconsent withdrawreq"
    )


def test_caller_presses_1_on_the_route_and_both_training_recordings_are_deleted(
    asterisk: AsteriskLab, lab_app: LabApp, config: Config, log_mark: int
) -> None:
    number = _number()
    earlier = run_calls(
        [
            _consenting_call(config, "support", number),
            _consenting_call(config, "support", number),
            _documentation_call(config, number),
        ]
    )  # at once
    trainings = [_recorded(asterisk, result, log_mark) for result in earlier[:2]]
    docs = _recorded(asterisk, earlier[2], log_mark)
    for end in trainings:
        assert _sidecar(config, end.recording, until="final")["state"] == "final"
    docs_before = _sidecar(config, docs.recording, until="final")
    assert docs_before["state"] == "final"

    route, answer = route_result(asterisk, run_call(route_call(number, "1")), log_mark)
    assert answer == "done"
    print(
        f"withdrawal route: the app answered {_answer_ms(asterisk, route, log_mark):.0f} ms "
        "after the UserEvent"
    )  # shown with -s
    for end in trainings:
        _assert_withdrawn(config, end, via="number")
    assert _sidecar(config, docs.recording, until="final") == docs_before  # untouched
    assert Path(docs.recording).exists()
    request = f"{route}-0"
    report = _app_log(lab_app, request)
    assert (report["result"], report["by"], report["deleted"]) == ("done", "number", 2)
    assert set(report["deleted_ids"]) == {e.uniqueid for e in trainings}
    assert docs.uniqueid in report["call_ids"] and report["kept_for_documentation"] == 0
    audit = _audit(config, request)
    assert (audit["action"], audit["actor"]) == ("withdraw", "ivr")
    assert set(audit["deleted"]) == {e.uniqueid for e in trainings}
    digits = number.lstrip("+")
    assert digits not in json.dumps(audit) and digits not in json.dumps(report)
    assert not _marker(asterisk, request), "the marker is deleted once done"
    lines = asterisk.read_log(log_mark)
    assert "callconsent-withdraw-done" in lines and "Dangerous function" not in lines
    assert re.search(LATE_EVENT, lines) is None, "answered in time: no late event"


def test_withheld_caller_hears_the_call_reference_and_withdraws_with_it(
    asterisk: AsteriskLab, lab_app: LabApp, config: Config, log_mark: int
) -> None:
    talk = 12.0  # the reference is read before the destination (~7 s)
    end = _recorded(
        asterisk, run_call(_consenting_call(config, "callref", WITHHELD, talk)), log_mark
    )
    ref = callref.call_ref(end.uniqueid, callref.load_key(config.storage.ledger_path))
    said = asterisk.find_log(r"SayDigits\(\"[^\"]*\", \"(\d+)\"\)", log_mark)
    assert [m.group(1) for m in said] == [ref], "the caller hears the call's reference"
    assert _sidecar(config, end.recording, until="final")["state"] == "final"

    wrong = ref[:3] + str((int(ref[3]) + 1) % 10) + ref[4:]  # a typo: the check digit catches it
    call = route_call(WITHHELD, wrong, then=ref, hangup_after=28.0)  # "not valid", then again
    route, answer = route_result(asterisk, run_call(call), log_mark)
    assert answer == "done"
    assert (
        asterisk.find_log(
            rf"(?m)callconsent withdraw request={re.escape(route)}-1 by=call_ref "
            r"result=bad_ref$",
            log_mark,
        )
        != []
    )
    _assert_withdrawn(config, end, via="call_ref")
    report = _app_log(lab_app, f"{route}-2")
    assert (report["by"], report["deleted_ids"]) == ("call_ref", [end.uniqueid])


def test_request_made_while_the_app_is_down_is_carried_out_when_it_is_back(
    asterisk: AsteriskLab, lab_app: LabApp, config: Config, log_mark: int
) -> None:
    number = _number()
    end = _recorded(asterisk, run_call(_consenting_call(config, "support", number)), log_mark)
    assert _sidecar(config, end.recording, until="final")["state"] == "final"
    try:
        assert lab_app.stop() == 0
        route, answer = route_result(asterisk, run_call(route_call(number, "1")), log_mark)
        assert answer == "", "nobody answered: the caller hears 'registered'"
        lines = asterisk.read_log(log_mark)
        assert "callconsent-withdraw-registered" in lines
        late = [m["request"] for m in re.finditer(LATE_EVENT, lines)]
        assert late == [f"{route}-0"], "it read no answer: the late event (nobody reads it)"
        assert _marker(asterisk, f"{route}-0"), "the route marks the request in AstDB"
        assert Path(end.recording).exists()
    finally:
        lab_app.start()
    _assert_withdrawn(config, end, via="number")
    deadline = time.monotonic() + 10
    while _marker(asterisk, f"{route}-0"):
        assert time.monotonic() < deadline, "the marker stays after the app carried it out"
        time.sleep(0.2)
    assert "recovered at AMI login" in _audit(config, f"{route}-0")["reason"]
