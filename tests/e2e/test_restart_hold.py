"""A hold the app missed while it was down is muted after its restart (R2, § 263).

A caller on the lab's documentation queue route (``queue-docs``) plays a tone for the whole call
and talks with agent1; the app is killed (kill -9) while the call is recorded. While it is down,
agent1's sipp phone holds the call (re-INVITE ``a=sendonly``): the AMI ``Hold`` event reaches
nobody, and the recording goes on with the caller and the hold music. The app is started again
while the hold lasts; it lists the calls in progress, learns that this one is on hold and mutes
it (AMI ``MixMonitorMute``, both directions) with the pause in the sidecar; agent1 then takes the
call back (``a=sendrecv``: ``Unhold``) and the recording goes on. The file is measured with sox:
the stretch from the restart to the unhold is digital silence, the talk before the hold and
after it is not; the sidecar (final once ``callconsent reconcile`` ran: the restarted app does not
finalise a call it did not start) lists the pause, held by agent1, ended at the unhold. Second
case: nobody holds; the restarted app mutes nothing. Third case: agent1 holds while the app runs
(it mutes the call), the app is killed, agent1 takes the call back while it is down; the
restarted app finds the open pause in the sidecar and nobody holding, and unmutes the call.

Times: the bridge from Asterisk's log (file time 0, MixMonitor option ``b``), the hold and unhold
from agent1's sipp log, the recovery from the app's log, the pause from the sidecar.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from callconsent.config import Config
from tests.e2e.faults import app_events, reconcile
from tests.e2e.hold_audio import (
    SILENT_RMS,
    first_silence,
    iso_epoch,
    recorded_and_bridged,
    rms,
    sipp_mark,
    wait_sipp_mark,
)
from tests.e2e.lab_app import LabApp, route_timing, wait_sidecar
from tests.harness.agent import agent_phones
from tests.harness.asterisk import AsteriskLab
from tests.harness.sipp import Call, Pause, background_call

KILL_AFTER = 1.5  # seconds after agent1 joins the bridge: the call is recorded
HOLD_AT = 5.0  # seconds after agent1 answers: the app is down by then
HOLD_FOR = 18.0  # long enough for the app to start again (prompts, agent mirror, ARI, AMI)
AFTER = 6.0  # seconds of conversation after the unhold
DOWN_WITHOUT_HOLD = 6.0  # seconds the app stays down when nobody holds
SHORT_HOLD = 7.0  # the hold that ends while the app is down (third case)


@dataclass(frozen=True)
class Restarted:
    doc: dict[str, Any]  # the sidecar once the call has ended
    audio: Path
    bridge: float  # epoch seconds of agent1 joining the caller's bridge (file time 0)
    connected: float  # epoch seconds of the restarted app's AMI login (ami_connected)
    recovered: dict[str, Any]  # the restarted app's recovered_calls log line
    agent_log: str


def _app_event(lab_app: LabApp, offset: int, name: str, timeout: float = 15.0) -> dict[str, Any]:
    """The first log line ``name`` the app wrote after byte ``offset`` of its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in app_events(lab_app.log_path, offset):
            if event.get("event") == name:
                return event
        time.sleep(0.2)
    raise AssertionError(f"the restarted app never logged {name}")


def _restarted_call(
    asterisk: AsteriskLab,
    config: Config,
    lab_app: LabApp,
    *,
    agent_holds: bool,
    unhold_while_down: bool = False,
) -> Restarted:
    """``agent_holds``: agent1 holds while the app is down, and takes the call back after the
    app is back; with ``unhold_while_down``: agent1 holds while the app runs (it mutes) and takes
    the call back while the app is down."""
    timing = route_timing(config, "docs")
    mark = asterisk.log_offset()
    hold_for = SHORT_HOLD if unhold_while_down else HOLD_FOR
    talks = timing.notices_end + 2.0 + HOLD_AT + hold_for + AFTER + 4.0
    call = Call(to="queue-docs", audio="tone", timeline=[Pause(talks)])
    holds = {"agent1": (HOLD_AT, hold_for)} if agent_holds else None
    with agent_phones("agent1", holds=holds) as phones, background_call(call) as pending:
        asterisk.wait_for_log(r"Channel PJSIP/agent1-\S+ joined", since=mark, timeout=40)
        if unhold_while_down:  # the running app mutes the hold first
            wait_sipp_mark(phones["agent1"].log_path, "HOLD", timeout=HOLD_AT + 10)
        time.sleep(KILL_AFTER)  # bridged and recorded (and muted, when held)
        offset = lab_app.log_path.stat().st_size
        lab_app.kill()
        try:
            if unhold_while_down:  # back while the app is down
                wait_sipp_mark(phones["agent1"].log_path, "UNHOLD", timeout=hold_for + 10)
                time.sleep(1.0)
            elif agent_holds:  # held while the app is down; back while the hold lasts
                wait_sipp_mark(phones["agent1"].log_path, "HOLD", timeout=HOLD_AT + 10)
                time.sleep(1.0)
            else:
                time.sleep(DOWN_WITHOUT_HOLD)
        finally:
            lab_app.start()
        recovered = _app_event(lab_app, offset, "recovered_calls")
        connected = iso_epoch(_app_event(lab_app, offset, "ami_connected")["timestamp"])
        result = pending.result(timeout=120)
        agent_log = phones["agent1"].log_path.read_text(errors="replace")
    end, bridge = recorded_and_bridged(asterisk, result, mark)
    doc = wait_sidecar(config, end.recording, timeout=5.0)
    if doc["state"] != "final":  # the restarted app does not finalise a call it did not start
        proc = reconcile(config)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        doc = wait_sidecar(config, end.recording, timeout=5.0)
    assert doc["state"] == "final", doc
    assert doc["recording"]["has_audio"], doc["recording"]
    assert [p["purpose"] for p in doc["purposes"]] == ["documentation"], doc["purposes"]
    return Restarted(doc, Path(end.recording), bridge, connected, recovered, agent_log)


def test_a_restarted_app_mutes_a_call_put_on_hold_while_it_was_down_until_the_unhold(
    asterisk: AsteriskLab, config: Config, lab_app: LabApp
) -> None:
    got = _restarted_call(asterisk, config, lab_app, agent_holds=True)
    pauses = got.doc.get("pauses", [])
    held = sipp_mark(got.agent_log, "HOLD") - got.bridge
    unheld = sipp_mark(got.agent_log, "UNHOLD") - got.bridge
    connected = got.connected - got.bridge
    # File time is bridge time only while frames flow (MixMonitor b): the silent stretch is
    # found in the file (the first one after the hold) and measured from its start.
    found = first_silence(got.audio, held)
    onset, length = found if found is not None else (unheld, 0.0)
    talk = rms(got.audio, 0.5, held - 0.5)
    unseen = rms(got.audio, held + 0.5, onset - 0.5)
    during = rms(got.audio, onset, onset + length) if length else None
    after = rms(got.audio, unheld + 1.0, unheld + AFTER - 1.5)
    print(
        f"held at {held:.1f} s (app down), app back on AMI at {connected:.1f} s "
        f"({got.recovered}), unhold at {unheld:.1f} s; pauses {pauses}; first silence after "
        f"the hold: {found}; sox RMS talk {talk:.4f}, held before the restart {unseen:.4f}, "
        f"muted {during}, after the unhold {after:.6f}"
    )
    assert got.recovered["calls"] >= 1 and got.recovered["held"] >= 1, got.recovered
    assert not got.doc["recording"].get("stop_reason"), got.doc["recording"]
    assert [p["reason"] for p in pauses] == ["hold"], pauses
    (pause,) = pauses
    assert (pause["held_by"], pause["agent_id"]) == ("agent", "agent1"), pause
    assert pause["ended_at"] is not None, "the unhold never ended the pause"
    start = iso_epoch(pause["started_at"]) - got.bridge
    end = iso_epoch(pause["ended_at"]) - got.bridge
    assert held < connected, "the hold happened while the app was down"
    # the sidecar's times have milliseconds; Asterisk raises Unhold before sipp logs its ACK
    assert -0.01 <= start - connected < 2.0, "muted within 2 s of the app's return"
    assert found is not None, "the file never goes silent after the hold"
    assert abs(onset - start) < 1.0, (onset, start)
    assert -0.2 <= end - unheld < 1.0, "the pause ends at the unhold"
    assert abs(length - (end - start)) < 1.5, "silent for the pause, not longer or shorter"
    assert talk > 20 * SILENT_RMS, "the conversation before the hold is in the file"
    assert unseen > 20 * SILENT_RMS, "before the restart nobody muted the hold"
    assert during is not None and during < SILENT_RMS
    assert after > 20 * SILENT_RMS, "the recording goes on after the unhold"


def test_a_restarted_app_mutes_nothing_when_nobody_holds(
    asterisk: AsteriskLab, config: Config, lab_app: LabApp
) -> None:
    got = _restarted_call(asterisk, config, lab_app, agent_holds=False)
    assert got.recovered["calls"] >= 1, got.recovered
    assert got.recovered["held"] == 0, got.recovered
    assert got.doc.get("pauses", []) == [], got.doc.get("pauses")
    connected = got.connected - got.bridge
    found = first_silence(got.audio, 0.5)
    print(f"app back on AMI at {connected:.1f} s; first silence in the file: {found}")
    assert found is None or found[1] < 0.5, f"the file goes silent: {found}"
    assert rms(got.audio, connected, connected + AFTER) > 20 * SILENT_RMS


def test_a_restarted_app_unmutes_a_call_whose_hold_ended_while_it_was_down(
    asterisk: AsteriskLab, config: Config, lab_app: LabApp
) -> None:
    got = _restarted_call(asterisk, config, lab_app, agent_holds=True, unhold_while_down=True)
    pauses = got.doc.get("pauses", [])
    held = sipp_mark(got.agent_log, "HOLD") - got.bridge
    unheld = sipp_mark(got.agent_log, "UNHOLD") - got.bridge
    connected = got.connected - got.bridge
    found = first_silence(got.audio, held)
    print(
        f"held at {held:.1f} s, unhold at {unheld:.1f} s (app down), app back on AMI at "
        f"{connected:.1f} s ({got.recovered}); pauses {pauses}; first silence after the hold: "
        f"{found}"
    )
    assert held < unheld < connected, "held while the app ran, back while it was down"
    assert got.recovered["calls"] >= 1 and got.recovered["paused"] >= 1, got.recovered
    assert got.recovered["held"] == 0, got.recovered
    (pause,) = pauses
    assert (pause["reason"], pause["held_by"], pause["agent_id"]) == ("hold", "agent", "agent1")
    assert pause["ended_at"] is not None, "the restarted app left the call muted to the hangup"
    start = iso_epoch(pause["started_at"]) - got.bridge
    end = iso_epoch(pause["ended_at"]) - got.bridge
    assert -0.2 <= start - held < 1.0, "the running app muted the hold"
    assert -0.01 <= end - connected < 2.0, "unmuted within 2 s of the app's return"
    assert found is not None, "the file never goes silent after the hold"
    onset, length = found
    assert abs(onset - start) < 1.0, (onset, start)
    assert abs(length - (end - start)) < 1.5, "silent for the pause, not longer or shorter"
    after = rms(got.audio, onset + length + 0.5, onset + length + AFTER - 1.0)
    assert after > 20 * SILENT_RMS, "the recording goes on after the restart"
