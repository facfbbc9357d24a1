"""agent1's own-consent feature codes on the real Asterisk (``[callconsent-agent-self]``),
shared by the e2e modules that dial them."""

from __future__ import annotations

from tests.harness.asterisk import AsteriskLab
from tests.harness.sipp import Call, Pause, run_calls

AGENT1_PHONE = "127.0.0.2"  # pjsip.conf agent1-identify
#: the context raising the late event (Asterisk's verbose "Executing" line)
LATE_EVENT = r'UserEvent\("[^"]*", "CallconsentAgentSelfLate,Consent: (?P<consent>[a-z]*)"\)'


def feature_code(asterisk: AsteriskLab, code: str) -> tuple[str, str]:
    """agent1 dials ``code`` on their own phone: the result the dialplan read (and logged)
    once its wait ended, and Asterisk's log of the call."""
    mark = asterisk.log_offset()
    [result] = run_calls(
        [Call(to=code, caller_number="agent1", local_ip=AGENT1_PHONE, timeline=[Pause(10.0)])]
    )
    assert result.answered, result.describe()
    for m in asterisk.find_log(
        r"(?m)\] NOTICE\[.*: callconsent agent-self consent=(\S+) result=(\S*)$", mark
    ):
        return m.group(2), asterisk.read_log(mark)
    return "", asterisk.read_log(mark)
