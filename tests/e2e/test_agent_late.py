"""The app's answer to the agent gosub comes after the gosub's 2 s wait, on the real Asterisk
(R15): the whisper never says less than what is recorded.

The app reaches AMI through a TCP proxy the test controls (tests/harness/tcp_proxy.py) that
holds the agent's ``CallconsentAgent`` UserEvent back 2.6 s, as a loaded machine's app reads it
late. The gosub gives up, whispers "not for training" and raises ``CallconsentAgentLate``; the
app, which then decides "given" and starts the recording, must refuse training after all: the
recording is deleted and stopped, and the ledger says why (``agent_not_told``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from callconsent.config import Config
from tests.e2e.faults import app_events, app_reading_late, wait_until
from tests.e2e.lab_app import LabApp, agent_cli, ledger_entries, route_timing, wait_sidecar
from tests.harness.agent import agent_phones
from tests.harness.asterisk import AsteriskLab, LabLine
from tests.harness.sipp import Call, Digit, Pause, run_calls


def _gosub_line(asterisk: AsteriskLab, caller: str, since: int) -> tuple[str, str]:
    for m in asterisk.find_log(
        rf"(?m)\] NOTICE\[.*: callconsent agent=(\S*) caller={caller} flag=\S* "
        r"result=(\S*) whisper=(\S+)$",
        since,
    ):
        return m.group(2), m.group(3)
    return "?", "?"


@pytest.fixture(scope="module")
def late(
    asterisk: AsteriskLab,
    lab_app: LabApp,
    config: Config,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LabLine, tuple[str, str], list[dict[str, Any]]]]:
    proc = agent_cli("set", "agent1", "--consent", "given", "--actor", "e2e:test")
    assert proc.returncode == 0, proc.stderr
    support = route_timing(config, "support")
    folder = tmp_path_factory.mktemp("agent-late")
    with (
        app_reading_late(lab_app, folder, "CallconsentAgent", 2.6) as app,
        agent_phones("agent1"),
    ):
        mark = asterisk.log_offset()
        yes = [Pause(support.question_end + 1.0), Digit("1"), Pause(8.0)]
        (result,) = run_calls([Call(to="queue-support", caller_number="+4520000051", timeline=yes)])
        assert result.answered, result.describe()
        end = asterisk.wait_labend(result.call_id, since=mark)

        def decided_twice() -> list[dict[str, Any]]:
            mine = [
                e
                for e in ledger_entries(config)
                if e.get("call", {}).get("uniqueid") == end.uniqueid
                and e["type"] == "agent_decision"
            ]
            return mine if len(mine) >= 2 else []

        try:
            wait_until(lambda: bool(decided_twice()), timeout=20, what="the late refusal")
        except AssertionError as exc:
            mine = [e for e in app_events(app.log_path, 0) if end.uniqueid in json.dumps(e)]
            raise AssertionError(
                f"{exc}; gosub {_gosub_line(asterisk, end.uniqueid, mark)}; app: {mine}"
            ) from None
        yield end, _gosub_line(asterisk, end.uniqueid, mark), decided_twice()


def test_the_gosub_gave_up_and_whispered_not_for_training(
    late: tuple[LabLine, tuple[str, str], list[dict[str, Any]]],
) -> None:
    _, (result, whisper), _ = late
    assert (result, whisper) == ("", "none")


def test_the_app_that_decided_late_refuses_training_after_all(
    late: tuple[LabLine, tuple[str, str], list[dict[str, Any]]],
) -> None:
    _, _, (given, refused) = late
    assert (given["status"], given["reason"]) == ("given", "agent_consent")  # after the wait
    assert (refused["status"], refused["reason"]) == ("refused", "agent_not_told")
    assert (refused["purposes"], refused["kept_purposes"], refused["recording"]) == (
        ["training"],
        [],
        None,
    )


def test_the_recording_it_had_started_is_deleted_and_stopped(
    late: tuple[LabLine, tuple[str, str], list[dict[str, Any]]], config: Config
) -> None:
    end, _, (given, _) = late
    audio = config.storage.recordings_dir / given["recording"]
    doc = wait_sidecar(config, given["recording"], until="tombstone")
    assert (doc["state"], doc["reason"]) == ("tombstone", "agent_not_told")
    assert not audio.exists()
    kinds = [
        e["type"]
        for e in ledger_entries(config)
        if e.get("call", {}).get("uniqueid") == end.uniqueid
    ]
    assert "deleted" in kinds and "recording_final" not in kinds
