"""The app's answer to the withdrawal route comes after the route's 4 s wait, on the real
Asterisk (R17a, b): "registered, it will be done shortly" is never a withdrawal that will not be
done without the operator being told.

The app reaches AMI through a TCP proxy the test controls (tests/harness/tcp_proxy.py) that
holds the ``CallconsentWithdrawRequest`` UserEvent back 5 s, as a loaded machine's app reads it
late. A withheld caller types a call reference of no call (its check digit right): the route
reads no answer, raises ``CallconsentWithdrawRequestLate`` and plays "registered"; the app, which
finds no call after all, logs an ERROR ``withdraw_request_not_told`` (the request id, never the
reference). A caller who presses 1 for a number with no recordings is answered "done" late: what
they heard ("registered") is true, the app logs it as info and changes nothing.

Not here: an ambiguous reference answered late (every matching call withdrawn). Two recorded
calls of the lab share a reference only by chance (9 keyed digits of the uniqueid, one a check
digit: about one pair in 10^4 calls), so the unit tests
(tests/unit/test_withdraw_route_late.py) cover it over the real evidence store.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from callconsent.config import Config
from callconsent.evidence import callref
from tests.e2e.faults import app_behind_ami_proxy, app_events, wait_until
from tests.e2e.lab_app import LabApp
from tests.e2e.withdraw_route import LATE_EVENT, WITHHELD, route_call, route_read, route_result
from tests.harness.asterisk import AsteriskLab
from tests.harness.sipp import run_call
from tests.harness.tcp_proxy import TcpProxy

AMI_PROXY_PORT = 5039
DELAY = 5.0  # the route waits 4 s


@dataclass(frozen=True)
class Late:
    request: str  # the request id
    read: str  # what the route read once its wait ended
    late_events: list[str]  # the request ids of the late events the route raised
    registered: bool  # the caller heard "registered"
    app: list[dict[str, Any]]  # the app's log lines about that request


def _late_call(
    asterisk: AsteriskLab, app: LabApp, proxy: TcpProxy, number: str, keys: str, try_: int
) -> Late:
    mark = asterisk.log_offset()
    proxy.delay_user_event("CallconsentWithdrawRequest", DELAY)
    route, _ = route_result(asterisk, run_call(route_call(number, keys)), mark)
    request = f"{route}-{try_}"

    def mine() -> list[dict[str, Any]]:
        return [e for e in app_events(app.log_path, 0) if e.get("request_id") == request]

    try:
        wait_until(
            lambda: any(e["event"] == "withdraw_request_not_told" for e in mine()),
            timeout=20,
            what="the late event handled",
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}; app: {mine()}") from None
    lines = asterisk.read_log(mark)
    return Late(
        request,
        route_read(asterisk, request, mark),
        [m["request"] for m in re.finditer(LATE_EVENT, lines)],
        "callconsent-withdraw-registered" in lines,
        mine(),
    )


@pytest.fixture(scope="module")
def late(
    asterisk: AsteriskLab,
    lab_app: LabApp,
    config: Config,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Late, Late, str]]:
    key = callref.load_key(config.storage.ledger_path)
    unknown = callref.call_ref(f"1.{random.randrange(10**9)}", key)  # a uniqueid of no call
    number = f"+4593{random.randrange(10**6):06d}"  # no other test calls from +4593
    folder = tmp_path_factory.mktemp("withdraw-route-late")
    with (
        TcpProxy(AMI_PROXY_PORT, 5038, ami=True) as proxy,
        app_behind_ami_proxy(lab_app, folder, proxy) as app,
    ):
        no_call = _late_call(asterisk, app, proxy, WITHHELD, unknown, 1)
        done = _late_call(asterisk, app, proxy, number, "1", 0)
        yield no_call, done, unknown


def test_the_route_read_no_answer_raised_the_late_event_and_said_registered(
    late: tuple[Late, Late, str],
) -> None:
    for case in late[:2]:
        assert (case.read, case.late_events, case.registered) == ("", [case.request], True)


def test_a_late_reference_of_no_call_is_an_error_for_the_operator(
    late: tuple[Late, Late, str],
) -> None:
    no_call, _, ref = late
    refused = [e for e in no_call.app if e["event"] == "withdraw_request_refused"]
    assert [e["result"] for e in refused] == ["unknown_ref"]  # the request's own handling
    [told] = [e for e in no_call.app if e["event"] == "withdraw_request_not_told"]
    assert (told["level"], told["result"], told["done"]) == (
        "error",
        "unknown_ref",
        "cannot_be_done",
    )
    assert all(ref not in str(e) for e in no_call.app), "never the reference in clear"


def test_a_late_done_is_left_as_the_caller_heard_it(late: tuple[Late, Late, str]) -> None:
    _, done, _ = late
    [report] = [e for e in done.app if e["event"] == "withdraw_request_done"]
    assert (report["result"], report["calls"]) == ("done", 0)
    [told] = [e for e in done.app if e["event"] == "withdraw_request_not_told"]
    assert (told["level"], told["result"], told["done"]) == ("info", "done", "as_heard")
