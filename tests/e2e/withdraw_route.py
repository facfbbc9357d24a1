"""Calls to the lab's withdrawal route (``withdraw`` in extensions-lab.conf:
``[callconsent-withdraw-route]``) on the real Asterisk, shared by the e2e modules that dial it."""

from __future__ import annotations

import re

from tests.harness.asterisk import AsteriskLab
from tests.harness.sipp import Call, CallResult, Digit, Pause

WITHHELD = "anonymous"  # CALLERID(num) "anonymous": no digits, so the number counts as withheld
#: the route raising the late event (Asterisk's verbose "Executing" line)
LATE_EVENT = r'UserEvent\("[^"]*", "CallconsentWithdrawRequestLate,Request: (?P<request>[^"]*)"\)'


def route_call(number: str, keys: str, *, then: str = "", hangup_after: float = 16.0) -> Call:
    """A call to the route typing ``keys`` 2 s after the answer (during the first prompt) and
    ``then`` 5 s after them (after the answer to the first attempt, during the prompt again)."""
    timeline: list[Pause | Digit] = [Pause(2.0)]
    for i, part in enumerate((keys, then)):
        timeline += [Pause(5.0)] if i and part else []
        for key in part:
            timeline += [Digit(key), Pause(0.3)]
    return Call(to="withdraw", caller_number=number, timeline=timeline, hangup_after=hangup_after)


def route_result(asterisk: AsteriskLab, result: CallResult, since: int) -> tuple[str, str]:
    """(the route channel's uniqueid, the app's answer) from the LABWITHDRAW line."""
    assert result.ok, result.describe()
    m = asterisk.wait_for_log(
        rf"(?m)LABWITHDRAW uniqueid=(\S+) callid={re.escape(result.call_id)} result=(\S*)$",
        since,
        timeout=30,
    )
    return m.group(1), m.group(2)


def route_read(asterisk: AsteriskLab, request_id: str, since: int) -> str:
    """What the route read once its wait ended for request ``request_id`` (its NOTICE line):
    what the caller heard ("" : no answer in time, "registered")."""
    m = asterisk.wait_for_log(
        rf"(?m)\] NOTICE\[.*: callconsent withdraw request={re.escape(request_id)} by=\S+ "
        r"result=(\S*)$",
        since,
        timeout=30,
    )
    return m.group(1)
