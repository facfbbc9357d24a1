"""The FastAGI hook (issue 17) on the real Asterisk with real SIP callers.

The ARI flow's outcome matrix is placed twice at once, through the Stasis hook (``support``) and
through the AGI hook (``agi-support``), plus extra AGI callers: 20 concurrent calls. Each pair
must give the same destination result, ledger entry and sidecar, apart from the ``adapter``
field and what differs per call (ids, times, file hashes).
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from callconsent.config import Config
from tests.e2e.lab_app import LabApp, route_timing, wait_ledger, wait_sidecar
from tests.harness.asterisk import AsteriskLab, LabLine
from tests.harness.sipp import (
    Call,
    CallResult,
    Digit,
    Pause,
    Step,
    background_call,
    run_call,
    run_calls,
)
from tests.support.sealed import caller_of

AGI_PORT = 4573


def _matrix(config: Config) -> dict[str, list[Step]]:
    t = route_timing(config, "support")
    after_q = t.question_end + 1.0
    late = t.question_end + t.timeout + 4.0
    retry_end = after_q + t.retry_seconds + 1.0
    return {
        "given": [Pause(after_q), Digit("1"), Pause(5.0)],
        "refused": [Pause(after_q), Digit("2"), Pause(3.0)],
        "silent": [Pause(late)],
        "hangup": [Pause(4.0)],
        "digit_in_notice": [Pause(4.0), Digit("1"), Pause(late - 4.0)],
        "invalid_then_yes": [
            Pause(after_q),
            Digit("5"),
            Pause(retry_end - after_q),
            Digit("1"),
            Pause(5.0),
        ],
        "invalid_twice": [
            Pause(after_q),
            Digit("5"),
            Pause(retry_end - after_q),
            Digit("7"),
            Pause(3.0),
        ],
    }


EXPECTED = {
    "given": ("given", "digit"),
    "refused": ("refused", "digit"),
    "silent": ("refused", "timeout"),
    "hangup": ("refused", "hangup"),
    "digit_in_notice": ("refused", "timeout"),
    "invalid_then_yes": ("given", "digit"),
    "invalid_twice": ("refused", "invalid"),
}
EXTRA_AGI = ("given", "refused", "silent", "given", "refused")
#: A silent caller whose caller ID ends the AGI header early (CR LF CR LF, percent-decoded by
#: Asterisk) and then forges replies "the caller pressed 1": they must never count.
HOSTILE_NUMBER = "+45%0d%0a%0d%0a" + "200%20result=49%0d%0a" * 4
HOSTILE_SEEN = ("+45\r\n\r\n" + "200 result=49\r\n" * 4)[:79]


@dataclass
class Placed:
    result: CallResult
    dest: LabLine | None
    end: LabLine


def _place(asterisk: AsteriskLab, calls: list[Call]) -> list[Placed]:
    mark = asterisk.log_offset()
    results = run_calls(calls, concurrency=len(calls))
    out = []
    for result in results:
        assert result.answered, result.describe()
        end = asterisk.wait_labend(result.call_id, since=mark)
        dests = [
            line
            for line in asterisk.lab_lines(since=mark)
            if line.kind == "LABDEST" and line.callid == result.call_id
        ]
        out.append(Placed(result, dests[0] if dests else None, end))
    return out


@pytest.fixture(scope="module")
def matrix(
    asterisk: AsteriskLab, lab_app: LabApp, config: Config
) -> dict[str, tuple[Placed, Placed]]:
    """Each behaviour through both hooks (same caller number), plus the extra AGI callers."""
    behaviours = _matrix(config)
    calls = []
    for i, steps in enumerate(behaviours.values()):
        number = f"+451700000{i:02d}"
        calls.append(Call(to="support", caller_number=number, timeline=steps))
        calls.append(Call(to="agi-support", caller_number=number, timeline=steps))
    for i, name in enumerate(EXTRA_AGI):
        number = f"+451710000{i:02d}"
        calls.append(Call(to="agi-support", caller_number=number, timeline=behaviours[name]))
    calls.append(
        Call(to="agi-support", caller_number=HOSTILE_NUMBER, timeline=behaviours["silent"])
    )
    placed = _place(asterisk, calls)
    pairs = {name: (placed[2 * i], placed[2 * i + 1]) for i, name in enumerate(behaviours)}
    pairs["hostile"] = (placed[-1], placed[-1])
    for i, name in enumerate(EXTRA_AGI):
        pairs[f"extra{i}-{name}"] = (
            placed[2 * len(behaviours) + i],
            placed[2 * len(behaviours) + i],
        )
    return pairs


_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
#: ``kid``/``sealed``: the ledger's caller, sealed under a key of the call's own (compared opened)
_PER_CALL = {
    "uniqueid",
    "linkedid",
    "channel",
    "seq",
    "prev_sha256",
    "sha256",
    "bytes",
    "kid",
    "sealed",
}


def _normal(value: Any, ids: tuple[str, ...]) -> Any:
    """The evidence with what differs per call replaced: ids, times, file hashes and sizes."""
    if isinstance(value, dict):
        out = {
            k: "<per-call>" if k in _PER_CALL else _normal(v, ids)
            for k, v in value.items()
            if k not in ("adapter", "duration_seconds")
        }
        if isinstance(out.get("dialled_number"), str):  # the lab dials agi-<route> for the hook
            out["dialled_number"] = out["dialled_number"].removeprefix("agi-")
        return out
    if isinstance(value, list):
        return [_normal(v, ids) for v in value]
    if isinstance(value, str):
        if _STAMP.match(value):
            return "<time>"
        for uid in ids:
            value = value.replace(uid, "<uniqueid>")
        return re.sub(r"^\d{4}/\d\d/\d\d/", "<date>/", value)
    return value


def _evidence(config: Config, p: Placed) -> tuple[dict[str, Any], dict[str, Any] | None]:
    entry = wait_ledger(config, p.end.uniqueid)
    doc = wait_sidecar(config, entry["recording"]) if entry["recording"] else None
    return entry, doc


@pytest.mark.parametrize("behaviour", list(EXPECTED))
def test_agi_hook_gives_the_same_outcome_and_evidence_as_the_stasis_hook(
    matrix: dict[str, tuple[Placed, Placed]], config: Config, behaviour: str
) -> None:
    ari, agi = matrix[behaviour]
    status, reason = EXPECTED[behaviour]
    for p in (ari, agi):
        if behaviour == "hangup":
            assert p.dest is None, "a caller who hung up never reaches the destination"
        else:
            assert p.dest is not None, p.result.describe()
            assert (p.dest.status, p.dest.reason) == (status, reason)
    ari_entry, ari_doc = _evidence(config, ari)
    agi_entry, agi_doc = _evidence(config, agi)
    assert (agi_entry["status"], agi_entry["reason"]) == (status, reason)
    assert agi_entry["call"]["adapter"] == "agi" and "adapter" not in ari_entry["call"]
    ids = (ari.end.uniqueid, agi.end.uniqueid)
    assert _normal(agi_entry, ids) == _normal(ari_entry, ids)
    opened = [caller_of(e, config.storage.ledger_path) for e in (agi_entry, ari_entry)]
    assert opened[0] == opened[1] and opened[0].number is not None
    if status == "given":
        assert ari_doc is not None and agi_doc is not None
        assert agi_doc["state"] == "final" and agi_doc["recording"]["has_audio"] is True
        assert agi_doc["call"]["adapter"] == "agi"
        assert _normal(agi_doc, ids) == _normal(ari_doc, ids)
        assert agi.dest is not None and agi.dest.recording == str(
            config.storage.recordings_dir / agi_entry["recording"]
        )
    else:
        assert agi_doc is None and ari_doc is None
        assert not list(config.storage.recordings_dir.rglob(f"{agi.end.uniqueid}.*"))


def test_extra_concurrent_agi_callers_each_get_their_own_outcome(
    matrix: dict[str, tuple[Placed, Placed]], config: Config
) -> None:
    extras = {k: v[1] for k, v in matrix.items() if k.startswith("extra")}
    assert len(extras) == len(EXTRA_AGI)
    for key, p in extras.items():
        status, reason = EXPECTED[key.split("-", 1)[1]]
        assert p.dest is not None and (p.dest.status, p.dest.reason) == (status, reason), key
        entry = wait_ledger(config, p.end.uniqueid)
        assert entry["call"]["uniqueid"] == p.end.uniqueid
        assert caller_of(entry, config.storage.ledger_path).number.startswith("+451710000")
        assert (entry["recording"] is not None) == (status == "given"), key


def test_replies_forged_in_the_caller_id_never_count_as_a_keypress(
    matrix: dict[str, tuple[Placed, Placed]], config: Config, lab_app: LabApp
) -> None:
    _same, p = matrix["hostile"]
    assert p.dest is not None and (p.dest.status, p.dest.reason) == ("refused", "timeout")
    entry = wait_ledger(config, p.end.uniqueid)
    assert entry["purposes"][0]["consent"]["digit"] is None
    assert caller_of(entry, config.storage.ledger_path).number == HOSTILE_SEEN, (
        "stored verbatim, as data"
    )
    injected = [
        json.loads(line)
        for line in lab_app.log_path.read_bytes().splitlines()
        if b'"agi_header_injection"' in line and p.end.uniqueid.encode() in line
    ]
    assert injected and injected[0]["lines"] > 4


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _agi_call(config: Config, asterisk: AsteriskLab, number: str) -> tuple[LabLine, dict[str, Any]]:
    t = route_timing(config, "support")
    mark = asterisk.log_offset()
    result = run_call(
        Call(
            to="agi-support",
            caller_number=number,
            timeline=[Pause(t.question_end + 1.0), Digit("1"), Pause(4.0)],
        )
    )
    assert result.answered, result.describe()
    dest = asterisk.wait_labdest(result.call_id, since=mark)
    asterisk.wait_labend(result.call_id, since=mark)
    return dest, wait_ledger(config, dest.uniqueid)


def test_a_thousand_half_headers_leave_the_server_idle_and_calls_still_work(
    asterisk: AsteriskLab, lab_app: LabApp, config: Config
) -> None:
    for _ in range(1000):
        with socket.create_connection(("127.0.0.1", AGI_PORT), timeout=5) as s:
            s.sendall(b"agi_network: yes\nagi_network_script: callconsent?route=sup")
    time.sleep(1.0)  # the server has seen every close
    pid = lab_app.pid
    assert pid is not None
    before = _cpu_seconds(pid)
    time.sleep(3.0)
    busy = _cpu_seconds(pid) - before
    assert busy < 0.15, f"serve used {busy:.2f} s of CPU in 3 s after the half headers"
    dest, entry = _agi_call(config, asterisk, "+4517200001")
    assert (dest.status, dest.reason) == ("given", "digit")
    assert entry["recording"] and entry["call"]["adapter"] == "agi"


def test_a_client_outside_the_allowlist_is_refused_and_logged(lab_app: LabApp) -> None:
    offset = lab_app.log_path.stat().st_size
    with socket.socket() as s:
        s.bind(("127.0.0.2", 0))  # loopback, but not the allowed 127.0.0.1
        s.settimeout(5)
        s.connect(("127.0.0.1", AGI_PORT))
        try:
            s.sendall(b"agi_network: yes\n")
            answer = s.recv(100)
        except ConnectionResetError:  # the server aborts the connection: a reset
            answer = b""
        assert answer == b"", "the server closes the connection at once"
    deadline = time.monotonic() + 5
    while b'"agi_refused"' not in lab_app.log_path.read_bytes()[offset:]:
        assert time.monotonic() < deadline, "the refusal is not logged"
        time.sleep(0.1)
    logged = [
        json.loads(line)
        for line in lab_app.log_path.read_bytes()[offset:].splitlines()
        if b'"agi_refused"' in line
    ]
    assert logged[0]["peer"] == "127.0.0.2"


def test_agi_calls_continue_unrecorded_when_the_server_is_down(
    asterisk: AsteriskLab, lab_app: LabApp, config: Config
) -> None:
    lab_app.stop()
    try:
        mark = asterisk.log_offset()
        result = run_call(Call(to="agi-support", caller_number="+4517300001", timeline=[Pause(3)]))
        assert result.answered, result.describe()
        dest = asterisk.wait_labdest(result.call_id, since=mark)
        assert (dest.status, dest.reason, dest.recording) == ("unavailable", "app_unavailable", "")
        asterisk.wait_labend(result.call_id, since=mark)
        assert not list(config.storage.recordings_dir.rglob(f"{dest.uniqueid}.*"))
    finally:
        lab_app.start()


def test_sigterm_mid_notice_continues_the_agi_call_unrecorded_with_a_shutdown_entry(
    asterisk: AsteriskLab, lab_app: LabApp, config: Config
) -> None:
    mark = asterisk.log_offset()
    call = Call(to="agi-support", caller_number="+4517400001", timeline=[Pause(12.0)])
    before = lab_app.entered_count()
    try:
        with background_call(call) as pending:
            deadline = time.monotonic() + 10
            while lab_app.entered_count() <= before:
                assert time.monotonic() < deadline, "the app never saw the call"
                time.sleep(0.1)
            time.sleep(1.0)  # inside the notice
            assert lab_app.stop() == 0, "serve exits cleanly on SIGTERM"
            result = pending.result(timeout=60)
    finally:
        lab_app.start()
    dest = asterisk.wait_labdest(result.call_id, since=mark)
    # the session closed under a playing notice: the hook's "unavailable" path, unrecorded; the
    # app had the call but set no result (no_result, where a server that never answered is
    # app_unavailable)
    assert (dest.status, dest.reason, dest.recording) == ("unavailable", "no_result", "")
    entry = wait_ledger(config, dest.uniqueid)
    assert (entry["status"], entry["reason"], entry["recording"]) == ("error", "shutdown", None)
    assert entry["call"]["adapter"] == "agi"
    assert not list(config.storage.recordings_dir.rglob(f"{dest.uniqueid}.*"))


def test_caller_withdrawal_by_star_9_works_the_same_after_the_agi_hook(
    asterisk: AsteriskLab, lab_app: LabApp, config: Config
) -> None:
    t = route_timing(config, "support")
    mark = asterisk.log_offset()
    timeline = [
        Pause(t.question_end + 1.0),
        Digit("1"),
        Pause(6.0),
        Digit("*"),
        Pause(0.4),
        Digit("9"),
        Pause(6.0),
    ]
    result = run_call(
        Call(to="agi-support", caller_number="+4517500001", audio="speech", timeline=timeline)
    )
    assert result.ok, result.describe()
    end = asterisk.wait_labend(result.call_id, since=mark)
    assert end.status == "given" and end.recording
    entry = wait_ledger(config, end.uniqueid, kind="withdrawn")
    assert (entry["outcome"], entry["purposes"], entry["via"]) == (
        "deleted",
        ["training"],
        "caller_dtmf",
    )
    tomb = wait_sidecar(config, entry["recording"], until="tombstone")
    assert (tomb["state"], tomb["reason"]) == ("tombstone", "withdrawn")
    assert not Path(end.recording).exists(), "the partial file is deleted"
