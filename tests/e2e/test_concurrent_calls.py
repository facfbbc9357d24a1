"""50 concurrent callers with mixed behaviour on the real Asterisk: every outcome is right and
no call's evidence ends up in another's."""

from __future__ import annotations

import json

from callconsent.config import Config
from tests.e2e.lab_app import LabApp, route_timing, wait_ledger
from tests.harness.asterisk import AsteriskLab
from tests.harness.sipp import Call, Digit, Pause, run_calls
from tests.support.sealed import caller_of

CALLERS = 50


def test_fifty_concurrent_mixed_callers_each_get_their_own_correct_outcome(
    asterisk: AsteriskLab, lab_app: LabApp, config: Config
) -> None:
    timing = route_timing(config, "support")
    after_q = timing.question_end + 1.0
    behaviours = {
        "given": ("given", "digit", [Pause(after_q), Digit("1"), Pause(3.0)]),
        "refused": ("refused", "digit", [Pause(after_q), Digit("2"), Pause(2.0)]),
        "silent": ("refused", "timeout", [Pause(timing.question_end + timing.timeout + 3.0)]),
    }
    kinds = list(behaviours)
    calls = [
        Call(
            to="support",
            caller_number=f"+45300000{i:02d}",
            caller_name=f"Caller {i}",
            timeline=behaviours[kinds[i % len(kinds)]][2],
        )
        for i in range(CALLERS)
    ]
    mark = asterisk.log_offset()
    results = run_calls(calls, concurrency=CALLERS)

    wrong: list[str] = []
    for i, (call, result) in enumerate(zip(calls, results, strict=True)):
        assert result.answered, result.describe()
        status, reason, _ = behaviours[kinds[i % len(kinds)]]
        dest = asterisk.wait_labdest(result.call_id, since=mark)
        entry = wait_ledger(config, dest.uniqueid)
        got = (dest.status, dest.reason, entry["status"], entry["reason"])
        if got != (status, reason, status, reason):
            wrong.append(f"{call.caller_number}: expected {status}/{reason}, got {got}")
        named = caller_of(entry, config.storage.ledger_path).number
        if named != call.caller_number:
            wrong.append(f"{call.caller_number}: ledger entry names {named}")
        if status == "given":
            sidecar = json.loads(
                (config.storage.recordings_dir / entry["recording"])
                .with_suffix(".json")
                .read_text()
            )
            if (
                sidecar["call"]["caller_number"] != call.caller_number
                or sidecar["call"]["uniqueid"] != dest.uniqueid
            ):
                wrong.append(f"{call.caller_number}: sidecar belongs to {sidecar['call']}")
        elif entry["recording"] is not None or dest.recording:
            wrong.append(f"{call.caller_number}: recorded without consent")
    assert not wrong, "\n".join(wrong)
