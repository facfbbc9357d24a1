"""Hostile and unusual keypresses on the real Asterisk (issue 11), one batch of SIP callers on
the lab route ``support`` (a notice, then the training question: 1 = yes, 5 s to answer):

* a flood of 50 digits in 2 s during the notice (ignored: the notice flushes digits), during the
  question (all 1s: the first is the yes; all invalid: refused after the one retry);
* a 1 held for 5 s, and a zero-length 1 (an RFC 4733 end packet with duration 0);
* a 1 sent as SIP INFO (application/dtmf-relay) and a 1 sent in-band as audio tones.

The lab endpoints (config/asterisk/pjsip.conf) have ``dtmf_mode = rfc4733``: RFC 4733
telephone-events are keypresses; what SIP INFO and in-band tones do is measured here and
documented in the README.
"""

from __future__ import annotations

from callconsent.config import Config
from tests.e2e.lab_app import LabApp, call_entries_for, route_timing
from tests.harness.asterisk import AsteriskLab
from tests.harness.rtp_pcap import Step
from tests.harness.sipp import Call, Digit, Pause, run_calls


def _flood(digits: str) -> list[Step]:
    """50 keypresses of 40 ms back to back: 2 s."""
    return [Digit(digits[i % len(digits)], seconds=0.04) for i in range(50)]


def test_dtmf_floods_long_zero_length_info_and_inband_digits_in_one_batch(
    asterisk: AsteriskLab, config: Config, lab_app: LabApp, log_mark: int
) -> None:
    t = route_timing(config, "support")
    asked = t.notices_end + 0.5  # the question is playing
    after = t.question_end + t.timeout + t.retry_seconds + t.timeout + 3.0  # any outcome is in
    cases: dict[str, tuple[Call, tuple[str, str]]] = {
        "flood_in_notice": (
            Call(to="support", timeline=[Pause(0.3), *_flood("1"), Pause(after)]),
            ("refused", "timeout"),
        ),
        "flood_of_1_in_question": (
            Call(to="support", timeline=[Pause(asked), *_flood("1"), Pause(after - asked)]),
            ("given", "digit"),
        ),
        "flood_invalid_in_question": (
            Call(to="support", timeline=[Pause(asked), *_flood("567"), Pause(after - asked)]),
            ("refused", "invalid"),
        ),
        "long_1": (
            Call(to="support", timeline=[Pause(asked), Digit("1", 5.0), Pause(after - asked)]),
            ("given", "digit"),
        ),
        "zero_length_1": (
            Call(to="support", timeline=[Pause(asked), Digit("1", 0), Pause(after - asked)]),
            ("given", "digit"),
        ),
        "sip_info_1": (
            Call(to="support", timeline=[Pause(after)], info_digits=[(asked, "1")]),
            ("given", "digit"),
        ),
        "inband_1": (
            Call(
                to="support",
                audio="silence",
                timeline=[Pause(asked), Pause(0.4, audio="inband1"), Pause(after - asked)],
            ),
            ("refused", "timeout"),
        ),
    }
    results = run_calls([call for call, _ in cases.values()], concurrency=len(cases))
    seen: dict[str, tuple[str, str]] = {}
    for name, result in zip(cases, results, strict=True):
        assert result.ok, (name, result.describe())
        dest = asterisk.wait_labdest(result.call_id, since=log_mark)  # reached the destination
        [entry] = call_entries_for(config, dest.uniqueid)
        seen[name] = (entry["status"], entry["reason"])
        print(f"{name}: {seen[name]}")  # shown with -s
    assert seen == {name: expected for name, (_call, expected) in cases.items()}
