"""Fail safe on the real Asterisk: whatever happens to the app, the call reaches its destination
and nothing is recorded without an active consent."""

from __future__ import annotations

import time

from callconsent.config import Config
from tests.e2e.lab_app import LabApp, call_entries_for, wait_ledger
from tests.harness.asterisk import AsteriskLab
from tests.harness.sipp import Call, Pause, background_call, run_call


def _no_recording(config: Config, uniqueid: str) -> None:
    assert not list(config.storage.recordings_dir.rglob(f"{uniqueid}.*"))


def _wait_in_flow(lab_app: LabApp, before: int, timeout: float = 10.0) -> None:
    """Until the app logged one more call entering the consent flow than ``before``."""
    deadline = time.monotonic() + timeout
    while lab_app.entered_count() <= before:
        assert time.monotonic() < deadline, "the app never saw the call"
        time.sleep(0.1)
    time.sleep(1.0)  # well inside the notice


def test_call_reaches_destination_unrecorded_when_the_app_is_not_running(
    asterisk: AsteriskLab, lab_app: LabApp, config: Config
) -> None:
    lab_app.stop()
    try:
        mark = asterisk.log_offset()
        result = run_call(Call(to="support", caller_number="+4520000001", timeline=[Pause(3.0)]))
        assert result.answered, result.describe()
        dest = asterisk.wait_labdest(result.call_id, since=mark)
        assert (dest.status, dest.reason, dest.recording) == ("unavailable", "app_unavailable", "")
        asterisk.wait_labend(result.call_id, since=mark)
        _no_recording(config, dest.uniqueid)
    finally:
        lab_app.start()


def test_sigterm_continues_calls_in_the_flow_to_their_destination_unrecorded(
    asterisk: AsteriskLab, lab_app: LabApp, config: Config
) -> None:
    mark = asterisk.log_offset()
    call = Call(to="support", caller_number="+4520000002", timeline=[Pause(10.0)])
    before = lab_app.entered_count()
    try:
        with background_call(call) as pending:
            _wait_in_flow(lab_app, before)
            assert lab_app.stop() == 0, "serve exits cleanly on SIGTERM"
            result = pending.result(timeout=60)
    finally:
        lab_app.start()
    dest = asterisk.wait_labdest(result.call_id, since=mark)
    assert (dest.status, dest.reason, dest.recording) == ("error", "shutdown", "")
    entry = wait_ledger(config, dest.uniqueid)
    assert (entry["status"], entry["reason"], entry["recording"]) == ("error", "shutdown", None)
    _no_recording(config, dest.uniqueid)


def test_app_killed_mid_notice_releases_the_stranded_call_when_it_restarts(
    asterisk: AsteriskLab, lab_app: LabApp, config: Config
) -> None:
    mark = asterisk.log_offset()
    call = Call(to="support", caller_number="+4520000003", timeline=[Pause(12.0)])
    before = lab_app.entered_count()
    try:
        with background_call(call) as pending:
            _wait_in_flow(lab_app, before)
            lab_app.kill()
            time.sleep(1.0)  # the channel now sits in Stasis with nobody to drive it
            lab_app.start()
            result = pending.result(timeout=60)
    finally:
        lab_app.start()
    dest = asterisk.wait_labdest(result.call_id, since=mark)
    assert (dest.status, dest.reason, dest.recording) == ("error", "app_restarted", "")
    entries = call_entries_for(config, dest.uniqueid)
    assert [(e["status"], e["reason"]) for e in entries] == [("error", "app_restarted")]
    _no_recording(config, dest.uniqueid)
