"""Hold on the real Asterisk (R2, issue 13): the recording is muted while a party holds.

A caller on the lab's documentation route (``queue-docs``: the hook, then the queue) plays a
tone for the whole call; agent1's sipp phone answers and talks. Then one side holds the call
with a real re-INVITE (``a=sendonly``) for ``HOLD_FOR`` seconds and takes it back
(``a=sendrecv``). Asterisk raises AMI Hold/Unhold and plays music on hold to the other side;
the app mutes the caller's MixMonitor in both directions. The file is measured with sox: the
hold stretch holds no caller tone and no music, the talk before it does. File time 0 is the
bridge (MixMonitor option ``b``): its time comes from Asterisk's log, the hold's from sipp's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from callconsent.config import Config
from tests.e2e.hold_audio import (
    SILENT_RMS,
    first_silence,
    iso_epoch,
    recorded_and_bridged,
    rms,
    sipp_mark,
)
from tests.e2e.lab_app import LabApp, route_timing, wait_sidecar
from tests.harness.agent import agent_phones
from tests.harness.asterisk import AsteriskLab
from tests.harness.sipp import Call, Pause, run_call

TALK = 5.0  # seconds of conversation before the hold
HOLD_FOR = 10.0
AFTER = 4.0  # seconds of conversation after the hold


def _held_call(
    asterisk: AsteriskLab, config: Config, *, agent_holds: bool
) -> tuple[dict[str, Any], Path, float, float]:
    """One call with a hold; (final sidecar, audio, bridge epoch, hold epoch from sipp)."""
    timing = route_timing(config, "docs")
    mark = asterisk.log_offset()
    hold_at = TALK  # from the agent's answer (about the end of the notices for the caller)
    call_hold = (timing.notices_end + 1.0 + TALK, HOLD_FOR) if not agent_holds else None
    talks = timing.notices_end + 1.0 + TALK + HOLD_FOR + AFTER
    with agent_phones(
        "agent1", holds={"agent1": (hold_at, HOLD_FOR)} if agent_holds else None
    ) as phones:
        result = run_call(
            Call(to="queue-docs", audio="tone", timeline=[Pause(talks)], hold=call_hold)
        )
        agent_log = phones["agent1"].log_path.read_text(errors="replace")
    end, bridge = recorded_and_bridged(asterisk, result, mark)
    held = sipp_mark(agent_log if agent_holds else result.log, "HOLD")
    doc = wait_sidecar(config, end.recording)
    assert doc["state"] == "final", doc
    return doc, Path(end.recording), bridge, held


@pytest.mark.parametrize("agent_holds", [True, False], ids=["agent_holds", "caller_holds"])
def test_hold_mutes_the_recording_in_both_directions_and_the_sidecar_lists_the_pause(
    asterisk: AsteriskLab, config: Config, lab_app: LabApp, agent_holds: bool
) -> None:
    doc, audio, bridge, held = _held_call(asterisk, config, agent_holds=agent_holds)
    pauses = doc.get("pauses", [])
    assert [p["reason"] for p in pauses] == ["hold"], pauses  # no pause at the bridge itself
    (pause,) = pauses
    who = ("agent", "agent1") if agent_holds else ("caller", None)
    assert (pause["held_by"], pause["agent_id"]) == who
    assert pause["ended_at"] is not None
    start, end = iso_epoch(pause["started_at"]) - bridge, iso_epoch(pause["ended_at"]) - bridge
    hold_in_file = held - bridge
    latency = start - hold_in_file
    # File time is bridge time only while frames flow (MixMonitor b): under load a few frames go
    # missing, so the silent stretch is found in the file and measured from its start.
    found = first_silence(audio, hold_in_file - 1.0)
    assert found is not None, "the file never goes silent"
    onset, length = found
    talk = rms(audio, 0.5, max(1.0, hold_in_file - 0.5))
    during = rms(audio, onset, onset + HOLD_FOR - 1.5)
    after = rms(audio, onset + length + 0.5, onset + length + AFTER - 1.0)
    print(
        f"{'agent' if agent_holds else 'caller'} holds: pause listed {latency * 1000:.0f} ms "
        f"after the hold was accepted, {end - start:.1f} s long; the file goes silent "
        f"{(onset - hold_in_file) * 1000:.0f} ms after the hold for {length:.1f} s; sox RMS talk "
        f"{talk:.4f}, hold {during:.6f}, after {after:.4f}"
    )
    assert latency < 1.0
    assert onset - hold_in_file < 1.0, (onset, hold_in_file)
    assert end - start > HOLD_FOR - 1.5
    assert abs(length - (end - start)) < 1.5, "silent for the pause, not longer or shorter"
    assert talk > 20 * SILENT_RMS, "the conversation before the hold is in the file"
    assert during < SILENT_RMS, "no caller audio and no music while on hold"
    assert after > 20 * SILENT_RMS, "the recording goes on after the hold"
