"""The ledger refusing lines in the middle of a call (issue 14), on the real Asterisk.

A caller presses 1 after the question; while the notice plays, the ledger file is made
read-only (a read-only bind mount over it: the app, root or not, gets ``EROFS``). The call's
ledger line, written before the result says "record", is refused, so:

- the call goes on to its destination unrecorded (``error``/``storage_error``): MixMonitor is
  never started, no audio file exists;
- the reason is in the app's log (``storage_error``, and the final line ``ledger_line_held``);
- once the ledger is writable again, the next call's line brings the held one with it: the call
  has its ledger line, saying why it was not recorded;
- the sidecar the app had prepared becomes a tombstone after ``reconcile`` (its own tombstone
  needed a ledger line too);
- the caller key stored for the refused line is gone with it: the key store holds the call's
  one key, the one its written line names.

The same through the Stasis hook (``support``) and the FastAGI hook (``agi-support``).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from callconsent.config import Config
from callconsent.evidence.caller_keys import store_path
from callconsent.evidence.ledger import verify_chain
from tests.e2e.faults import Expect, Placed, app_events, check_call, reconcile
from tests.e2e.lab_app import LabApp, call_entries_for, route_timing, wait_ledger
from tests.harness.asterisk import AsteriskLab
from tests.harness.sipp import Call, Digit, Pause, background_call, run_call

KIDS_OF = "SELECT kid FROM caller_keys WHERE uniqueid = ?"


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, text=True)


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path`` read-only for every process (root included) until the block ends."""
    _run("mount", "--bind", str(path), str(path))
    try:
        _run("mount", "-o", "remount,bind,ro", str(path))
        yield
    finally:
        _run("umount", str(path))


def _wait_entered(lab_app: LabApp, before: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while lab_app.entered_count() <= before:
        assert time.monotonic() < deadline, "the app never saw the call"
        time.sleep(0.05)


@pytest.mark.parametrize("route", ["support", "agi-support"])
def test_a_call_whose_ledger_line_is_refused_goes_on_unrecorded_and_gets_its_line_later(
    asterisk: AsteriskLab, lab_app: LabApp, config: Config, route: str
) -> None:
    timing = route_timing(config, "support")
    ledger = config.storage.ledger_path
    ledger.parent.mkdir(parents=True, exist_ok=True)
    ledger.touch(exist_ok=True)
    mark, log_mark = asterisk.log_offset(), lab_app.log_path.stat().st_size
    yes = [Pause(timing.question_end + 1.0), Digit("1"), Pause(4.0)]
    call = Call(to=route, caller_number="+4517414001", timeline=yes)
    before = lab_app.entered_count()
    with background_call(call) as pending:
        _wait_entered(lab_app, before)  # in the notice: nothing written yet
        with read_only(ledger):
            result = pending.result(timeout=90)
            dest = asterisk.wait_labdest(result.call_id, since=mark)
            end = asterisk.wait_labend(result.call_id, since=mark)
            time.sleep(1.0)  # the app has heard of the hangup
            assert call_entries_for(config, dest.uniqueid) == []  # refused, not lost: held
        events = app_events(lab_app.log_path, log_mark)

    # the call went on, unrecorded: the hook never started MixMonitor
    assert result.answered, result.describe()
    assert (dest.status, dest.reason, dest.recording) == ("error", "storage_error", "")
    assert not list(config.storage.recordings_dir.rglob(f"{dest.uniqueid}.wav"))
    # the reason is logged
    mine = [e for e in events if e.get("call_id") == dest.uniqueid]
    refused = [e for e in mine if e.get("event") == "storage_error"]
    assert refused and refused[0].get("action") == "WriteLedger", mine
    assert any(e.get("event") == "ledger_line_held" for e in mine), mine

    # writable again: the next call's line brings the held one with it
    mark2 = asterisk.log_offset()
    no = [Pause(timing.question_end + 1.0), Digit("2"), Pause(1.0)]
    second = run_call(Call(to="support", caller_number="+4517414002", timeline=no))
    dest2 = asterisk.wait_labdest(second.call_id, since=mark2)
    entry = wait_ledger(config, dest.uniqueid)
    assert (entry["status"], entry["reason"], entry["recorded_purposes"]) == (
        "error",
        "storage_error",
        [],
    )
    assert entry["purposes"][0]["status"] == "given"  # the caller did say yes
    later = wait_ledger(config, dest2.uniqueid)
    assert later["seq"] > entry["seq"]
    assert verify_chain(ledger) == []
    # the refused line's caller key went with it: one key, the one the written line names
    with contextlib.closing(sqlite3.connect(store_path(ledger))) as db:
        kids = [r[0] for r in db.execute(KIDS_OF, (dest.uniqueid,))]
    assert kids == [entry["call"]["caller"]["kid"]]

    # the prepared sidecar: a tombstone after reconcile, no audio anywhere
    proc = reconcile(config)
    assert proc.returncode == 0, proc.stderr
    placed = Placed("ledger refused", call, Expect(), pending, result, dest, end)
    recorded, problems = check_call(config, placed)
    assert (recorded, problems) == (False, [])
    (doc,) = config.storage.recordings_dir.rglob(f"{dest.uniqueid}.json")
    assert json.loads(doc.read_text())["state"] == "tombstone"
