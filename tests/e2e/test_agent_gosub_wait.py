"""The agent gosub's wait for the app's answer on the real Asterisk (``WaitForCondition`` in
``[callconsent-agent]``): it goes on as soon as the answer is set, and gives up after 2 s (or the
``agent_consent.answer_wait_seconds`` the app passes on) when no answer comes (the app away): then nothing is recorded for training, the whisper says so, and it
raises ``CallconsentAgentLate`` so that an app that answers later refuses training too."""

from __future__ import annotations

import re
import time

from tests.harness.asterisk import AsteriskLab

#: the gosub's own NOTICE line (not the verbose "Executing ... Log(...)" line before it)
GOSUB_LINE = (
    r"(?m)\] NOTICE\[.*: callconsent agent=echo caller=- flag=\S* "
    r"result=(?P<result>\S*) whisper=(?P<whisper>\S+)$"
)
#: the gosub raising the late event (Asterisk's verbose "Executing" line)
LATE_EVENT = r'UserEvent\("[^"]*", "CallconsentAgentLate,Caller: -"\)'


def _start(asterisk: AsteriskLab, exten: str = "s") -> tuple[int, float, str]:
    """Run the gosub on a Local channel; returns the log mark, the start and its channel name."""
    mark = asterisk.log_offset()
    asterisk.cli(f"channel originate Local/{exten}@callconsent-lab-agent-wait application Wait 8")
    started = asterisk.wait_for_log(r"(?m)\] NOTICE\[.*: LABAGENTWAIT start channel=(\S+)$", mark)
    return mark, time.monotonic(), started.group(1)


def test_the_gosub_gives_up_after_two_seconds_without_an_answer(asterisk: AsteriskLab) -> None:
    mark, started, _ = _start(asterisk)
    line = asterisk.wait_for_log(GOSUB_LINE, mark, timeout=10)
    waited = time.monotonic() - started
    assert (line["result"], line["whisper"]) == ("", "none")
    assert 1.8 <= waited <= 4.0, waited
    asterisk.wait_for_log(r"(?m)\] NOTICE\[.*: LABAGENTWAIT returned result=$", mark)
    asterisk.wait_for_log(LATE_EVENT, mark, timeout=2)


def test_the_gosub_waits_as_long_as_the_app_says(asterisk: AsteriskLab) -> None:
    mark, started, _ = _start(asterisk, "wait35")
    line = asterisk.wait_for_log(GOSUB_LINE, mark, timeout=12)
    waited = time.monotonic() - started
    assert (line["result"], line["whisper"]) == ("", "none")
    assert 3.3 <= waited <= 5.5, waited
    asterisk.wait_for_log(LATE_EVENT, mark, timeout=2)


def test_the_gosub_goes_on_as_soon_as_the_answer_is_set(asterisk: AsteriskLab) -> None:
    mark, started, channel = _start(asterisk)
    time.sleep(0.5)
    asterisk.cli(f"dialplan set chanvar {channel} CALLCONSENT_AGENT_RESULT given")
    line = asterisk.wait_for_log(GOSUB_LINE, mark, timeout=10)
    waited = time.monotonic() - started
    assert (line["result"], line["whisper"]) == ("given", "training")
    assert waited < 1.5, waited  # not the 2 s timeout
    assert not re.search(LATE_EVENT, asterisk.read_log(mark))
