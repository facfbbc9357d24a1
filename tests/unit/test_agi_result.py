"""The FastAGI result: one ``SET VARIABLE`` of an ``ARRAY(...)`` (one round trip, not one per
variable), STATUS last, and never a command line res_agi would split."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callconsent import names
from callconsent.agi.result import ARRAY_LINE_MAX, set_result
from callconsent.agi.wire import COMMAND_MAX_BYTES, command
from tests.support.agi_fakes import FakeLine


class _Log:
    def __init__(self) -> None:
        self.errors: list[tuple[str, dict[str, object]]] = []

    def error(self, event: str, **kw: object) -> None:
        self.errors.append((event, kw))


EXTRA = [("CALLCONSENT_RECORD_AT", "bridge"), ("__CALLCONSENT_CALLER", "1796455517.0")]


async def test_the_result_is_one_set_variable_with_status_last() -> None:
    line = FakeLine()
    await set_result(line, "given", "digit", "/rec/a.wav", _Log(), EXTRA)

    assert len(line.commands("SET VARIABLE")) == 1
    assert line.assignments == [
        *EXTRA,
        (names.VAR_RECORDING, "/rec/a.wav"),
        (names.VAR_REASON, "digit"),
        (names.VAR_STATUS, "given"),
    ]


# what Asterisk's argument splitter and res_agi's quotes give a meaning to, and plain text
_TRICKY = st.text(alphabet=st.sampled_from(list(',"\\()[]{}$ =;|ab1é')), max_size=40)


@given(st.lists(_TRICKY, min_size=1, max_size=5))
def test_every_value_arrives_as_it_was_set(values: list[str]) -> None:
    line = FakeLine()
    extra = [(f"CALLCONSENT_X{i}", v) for i, v in enumerate(values)]
    asyncio.run(set_result(line, "refused", "timeout", "", _Log(), extra))

    assert line.assignments[: len(values)] == extra
    assert line.variables[names.VAR_STATUS] == "refused"


async def test_a_result_too_long_for_one_line_is_set_one_variable_at_a_time() -> None:
    line = FakeLine()
    long = "/rec/" + "a" * ARRAY_LINE_MAX
    await set_result(line, "given", "digit", long, _Log(), EXTRA)

    sets = line.commands("SET VARIABLE")
    assert [name for name, _ in sets] == [
        *(n for n, _ in EXTRA),
        names.VAR_RECORDING,
        names.VAR_REASON,
        names.VAR_STATUS,
    ]
    assert line.variables[names.VAR_RECORDING] == long


async def test_a_value_res_agi_would_split_sets_no_status_and_is_logged() -> None:
    line, log = FakeLine(), _Log()
    await set_result(line, "given", "digit", "/rec/" + "a" * COMMAND_MAX_BYTES, log, EXTRA)

    assert names.VAR_STATUS not in line.variables  # the hook's "unavailable": no recording
    assert [event for event, _ in log.errors] == ["set_result_failed"]


def test_the_wire_refuses_a_command_line_res_agi_would_split() -> None:
    assert command("SET VARIABLE", "X", "a" * (COMMAND_MAX_BYTES - 30))
    with pytest.raises(ValueError, match="at most 2047 bytes"):
        command("SET VARIABLE", "X", "a" * COMMAND_MAX_BYTES)
