"""The caller's confirmation after answering (requirements texts 6 and 7) on the real Asterisk.

The lab route ``confirmed`` asks the training question with the confirmation on (the default);
the hook plays text 6 after yes and text 7 after no, before the call goes on to its
destination. Asterisk's log shows what the caller's channel played.
"""

from __future__ import annotations

import pytest

from callconsent import names
from callconsent.config import Config
from tests.e2e.lab_app import LabApp, route_timing
from tests.harness.asterisk import AsteriskLab
from tests.harness.sipp import Call, Digit, Pause, run_call


@pytest.mark.parametrize(
    ("key", "status", "prompt"),
    [
        ("1", "given", names.CONSENT_GIVEN_PROMPT),
        ("2", "refused", names.CONSENT_REFUSED_PROMPT),
    ],
)
def test_the_caller_hears_the_confirmation_of_the_answer(
    asterisk: AsteriskLab,
    config: Config,
    lab_app: LabApp,
    key: str,
    status: str,
    prompt: str,
) -> None:
    timing = route_timing(config, "confirmed")
    mark = asterisk.log_offset()
    result = run_call(
        Call(to="confirmed", timeline=[Pause(timing.question_end + 0.5), Digit(key), Pause(6.0)])
    )
    assert result.ok, result.describe()
    end = asterisk.wait_labend(result.call_id, since=mark)
    assert end.status == status
    played = asterisk.wait_for_log(
        rf"\[{end.log_tag}\].*Playing '[^']*/da/(callconsent-consent-[a-z-]+)", since=mark
    )
    assert played.group(1) == prompt
