"""The result the ARI adapter sets fails on its way back (a timed-out answer on a loaded
machine) although Asterisk applied it: the hook goes by the STATUS it reads, so the metrics
must count what the hook does, not "unavailable"."""

from __future__ import annotations

from typing import Any

from callconsent import metrics, names
from callconsent._stasis_exit import set_result
from callconsent.ari import AriError
from tests.support.stasis_fakes import FakeAri

CHANNEL = "1764000000.42"
TIMEOUT = AriError(None, "POST", "/channels/x/variable", "timed out after 2.0 s")


class Bound:
    def __init__(self) -> None:
        self.errors: list[tuple[str, dict[str, Any]]] = []

    def error(self, event: str, **kw: Any) -> None:
        self.errors.append((event, kw))


def counts() -> tuple[float, float, float]:
    return (
        metrics.CALLS.value(status="given", reason="digit"),
        metrics.CALLS.value(status=names.Status.UNAVAILABLE, reason="app_unavailable"),
        metrics.RECORDINGS_STARTED.value(),
    )


async def test_an_answer_asterisk_applied_before_the_error_counts_as_what_the_hook_does() -> None:
    ari = FakeAri(fail={"set_variables": TIMEOUT})
    ari.channel_vars[(CHANNEL, names.VAR_STATUS)] = "given"  # it got there all the same
    before, bound = counts(), Bound()
    await set_result(ari, CHANNEL, "given", "digit", "/rec/x.wav", bound)
    after = counts()
    assert (after[0] - before[0], after[1] - before[1], after[2] - before[2]) == (1, 0, 1)
    assert bound.errors == [("set_result_failed", {"error": str(TIMEOUT), "applied": True})]


async def test_an_answer_that_never_arrived_counts_as_unavailable() -> None:
    ari = FakeAri(fail={"set_variables": TIMEOUT})  # STATUS unset: the read answers 404
    before, bound = counts(), Bound()
    await set_result(ari, CHANNEL, "given", "digit", "/rec/x.wav", bound)
    after = counts()
    assert (after[0] - before[0], after[1] - before[1], after[2] - before[2]) == (0, 1, 0)
    assert bound.errors[0][1]["applied"] is False


async def test_an_earlier_status_on_the_channel_is_not_taken_for_this_answer() -> None:
    ari = FakeAri(fail={"set_variables": TIMEOUT})
    ari.channel_vars[(CHANNEL, names.VAR_STATUS)] = "refused"  # a result set before this one
    before = counts()
    await set_result(ari, CHANNEL, "given", "digit", "/rec/x.wav", Bound())
    assert counts()[1] - before[1] == 1


async def test_a_status_that_cannot_be_read_either_counts_as_unavailable() -> None:
    ari = FakeAri(fail={"set_variables": TIMEOUT, "get_variable": TIMEOUT})
    before = counts()
    await set_result(ari, CHANNEL, "given", "digit", "/rec/x.wav", Bound())
    assert counts()[1] - before[1] == 1
