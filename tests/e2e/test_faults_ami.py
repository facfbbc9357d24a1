"""AMI away (R36, issue 11): the app under test reaches AMI through a TCP proxy the test controls
(tests/harness/tcp_proxy.py, 127.0.0.1:5039), which cuts it and refuses it for a while.

The promise (README, "Fail safe"): no recording the app cannot watch. With AMI away a transfer
would go unseen by the party watch, so

- a consent (or a documentation notice) that ends while AMI is away starts no recording: the
  call goes on with status ``error``, reason ``ami_unavailable``;
- a recording already running when AMI goes away is stopped when AMI is back (``stop_reason``
  ``watch_lost``): whatever happened in the gap is not trusted.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from callconsent.config import Config
from tests.e2e.faults import (
    Caller,
    Expect,
    Placed,
    app_behind_ami_proxy,
    app_events,
    check_case,
    reconcile,
    report,
    settle,
    wait_until,
)
from tests.e2e.lab_app import LabApp, route_timing, wait_sidecar
from tests.harness.asterisk import AsteriskLab
from tests.harness.sipp import Call, Digit, Pause
from tests.harness.tcp_proxy import TcpProxy

AMI_PROXY_PORT = 5039
DOCS = Expect(frozenset({"documentation"}))
TRAINING = Expect(frozenset({"training"}))


@pytest.fixture(scope="module")
def ami_proxied(
    asterisk: AsteriskLab, lab_app: LabApp, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LabApp, TcpProxy]]:
    folder = tmp_path_factory.mktemp("ami-proxied")
    with (
        TcpProxy(AMI_PROXY_PORT, 5038) as proxy,
        app_behind_ami_proxy(lab_app, folder, proxy) as app,
    ):
        yield app, proxy


def _logged_in_again(app: LabApp, mark: int) -> bool:
    return any(e.get("event") == "ami_connected" for e in app_events(app.log_path, mark))


@pytest.fixture(scope="module")
def ami_down(
    asterisk: AsteriskLab, config: Config, ami_proxied: tuple[LabApp, TcpProxy]
) -> dict[str, Any]:
    app, proxy = ami_proxied
    support, docs = route_timing(config, "support"), route_timing(config, "docs")
    since = asterisk.log_offset()
    # 1. AMI away while the consent arrives (and while a documentation notice ends)
    window = max(support.question_end, docs.notices_end) + 4.0
    mark = app.log_path.stat().st_size
    proxy.drop_all(refuse_for=window)
    caller = Caller()
    for i in range(2):
        yes = [Pause(support.question_end + 0.5), Digit("1"), Pause(4.0)]
        caller.place(
            "AMI away when the consent arrives",
            Call(to="support", caller_number=f"+4598600{i:04d}", timeline=yes),
            TRAINING,
        )
        caller.place(
            "AMI away when the consent arrives",
            Call(
                to="docs", caller_number=f"+4598601{i:04d}", timeline=[Pause(docs.notices_end + 4)]
            ),
            DOCS,
        )
    first = caller.wait(timeout=90)
    wait_until(lambda: _logged_in_again(app, mark), timeout=window + 10, what="AMI back")
    # 2. AMI lost while recording: the recordings stop when it is back
    second = Caller()
    for i in range(2):
        second.place(
            "AMI lost while recording",
            Call(
                to="docs", caller_number=f"+4598602{i:04d}", timeline=[Pause(docs.notices_end + 9)]
            ),
            DOCS,
        )
    time.sleep(docs.notices_end + 2.5)  # recording for ~2 s
    mark = app.log_path.stat().st_size
    lost_at = time.time()
    proxy.drop_all(refuse_for=2.0)
    wait_until(lambda: _logged_in_again(app, mark), timeout=15, what="AMI back")
    back_at = time.time()
    later = second.wait(timeout=90)
    caller.close()
    second.close()
    placed: list[Placed] = first + later
    settle(asterisk, placed, since)
    stops = {}
    for p in later:
        if p.dest is not None and p.dest.recording:
            stops[p.dest.uniqueid] = wait_sidecar(config, p.dest.recording)
    proc = reconcile(config)
    cases = {c: check_case(config, c, placed) for c in dict.fromkeys(p.case for p in placed)}
    for result in cases.values():
        report(result)
    return {
        "placed": placed,
        "cases": cases,
        "stops": stops,
        "gap": (lost_at, back_at),
        "reconcile": proc.stdout[-2000:],
    }


def test_a_consent_while_ami_is_away_starts_no_recording(ami_down: dict[str, Any]) -> None:
    result = ami_down["cases"]["AMI away when the consent arrives"]
    assert result.placed == 4 and result.reached == 4 and result.recorded == 0, result.row()
    assert not result.violations, result.violations
    for p in ami_down["placed"]:
        if p.case == "AMI away when the consent arrives":
            assert (p.dest.status, p.dest.reason, p.dest.recording) == (
                "error",
                "ami_unavailable",
                "",
            )


def test_a_recording_running_when_ami_goes_away_stops_when_it_is_back(
    ami_down: dict[str, Any],
) -> None:
    result = ami_down["cases"]["AMI lost while recording"]
    assert result.placed == 2 and result.reached == 2, result.row()
    assert not result.violations, result.violations
    assert len(ami_down["stops"]) == 2
    for doc in ami_down["stops"].values():
        assert doc["state"] == "final", doc
        assert doc["recording"]["stop_reason"] == "watch_lost"
