"""Training sampling (R23): only sampled calls are asked, and only they can be recorded for
training. 200 calls at rate 0.1 through the real planner and the consent rules."""

from __future__ import annotations

import copy
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from callconsent.app import ConfigPlanner
from callconsent.config import load_config
from callconsent.consent import (
    Answered,
    CallEntered,
    CallPlan,
    ConsentMachine,
    DigitReceived,
    PlaybackFinished,
    PlaybackStarted,
    PlayPrompt,
    PrepareRecording,
    WriteLedger,
)

REPO = Path(__file__).resolve().parents[2]
CALLS, RATE = 200, 0.1


def _config(tmp_path: Path) -> Any:
    data: dict[str, Any] = copy.deepcopy(
        yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    )
    data["prompts_dir"] = str(tmp_path)
    data["routes"]["support"]["purposes"]["training"]["sample_rate"] = RATE
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return load_config(path, env={"CALLCONSENT_ARI_PASSWORD": "x"})


def _caller_says_yes_to_everything(plan: CallPlan) -> tuple[int, list[object]]:
    """Runs one call in which the caller presses 1 after every prompt; returns how many consent
    questions were played and the actions."""
    machine = ConsentMachine(plan, call_key="c")
    t = datetime(2026, 11, 24, tzinfo=UTC)
    actions: list[object] = [*machine.handle(CallEntered(t)), *machine.handle(Answered(t))]
    questions = 0
    while not machine.finished:
        play = next(a for a in reversed(actions) if isinstance(a, PlayPrompt))
        if "question" in play.prompt.prompt_id:
            questions += 1
        t += timedelta(seconds=1)
        actions += machine.handle(PlaybackStarted(play.playback_id, t))
        actions += machine.handle(PlaybackFinished(play.playback_id, t))
        if machine.finished or any(isinstance(a, PrepareRecording) for a in actions):
            break
        actions += machine.handle(DigitReceived("1", t + timedelta(milliseconds=500)))
        if any(isinstance(a, PrepareRecording | WriteLedger) for a in actions):
            break
    return questions, actions


def test_sampling_asks_about_rate_times_calls_and_records_training_only_when_asked(
    tmp_path: Path,
) -> None:
    planner = ConfigPlanner(_config(tmp_path), rng=random.Random(2026).random)
    asked = 0
    for _ in range(CALLS):
        plan = planner.plan("support", None)
        assert isinstance(plan, CallPlan)
        questions, actions = _caller_says_yes_to_everything(plan)
        asked += questions
        recorded = [a for a in actions if isinstance(a, PrepareRecording)]
        (training,) = plan.purposes
        if training.sampled:
            assert questions == 1 and [r.purposes for r in recorded] == [("training",)]
        else:
            assert questions == 0 and not recorded, (
                "an unsampled call is neither asked nor recorded"
            )
    mean, sd = CALLS * RATE, math.sqrt(CALLS * RATE * (1 - RATE))
    assert mean - 3 * sd <= asked <= mean + 3 * sd, f"{asked} questions in {CALLS} calls"


def test_unsampled_call_hears_no_training_notice_either(tmp_path: Path) -> None:
    planner = ConfigPlanner(_config(tmp_path), rng=lambda: 0.99)
    plan = planner.plan("support", None)
    assert isinstance(plan, CallPlan)
    assert plan.notices == ()
    assert [p.sampled for p in plan.purposes] == [False]
