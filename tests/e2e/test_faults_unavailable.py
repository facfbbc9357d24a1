"""Calls that arrive while the app is down are counted (R36, issue 11): the hook marks each in
AstDB and the app writes them to the ledger as ``unavailable`` entries at its next start."""

from __future__ import annotations

import time
from typing import Any

import pytest

from callconsent.config import Config
from tests.e2e.faults import Caller, CaseResult, Expect, check_call, report, settle
from tests.e2e.lab_app import LabApp, ledger_entries
from tests.harness.asterisk import AsteriskLab
from tests.harness.sipp import Call, Pause

CALLS = 4


def _unavailable_entries(config: Config, uniqueids: set[str]) -> list[dict[str, Any]]:
    return [
        e
        for e in ledger_entries(config)
        if e["type"] == "unavailable" and uniqueids & set(e["calls"])
    ]


@pytest.fixture(scope="module")
def while_down(asterisk: AsteriskLab, lab_app: LabApp, config: Config) -> dict[str, Any]:
    since = asterisk.log_offset()
    lab_app.stop()
    caller = Caller()
    try:
        for i in range(CALLS):
            route = "support" if i % 2 == 0 else "docs"
            call = Call(to=route, caller_number=f"+4598300{i:04d}", timeline=[Pause(2.0)])
            caller.place("calls while the app is down", call, Expect())
        placed = caller.wait(timeout=60)
        settle(asterisk, placed, since)
        markers = asterisk.cli("database show callconsent unavailable")
    finally:
        caller.close()
        lab_app.start()
    uniqueids = {p.end.uniqueid for p in placed if p.end is not None}
    deadline = time.monotonic() + 15
    found = _unavailable_entries(config, uniqueids)
    while sum(len(uniqueids & set(e["calls"])) for e in found) < CALLS:
        assert time.monotonic() < deadline, f"not all counted: {found}"
        time.sleep(0.2)
        found = _unavailable_entries(config, uniqueids)
    result = CaseResult("calls while the app is down", placed=len(placed))
    for p in placed:
        result.reached += p.dest is not None
        recorded, problems = check_call(config, p)
        result.recorded += recorded
        result.violations.extend(problems)
    counted = sum(len(uniqueids & set(e["calls"])) for e in found)
    result.note = f"{counted} counted in the ledger as unavailable at the next start"
    report(result)
    return {
        "placed": placed,
        "markers": markers,
        "entries": found,
        "uniqueids": uniqueids,
        "result": result,
        "after": asterisk.cli("database show callconsent unavailable"),
    }


def test_calls_while_the_app_is_down_reach_their_destination_unrecorded(
    while_down: dict[str, Any],
) -> None:
    result: CaseResult = while_down["result"]
    assert result.reached == CALLS and result.recorded == 0, result.row()
    for p in while_down["placed"]:
        assert (p.dest.status, p.dest.reason, p.dest.recording) == (
            "unavailable",
            "app_unavailable",
            "",
        )


def test_the_hook_marks_each_call_in_astdb_while_the_app_is_down(
    while_down: dict[str, Any],
) -> None:
    for uniqueid in while_down["uniqueids"]:
        assert f"/callconsent/unavailable/{uniqueid}" in while_down["markers"]


def test_the_app_counts_them_in_the_ledger_per_route_at_its_next_start(
    while_down: dict[str, Any],
) -> None:
    by_route: dict[str | None, int] = {}
    for entry in while_down["entries"]:
        assert (entry["status"], entry["reason"], entry["source"]) == (
            "unavailable",
            "app_unavailable",
            "dialplan",
        )
        by_route[entry["route"]] = by_route.get(entry["route"], 0) + len(
            while_down["uniqueids"] & set(entry["calls"])
        )
    assert by_route == {"support": CALLS // 2, "docs": CALLS // 2}


def test_the_markers_are_deleted_once_counted(while_down: dict[str, Any]) -> None:
    for uniqueid in while_down["uniqueids"]:
        assert uniqueid not in while_down["after"]
