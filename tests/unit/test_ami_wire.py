"""Reading AMI messages so that caller text cannot shadow a header (callconsent.ami_wire).

Wire samples captured from the lab Asterisk (tests/support/ami_samples.py): the events of a
caller whose From user part forged ``Uniqueid`` and ``BridgeUniqueid`` lines, and the same events
without those lines.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callconsent import ami_wire
from tests.support import ami_samples as s

CLEAN = {
    "newchannel": s.NEWCHANNEL,
    "userevent": s.USEREVENT,
    "bridgeenter": s.BRIDGEENTER,
    "dialbegin": s.DIALBEGIN,
}
FORGED = {
    "newchannel": s.NEWCHANNEL_FORGED,
    "userevent": s.USEREVENT_FORGED,
    "bridgeenter": s.BRIDGEENTER_FORGED,
    "dialbegin": s.DIALBEGIN_FORGED,
}


def _messages(stream: str) -> list[ami_wire.AmiMessage]:
    reader = ami_wire.Reader()
    return [reader.read(text) for text in stream.split("\r\n\r\n") if text.strip("\r\n")]


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_a_plain_callers_event_is_trusted_and_read_by_its_own_headers(name: str) -> None:
    message = ami_wire.read(CLEAN[name])
    assert message.trusted, message.problems
    assert message.event.lower() == name
    assert message.get("Linkedid") == "1796455236.0"
    assert not message.duplicated


@pytest.mark.parametrize("name", sorted(FORGED))
def test_a_forged_uniqueid_line_makes_the_event_untrusted_and_names_both_ids(name: str) -> None:
    message = ami_wire.read(FORGED[name])
    assert not message.trusted
    assert "duplicated" in message.problems
    assert "uniqueid" in message.duplicated
    assert {"1700000000.1", "1796455236.0"} <= message.ids


def test_the_dial_of_a_forged_caller_to_an_outside_phone_is_not_read_as_anybodys() -> None:
    message = ami_wire.read(s.DIALBEGIN_FORGED)
    # the caller's line, the real one, the caller's again (in the outside phone's connected line)
    assert message.duplicated["uniqueid"] == ("1700000000.1", "1796455236.0", "1700000000.1")
    assert "uniqueid" not in message.fields  # no handler can read either value
    assert "Uniqueid" not in message.headers()


@pytest.mark.parametrize(
    "forged",
    [
        "uniqueid: 1700000000.1",  # another case
        "UNIQUEID:1700000000.1",  # no space
        "Uniqueid : 1700000000.1",  # space before the colon
        " Uniqueid: 1700000000.1",  # leading space
    ],
)
def test_a_header_forged_in_another_spelling_is_still_a_duplicate(forged: str) -> None:
    text = s.BRIDGEENTER.replace(
        "CallerIDNum: +4520007101\r\n", f"CallerIDNum: +45\r\n{forged}\r\n"
    )
    message = ami_wire.read(text)
    assert "duplicated" in message.problems and "uniqueid" in message.duplicated


def test_a_forged_bridge_id_in_the_channel_snapshot_shadows_the_real_bridge_id() -> None:
    text = s.BRIDGEENTER.replace(
        "CallerIDNum: +4520007101\r\n", "CallerIDNum: +45\r\nbridgeuniqueid: forged\r\n"
    )
    message = ami_wire.read(text)
    assert message.duplicated["bridgeuniqueid"][1] == "forged"
    assert not message.trusted


@pytest.mark.parametrize("sep", ["\n", "\r"])
def test_line_breaks_other_than_crlf_stay_inside_the_value(sep: str) -> None:
    number = f"+45{sep}Event: Hangup{sep}Uniqueid: 1700000000.2"
    message = ami_wire.read(
        s.NEWCHANNEL.replace("CallerIDNum: +4520007101", f"CallerIDNum: {number}")
    )
    assert message.trusted
    assert message.get("CallerIDNum") == number
    assert message.get("Uniqueid") == "1796455236.0"


def test_an_empty_line_in_the_caller_id_cuts_the_event_and_every_piece_is_distrusted() -> None:
    forged = (
        "+45\r\n\r\nEvent: UserEvent\r\nPrivilege: user,all\r\nUserEvent: CallconsentWithdraw\r\n"
        "Caller: 1700000000.3\r\n\r\n"
    )
    stream = s.NEWCHANNEL.replace("+4520007101", forged) + "\r\n" + s.BRIDGEENTER + "\r\n"
    head, fake, tail, after = _messages(stream)
    assert "truncated" in head.problems
    assert fake.event == "UserEvent" and "cut" in fake.problems
    assert "headless" in tail.problems and "cut" in tail.problems
    assert "1796455236.0" in tail.ids  # the real channel: its call fails safe
    assert after.trusted and after.event == "BridgeEnter"


def test_a_forged_event_that_swallows_the_rest_of_the_real_event_is_distrusted() -> None:
    forged = "+45\r\n\r\nEvent: Hangup\r\nPrivilege: call,all\r\nUniqueid: 1700000000.4"
    stream = s.NEWCHANNEL.replace("+4520007101", forged) + "\r\n"
    head, fake = _messages(stream)
    assert "truncated" in head.problems
    assert "cut" in fake.problems and "duplicated" in fake.problems
    assert {"1700000000.4", "1796455236.0"} <= fake.ids


def test_an_event_posing_as_an_action_answer_is_distrusted() -> None:
    message = ami_wire.read(
        s.NEWCHANNEL.replace("CallerIDNum: +4520007101", "CallerIDNum: +45\r\nResponse: Success")
    )
    assert "response_in_event" in message.problems


def test_the_rest_of_a_cut_event_without_event_or_response_is_headless() -> None:
    message = ami_wire.read("Language: en\r\nUniqueid: 1796455236.0\r\nLinkedid: 1796455236.0\r\n")
    assert message.problems == ("headless",)
    assert message.ids == {"1796455236.0"}


def test_an_action_answer_and_an_originate_response_are_trusted() -> None:
    assert ami_wire.read("Response: Success\r\nActionID: a/1\r\nMessage: ok\r\n").is_response
    originate = ami_wire.read(
        "Event: OriginateResponse\r\nPrivilege: call,all\r\nResponse: Success\r\nChannel: x\r\n"
        "Uniqueid: 1.2\r\nCallerIDNum: 1\r\nCallerIDName: x\r\n"
    )
    assert originate.trusted


def test_pick_gives_only_the_named_headers_and_empty_for_absent_ones() -> None:
    message = ami_wire.read(s.USEREVENT)
    assert message.pick(["Caller", "Agent", "Nope", "Uniqueid"]) == {
        "Caller": "1796455236.0",
        "Agent": "agent1",
        "Nope": "",
        "Uniqueid": "1796455252.1",
    }


def test_a_line_without_a_colon_is_skipped_and_counted() -> None:
    message = ami_wire.read("Event: Hangup\r\nnot a header\r\nUniqueid: 1.2\r\n")
    assert message.trusted and message.stray_lines == 1


@pytest.mark.parametrize(
    ("line", "header", "value"),
    [
        ("Channel: PJSIP/a-1", "channel", "PJSIP/a-1"),
        ("Channel:PJSIP/a-1", "channel", "PJSIP/a-1"),
        ("Channel:  two spaces", "channel", " two spaces"),
        (" Channel \t: x", "channel", "x"),
        ("Cause-txt: Normal: Clearing", "cause-txt", "Normal: Clearing"),
        ("Variable(CHANNEL(x)): y", "variable(channel(x))", "y"),
        ("Channel: ", "channel", ""),
    ],
)
def test_a_header_line_gives_its_name_without_case_and_its_value_less_one_space(
    line: str, header: str, value: str
) -> None:
    message = ami_wire.read(f"Event: Hangup\r\n{line}\r\nUniqueid: 1.2")
    assert message.fields[header] == value and message.stray_lines == 0


@pytest.mark.parametrize("line", ["Chan nel: x", "Chännel: x", ": x", "Channel x", "Ch;an: x"])
def test_a_line_whose_name_is_not_a_header_name_is_stray(line: str) -> None:
    message = ami_wire.read(f"Event: Hangup\r\n{line}\r\nUniqueid: 1.2")
    assert message.stray_lines == 1 and set(message.fields) == {"event", "uniqueid"}


def test_shown_escapes_control_characters_and_shortens() -> None:
    assert ami_wire.shown("a\r\nb") == "a\\r\\nb"
    assert len(ami_wire.shown("x" * 500)) == 80


def _read_line_by_pattern(text: str) -> tuple[dict[str, str], dict[str, tuple[str, ...]], int]:
    """Every line through the full ``Name: value`` pattern: what ``read``'s quick path for plain
    names must agree with."""
    values: dict[str, list[str]] = {}
    stray = 0
    for line in text.strip(ami_wire.EOL).split(ami_wire.EOL):
        found = ami_wire._LINE.match(line)
        if found is None:
            stray += bool(line.strip())
            continue
        values.setdefault(found.group(1).lower(), []).append(found.group(2))
    fields = {k: v[0] for k, v in values.items() if len(v) == 1}
    return fields, {k: tuple(v) for k, v in values.items() if len(v) > 1}, stray


_NAMES = ["Event", "Uniqueid", "UNIQUEID", "CallerIDNum", "Linkedid", "Response", "x_(y).z-1"]
_PIECES = st.sampled_from(
    [*_NAMES, "Ä", ":", ": ", ":  ", " ", "\t", "\r", "\n", "\r\n", "\x85", "\u2028", "1", ""]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.lists(_PIECES, max_size=6).map("".join), max_size=8).map("\r\n".join))
def test_read_reads_every_line_as_the_full_pattern_does(text: str) -> None:
    message = ami_wire.read(text)
    fields, duplicated, stray = _read_line_by_pattern(text)
    assert dict(message.fields) == fields
    assert dict(message.duplicated) == duplicated
    assert message.stray_lines == stray


def test_read_keeps_the_first_spelling_of_a_repeated_header() -> None:
    message = ami_wire.read("Event: Hangup\r\nUniqueid: 1.1\r\nUNIQUEID: 1.2\r\nuniqueid: 1.3")
    assert message.duplicated == {"uniqueid": ("1.1", "1.2", "1.3")}
    assert message.names["uniqueid"] == "Uniqueid"
    assert "uniqueid" not in message.fields
    assert message.problems == ("duplicated",)
