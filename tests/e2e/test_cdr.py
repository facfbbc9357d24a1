"""The consent outcome in the call detail record, read back from a real CDR backend.

The lab loads func_cdr and cdr_custom (config/asterisk/cdr.conf, cdr_custom.conf): one CSV line
per CDR in the chroot's /var/log/asterisk/cdr-custom/callconsent.csv. The hook's
[callconsent-cdr] writes callconsent_status, callconsent_reason, callconsent_recording and, when
MixMonitor starts in the hook, FreePBX's recordingfile.
"""

from __future__ import annotations

import csv
import random
import time
from pathlib import Path

import pytest

from callconsent.config import Config
from tests.e2e.lab_app import LabApp, route_timing
from tests.harness.asterisk import AsteriskLab
from tests.harness.sipp import Call, Digit, Pause, run_calls

COLUMNS = [
    "uniqueid",
    "linkedid",
    "src",
    "dst",
    "dcontext",
    "channel",
    "disposition",
    "billsec",
    "callconsent_status",
    "callconsent_reason",
    "callconsent_recording",
    "recordingfile",
]


def _cdr_file(asterisk: AsteriskLab) -> Path:
    return asterisk.root / "var/log/asterisk/cdr-custom/callconsent.csv"


def _rows(asterisk: AsteriskLab, uniqueid: str, timeout: float = 15.0) -> list[dict[str, str]]:
    """The CDR lines of the caller's channel (written when its CDR ends, at hangup)."""
    deadline = time.monotonic() + timeout
    while True:
        rows: list[dict[str, str]] = []
        path = _cdr_file(asterisk)
        if path.exists():
            with path.open(newline="", encoding="utf-8") as f:
                rows = [dict(zip(COLUMNS, r, strict=True)) for r in csv.reader(f) if r]
        mine = [r for r in rows if r["uniqueid"] == uniqueid]
        if mine or time.monotonic() > deadline:
            return mine
        time.sleep(0.2)


@pytest.fixture(scope="module")
def cdr(asterisk: AsteriskLab, lab_app: LabApp, config: Config) -> dict[str, list[dict[str, str]]]:
    mark = asterisk.log_offset()
    support, docs = route_timing(config, "support"), route_timing(config, "docs")
    after_q = support.question_end + 1.0
    prefix = "+4597" + "".join(random.choices("0123456789", k=5))
    calls = {
        "given": Call(
            to="support",
            caller_number=f"{prefix}1",
            timeline=[Pause(after_q), Digit("1"), Pause(4.0)],
        ),
        "refused": Call(
            to="support",
            caller_number=f"{prefix}2",
            timeline=[Pause(after_q), Digit("2"), Pause(2.0)],
        ),
        "documentation": Call(
            to="docs", caller_number=f"{prefix}3", timeline=[Pause(docs.notices_end + 4.0)]
        ),
    }
    results = run_calls(list(calls.values()), concurrency=len(calls))
    out: dict[str, list[dict[str, str]]] = {}
    for (name, call), result in zip(calls.items(), results, strict=True):
        assert result.answered, result.describe()
        end = asterisk.wait_labend(result.call_id, since=mark)
        rows = _rows(asterisk, end.uniqueid)
        assert rows, f"no CDR for {name} ({end.uniqueid}) in {_cdr_file(asterisk)}"
        assert all(r["src"] == call.caller_number for r in rows), rows
        out[name] = rows
    return out


def _outcome(rows: list[dict[str, str]]) -> tuple[str, str, str, str]:
    """The callconsent fields of the caller's CDR: the same on every line the channel left."""
    fields = {
        (
            r["callconsent_status"],
            r["callconsent_reason"],
            r["callconsent_recording"],
            r["recordingfile"],
        )
        for r in rows
    }
    assert len(fields) == 1, rows
    return fields.pop()


def test_cdr_of_a_caller_who_consented_names_status_reason_and_recording(
    cdr: dict[str, list[dict[str, str]]], config: Config
) -> None:
    status, reason, recording, _file = _outcome(cdr["given"])
    assert (status, reason) == ("given", "digit")
    uniqueid = cdr["given"][0]["uniqueid"]
    assert recording.startswith(str(config.storage.recordings_dir) + "/")
    assert recording.endswith(f"/{uniqueid}.wav")


def test_cdr_of_a_caller_who_refused_says_refused_and_names_no_recording(
    cdr: dict[str, list[dict[str, str]]],
) -> None:
    assert _outcome(cdr["refused"]) == ("refused", "digit", "", "")


def test_cdr_of_a_recording_started_in_the_hook_carries_freepbx_recordingfile(
    cdr: dict[str, list[dict[str, str]]],
) -> None:
    status, reason, recording, recordingfile = _outcome(cdr["documentation"])
    uniqueid = cdr["documentation"][0]["uniqueid"]
    assert status == "not_required", (status, reason)
    assert recording.endswith(f"/{uniqueid}.wav")
    assert recordingfile == f"{uniqueid}.wav"
