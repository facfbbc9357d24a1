"""The caller's late objection on the real Asterisk (R30), as more than one e2e module places it."""

from __future__ import annotations

from typing import Any

from callconsent.config import Config
from tests.e2e.lab_app import route_timing, wait_ledger, wait_sidecar
from tests.harness.agent import agent_phones
from tests.harness.asterisk import AsteriskLab
from tests.harness.sipp import Call, Digit, Pause, run_call


def object_after_the_notice(asterisk: AsteriskLab, config: Config) -> dict[str, Any]:
    """A caller on ``queue-docs`` (documentation, objection digit 3, ``do_not_record``) presses
    3 a second after the notice, out of Stasis and before an agent answers. Asserts that the
    objection counted (ledger ``objection`` entry, tombstone, audio deleted); returns the entry."""
    timing = route_timing(config, "docs")
    mark = asterisk.log_offset()
    with agent_phones("agent1", ring_seconds={"agent1": 3.0}):
        result = run_call(
            Call(
                to="queue-docs",
                audio="speech",
                timeline=[Pause(timing.notices_end + 1.0), Digit("3"), Pause(8.0)],
            )
        )
    assert result.ok, result.describe()
    end = asterisk.wait_labend(result.call_id, since=mark)
    entry = wait_ledger(config, end.uniqueid, kind="objection")
    assert (entry["via"], entry["by"], entry["outcome"]) == ("caller_digit", "caller", "deleted")
    doc = wait_sidecar(config, end.recording, until="tombstone")
    assert doc["state"] == "tombstone"
    assert not (config.storage.recordings_dir / entry["recording"]).exists()
    return entry
