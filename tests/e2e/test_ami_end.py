"""A recorded call's end from AMI on the real Asterisk (callconsent.stasis_ami): once the caller
has left Stasis the app is not subscribed to its channel (ARI ``GET /applications/{app}`` lists
the channels the app hears of), and the recording still gets its final sidecar and its
``recording_final`` ledger line when the caller hangs up (the AMI ``Hangup``). AMI is trusted
with this once it has reported a key pressed in one of the app's calls (the consent key, pressed
in Stasis): that shows its user reads the ``dtmf`` class."""

from __future__ import annotations

import threading
import time

from callconsent import names
from callconsent.config import Config
from tests.e2e.faults import app_events, wait_until
from tests.e2e.lab_app import LabApp, route_timing, wait_ledger, wait_sidecar
from tests.harness.asterisk import AsteriskLab
from tests.harness.sipp import Call, Digit, Pause, run_call

AFTER = 6.0  # seconds the caller stays on the line after the notice


def _watch(asterisk: AsteriskLab, stop: threading.Event, seen: list[list[str]]) -> None:
    while not stop.is_set():
        app = asterisk.ari("GET", f"applications/{names.APP_NAME}")
        seen.append([str(i) for i in app.get("channel_ids", [])])
        time.sleep(0.1)


def _keys_heard(app: LabApp) -> bool:
    """AMI has reported a key of one of the app's calls since the app's latest AMI login (the
    app says so once per login)."""
    events = [e.get("event") for e in app_events(app.log_path, 0)]
    logins = [i for i, event in enumerate(events) if event == "ami_connected"]
    return bool(logins) and "ami_keys_heard" in events[logins[-1] :]


def test_a_recorded_caller_out_of_stasis_is_not_subscribed_and_still_gets_a_final_sidecar(
    asterisk: AsteriskLab, config: Config, lab_app: LabApp
) -> None:
    # AMI has reported a key pressed in one of the app's calls since its login: from then on
    # AMI reports recorded calls' ends and late keys
    support = route_timing(config, "support")
    since = lab_app.log_path.stat().st_size
    consented = run_call(
        Call(to="support", timeline=[Pause(support.question_end + 1.0), Digit("1"), Pause(1.0)])
    )
    assert consented.ok, consented.describe()
    wait_until(lambda: _keys_heard(lab_app), timeout=5, what="AMI's report of a key")
    assert not any(
        e.get("event") == "ami_keys_unheard" for e in app_events(lab_app.log_path, since)
    )

    timing = route_timing(config, "docs")
    mark = asterisk.log_offset()
    stop, seen = threading.Event(), []
    watcher = threading.Thread(target=_watch, args=(asterisk, stop, seen), daemon=True)
    watcher.start()
    try:
        result = run_call(
            Call(to="docs", audio="speech", timeline=[Pause(timing.notices_end + AFTER)])
        )
    finally:
        stop.set()
        watcher.join(timeout=5)
    assert result.ok, result.describe()
    end = asterisk.wait_labend(result.call_id, since=mark)
    assert end.status == "not_required" and end.recording

    listed = [i for i, ids in enumerate(seen) if end.uniqueid in ids]
    assert listed, "the watcher never saw the call in Stasis"
    after = seen[listed[-1] + 1 :]
    # the caller talked AFTER seconds out of Stasis: about AFTER / 0.1 samples, none listing it
    assert len(after) >= 20, f"only {len(after)} samples after Stasis"

    doc = wait_sidecar(config, end.recording)
    assert doc["state"] == "final" and doc["recording"]["has_audio"]
    entry = wait_ledger(config, end.uniqueid, kind="recording_final")
    assert entry["source"] == "app"
