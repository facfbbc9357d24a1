"""``kill -9`` of the app in every state of the consent flow, then a restart (R36, issue 11).

Two waves of real SIP callers, one kill each:

- wave 1: calls started at staggered moments so that, when the app dies, three are in the
  notice, three in the question, three waiting for the digit (they press 1 while the app is
  down) and three recording (they said yes earlier);
- wave 2: four callers press 1 together and the app dies as soon as it has logged the first of
  their digits ("right after the digit"), while two queue callers who said yes wait for ringing
  agent phones (the agent bridge: the agents answer after the app died).

Every call must reach its destination, nothing may be recorded without a basis, and after
``callconsent reconcile`` no audio may be left without a final sidecar.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from callconsent.config import Config
from tests.e2e.faults import (
    Caller,
    Expect,
    Placed,
    app_events,
    check_case,
    reconcile,
    report,
    settle,
    wait_until,
)
from tests.e2e.lab_app import DEMO_CONFIG, LAB_ENV, LabApp, route_timing
from tests.harness.agent import agent_phones
from tests.harness.asterisk import AsteriskLab
from tests.harness.rtp_pcap import Step
from tests.harness.sipp import Call, Digit, Pause

TRAINING = Expect(frozenset({"training"}))
DOCUMENTATION = Expect(frozenset({"documentation"}))
AGENT_RING = 6.0  # seconds the agent phones ring before they answer
NOTHING = Expect()
PER_STATE = 3
AFTER_DIGIT_CALLS = 4
RESTART_AFTER = 1.0  # seconds the app stays dead
TAIL = 14.0  # seconds every call lasts after the kill (restart, continue, a bridged talk)


def _timeline(total: float, digit_at: float | None = None) -> list[Step]:
    if digit_at is None:
        return [Pause(total)]
    return [Pause(digit_at), Digit("1"), Pause(max(1.0, total - digit_at - 0.16))]


def _number(case: int, i: int) -> str:
    return f"+45981{case:02d}{i:04d}"


_AGENT_OPTS = ("--actor", "e2e:faults", "--config", str(DEMO_CONFIG))


def _agent_cli(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "callconsent.cli.main", "agent", *args, *_AGENT_OPTS],
        env={**os.environ, **LAB_ENV},
        check=True,
        capture_output=True,
    )


def _restart(lab_app: LabApp) -> None:
    lab_app.kill()
    time.sleep(RESTART_AFTER)
    lab_app.start()


def _wave_states(caller: Caller, config: Config, lab_app: LabApp) -> None:
    t = route_timing(config, "support")
    question = t.notices_end + min(0.5, (t.question_end - t.notices_end) / 2)
    offsets = {  # seconds into the flow when the app dies; the digit (if any) from the answer
        "kill in notice": (min(1.2, t.notices_end / 2), None, NOTHING),
        "kill in question": (question, None, NOTHING),
        "kill while waiting": (t.question_end + 1.5, t.question_end + 1.5 + 0.5, NOTHING),
        "kill while recording": (t.question_end + 3.0, t.question_end + 0.5, TRAINING),
    }
    lead = max(o for o, _d, _e in offsets.values()) + 1.0
    kill_at = time.monotonic() + lead
    for n, (case, (offset, digit_at, expect)) in enumerate(offsets.items()):
        for i in range(PER_STATE):
            call = Call(
                to="support",
                caller_number=_number(n, i),
                timeline=_timeline(offset + TAIL, digit_at),
            )
            caller.place(case, call, expect, at=kill_at - offset)
    time.sleep(max(0.0, kill_at - time.monotonic()))
    _restart(lab_app)


def _wave_digit(caller: Caller, config: Config, lab_app: LabApp) -> None:
    support = route_timing(config, "support")
    mark = lab_app.log_path.stat().st_size
    digit_at = support.question_end + 0.5
    for i in range(AFTER_DIGIT_CALLS):
        call = Call(
            to="support",
            caller_number=_number(11, i),
            timeline=_timeline(digit_at + TAIL, digit_at),
        )
        caller.place("kill right after the digit", call, TRAINING)

    def digit_seen() -> bool:
        return any(
            event.get("event") == "consent_state" and event.get("event_type") == "DigitReceived"
            for event in app_events(lab_app.log_path, mark)
        )

    wait_until(digit_seen, timeout=60, what="the first yes of the digit wave", poll=0.005)
    _restart(lab_app)


def _wave_bridge(caller: Caller, config: Config, lab_app: LabApp, asterisk: AsteriskLab) -> None:
    """Queue callers say yes (documentation + training) and wait for agent phones that ring
    AGENT_RING seconds; the app dies while they ring and is back before they answer. The
    documentation recording runs from the hook; training needs the agent's consent at the
    bridge, which the app that asked for it never hears: it must not be recorded."""
    queue = route_timing(config, "mixed-queue")
    since = asterisk.log_offset()
    digit_at = queue.question_end + 0.5
    ids = []
    for i in range(2):
        call = Call(
            to="queue-mixed-queue",
            caller_number=_number(10, i),
            timeline=_timeline(digit_at + AGENT_RING + TAIL, digit_at),
        )
        caller.place("kill at the agent bridge", call, DOCUMENTATION)
        ids.append(call.call_id)

    def ringing() -> bool:
        lines = [line for line in asterisk.read_log(since).splitlines() if "LABQUEUE" in line]
        return all(any(f"callid={cid} " in line for line in lines) for cid in ids)

    wait_until(ringing, timeout=60, what="both queue callers to reach the queue")
    time.sleep(0.5)
    _restart(lab_app)


@pytest.fixture(scope="module")
def killed(asterisk: AsteriskLab, lab_app: LabApp, config: Config) -> dict[str, object]:
    _agent_cli("set", "agent1", "--consent", "given")
    _agent_cli("set", "agent2", "--consent", "refused")
    since = asterisk.log_offset()
    caller = Caller()
    try:
        _wave_states(caller, config, lab_app)
        _wave_digit(caller, config, lab_app)
        ring = {"agent1": AGENT_RING, "agent2": AGENT_RING}
        with agent_phones("agent1", "agent2", ring_seconds=ring):
            _wave_bridge(caller, config, lab_app, asterisk)
            placed = caller.wait(timeout=180)
    finally:
        lab_app.start()
        caller.close()
    settle(asterisk, placed, since)
    proc = reconcile(config)
    cases = {
        case: check_case(config, case, placed) for case in dict.fromkeys(p.case for p in placed)
    }
    for result in cases.values():
        report(result)
    return {"placed": placed, "cases": cases, "reconcile": proc}


CASES = [
    "kill in notice",
    "kill in question",
    "kill while waiting",
    "kill right after the digit",
    "kill while recording",
    "kill at the agent bridge",
]


@pytest.mark.parametrize("case", CASES)
def test_kill_keeps_every_call_going_and_nothing_recorded_without_a_basis(
    killed: dict[str, object], case: str
) -> None:
    result = killed["cases"][case]  # type: ignore[index]
    assert result.placed > 0
    assert result.reached == result.placed, result.violations
    assert not result.violations, "\n".join(result.violations)


def test_calls_killed_before_their_digit_are_released_unrecorded_by_the_restarted_app(
    killed: dict[str, object],
) -> None:
    placed: list[Placed] = killed["placed"]  # type: ignore[assignment]
    for p in placed:
        if p.case in ("kill in notice", "kill in question", "kill while waiting"):
            assert p.dest is not None
            assert (p.dest.status, p.dest.reason, p.dest.recording) == (
                "error",
                "app_restarted",
                "",
            ), p.case


def test_queue_callers_at_the_agent_bridge_keep_documentation_and_lose_training(
    killed: dict[str, object],
) -> None:
    """They said yes before the kill (status given, documentation recording from the hook);
    the agent's decision the dead app asked for never came: no training (strict Expect)."""
    placed: list[Placed] = killed["placed"]  # type: ignore[assignment]
    bridge = [p for p in placed if p.case == "kill at the agent bridge"]
    assert [p.dest.status if p.dest else None for p in bridge] == ["given", "given"]
    assert killed["cases"]["kill at the agent bridge"].recorded == 2  # type: ignore[index]


def test_calls_recording_when_the_app_died_keep_recording_and_get_a_final_sidecar(
    killed: dict[str, object],
) -> None:
    result = killed["cases"]["kill while recording"]  # type: ignore[index]
    assert result.recorded == result.placed
