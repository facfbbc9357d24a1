"""ConfigPlanner: the route a call takes and the plan it runs, or why it is skipped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from callconsent import names
from callconsent.app import ConfigPlanner, build_store
from callconsent.consent import CallPlan
from callconsent.evidence.documents import CallInfo
from callconsent.stasis import Skip
from callconsent.store import EvidenceStore
from tests.support.stasis_fakes import load_demo, write_prompts


def plan_of(planner: ConfigPlanner, route: str | None, dialled: str | None = None) -> CallPlan:
    plan = planner.plan(route, dialled)
    assert isinstance(plan, CallPlan), plan
    return plan


def test_enabled_route_gives_its_plan(tmp_path: Path) -> None:
    write_prompts(tmp_path / "prompts")
    plan = plan_of(ConfigPlanner(load_demo(tmp_path)), "support")
    assert plan.route == "support" and plan.language == "da"
    assert [p.prompt_id for p in plan.notices] == ["lab_training_v1.notice"]
    assert all(len(p.version) == 64 for p in plan.notices)
    (purpose,) = plan.purposes
    assert purpose.purpose == "training" and purpose.consent is not None


def test_documentation_route_plan_asks_no_question(tmp_path: Path) -> None:
    plan = plan_of(ConfigPlanner(load_demo(tmp_path)), "docs")
    (purpose,) = plan.purposes
    assert purpose.consent is None


def test_disabled_route_is_skipped_as_not_required(tmp_path: Path) -> None:
    planner = ConfigPlanner(load_demo(tmp_path))
    assert planner.plan("closed", None) == Skip(names.Status.NOT_REQUIRED, "route_disabled")


def test_unknown_route_is_skipped_as_an_error(tmp_path: Path) -> None:
    planner = ConfigPlanner(load_demo(tmp_path))
    assert planner.plan("nosuch", None) == Skip(names.Status.ERROR, "unknown_route")
    assert planner.plan(None, None) == Skip(names.Status.ERROR, "unknown_route")
    assert planner.plan("", "4599999999") == Skip(names.Status.ERROR, "unknown_route")


def with_dids(data: dict[str, Any]) -> None:
    data["routes"]["mixed"]["dids"] = ["+4570000002"]
    data["routes"]["closed"]["dids"] = ["+4570000009"]


def test_without_a_route_argument_the_dialled_number_chooses(tmp_path: Path) -> None:
    planner = ConfigPlanner(load_demo(tmp_path, with_dids))
    assert plan_of(planner, None, "4570000002").route == "mixed"
    assert plan_of(planner, "", "+4570000002").route == "mixed"


def test_the_route_argument_wins_over_the_dialled_number(tmp_path: Path) -> None:
    planner = ConfigPlanner(load_demo(tmp_path, with_dids))
    assert plan_of(planner, "docs", "4570000002").route == "docs"


def test_dialled_number_of_a_disabled_route_is_skipped_as_disabled(tmp_path: Path) -> None:
    """A call to a disabled route's number is out of scope on purpose, not an error."""
    planner = ConfigPlanner(load_demo(tmp_path, with_dids))
    assert planner.plan(None, "+4570000009") == Skip(names.Status.NOT_REQUIRED, "route_disabled")
    assert planner.plan("", "4570000009") == Skip(names.Status.NOT_REQUIRED, "route_disabled")


def half_sampled(data: dict[str, Any]) -> None:
    data["routes"]["support"]["purposes"]["training"]["sample_rate"] = 0.5


@pytest.mark.parametrize(("draw", "asked"), [(0.49, True), (0.5, False), (0.9, False)])
def test_consent_purpose_is_asked_when_the_draw_is_below_the_sample_rate(
    tmp_path: Path, draw: float, asked: bool
) -> None:
    planner = ConfigPlanner(load_demo(tmp_path, half_sampled), rng=lambda: draw)
    plan = plan_of(planner, "support")
    (purpose,) = plan.purposes
    assert purpose.sampled is asked
    assert len(plan.notices) == (1 if asked else 0)


def test_full_sample_rate_never_draws(tmp_path: Path) -> None:
    def no_draw() -> float:
        raise AssertionError("rng must not be called for sample_rate 1.0")

    plan = plan_of(ConfigPlanner(load_demo(tmp_path), rng=no_draw), "support")
    assert plan.purposes[0].sampled


async def test_build_store_writes_where_the_config_says(tmp_path: Path) -> None:
    config = load_demo(tmp_path)
    config.storage.ledger_path.parent.mkdir(parents=True)
    store = build_store(config)
    assert isinstance(store, EvidenceStore)
    call = CallInfo("1764000000.1", "1764000000.1", "PJSIP/a-1", "closed", None, None, None)

    await store.write_unhandled(call, "not_required", "route_disabled")

    (line,) = config.storage.ledger_path.read_text(encoding="ascii").splitlines()
    entry = json.loads(line)
    assert entry["config_sha256"] == config.sha256
    assert entry["call"]["uniqueid"] == "1764000000.1"
