"""The AGI adapter's pure rules (issue 17): the request's checks, caller text read as base64,
escape digits per state, and what a reply means for the consent machine."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from types import MappingProxyType

import pytest

from callconsent.agi.rules import (
    ALL_DIGITS,
    BadRequest,
    FlowRequest,
    check_request,
    escape_digits,
    parse_call_info,
    play_events,
    stream_file,
    wait_events,
    wait_milliseconds,
)
from callconsent.agi.wire import AgiReply, AgiRequest
from callconsent.consent import (
    CallPlan,
    ConsentTimedOut,
    DigitReceived,
    Objection,
    PlaybackFailed,
    PlaybackFinished,
    PurposePlan,
    State,
)

AT = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


def _request(script: str, uniqueid: str = "1796455517.0", channel: str = "PJSIP/x-1") -> AgiRequest:
    path, _, query = script.partition("?")
    params = dict(p.split("=", 1) for p in query.split("&")) if query else {}
    env = {"agi_uniqueid": uniqueid, "agi_channel": channel, "agi_network_script": script}
    return AgiRequest(MappingProxyType(env), path, MappingProxyType(params))


def test_flow_request_names_its_route() -> None:
    got = check_request(_request("callconsent?route=support"))
    assert got == FlowRequest("1796455517.0", "PJSIP/x-1", "support")


def test_flow_request_without_route_leaves_it_to_the_dialled_number() -> None:
    assert check_request(_request("callconsent")) == FlowRequest("1796455517.0", "PJSIP/x-1", None)


@pytest.mark.parametrize(
    ("script", "uniqueid", "ledger"),
    [
        ("other", "1.1", True),
        ("callconsent?route=support&record=yes", "1.1", True),
        ("callconsent?route=" + "a" * 65, "1.1", True),
        ("callconsent?route=support", "../../x", False),
        ("callconsent?route=support", "", False),
    ],
)
def test_bad_request_is_refused_and_says_if_its_uniqueid_can_be_logged(
    script: str, uniqueid: str, ledger: bool
) -> None:
    got = check_request(_request(script, uniqueid))
    assert isinstance(got, BadRequest) and got.reason == "bad_agi_request"
    assert got.uniqueid_ok is ledger


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_call_info_decodes_hostile_caller_text_verbatim() -> None:
    hostile = 'x\n200 result=49\n"$(reboot)'
    data = f"{_b64('+4511')}:{_b64(hostile)}:{_b64('4570')}:1796455517.0:Ring:b2s="
    info = parse_call_info(AgiReply(200, result=1, data=data))
    assert info is not None
    assert (info.caller_number, info.caller_name, info.dialled_number, info.linkedid) == (
        "+4511",
        hostile,
        "4570",
        "1796455517.0",
    )
    assert not info.answered


def test_call_info_empty_dialled_number_is_none() -> None:
    info = parse_call_info(AgiReply(200, result=1, data=f"{_b64('1')}:::1.2:Ring:b2s="))
    assert info is not None and info.dialled_number is None and info.caller_name == ""


def test_call_info_tells_a_channel_the_hook_answered() -> None:
    info = parse_call_info(AgiReply(200, result=1, data=f"{_b64('1')}:::1.2:Up:b2s="))
    assert info is not None and info.answered


@pytest.mark.parametrize(
    "reply",
    [
        AgiReply(200, result=1, data="a:b:c:1.2:Up:"),  # BASE64_ENCODE missing: no proof
        AgiReply(200, result=1, data="a:b:c:1.2:b2s="),  # a part missing
        AgiReply(200, result=0),
        AgiReply(511, text="dead"),
        AgiReply(200, result=1, data="only:three:parts"),
    ],
)
def test_call_info_without_proof_of_base64_is_none(reply: AgiReply) -> None:
    assert parse_call_info(reply) is None


def _plan(*objection_digits: str) -> CallPlan:
    purposes = tuple(
        PurposePlan(
            purpose="documentation",
            lawful_basis="6(1)(f)",
            retention_days=30,
            consent=None,
            objection=Objection(d),
        )
        for d in objection_digits
    )
    return CallPlan(route="r", language="da", notices=(), purposes=purposes)


def test_notice_ignores_digits_unless_the_route_has_an_objection_digit() -> None:
    assert escape_digits(State.NOTICE, _plan()) == ""
    assert escape_digits(State.NOTICE, _plan("9")) == "9"


@pytest.mark.parametrize("state", [State.QUESTION, State.RETRY, State.MENU])
def test_question_retry_and_menu_are_ended_by_any_digit(state: State) -> None:
    assert escape_digits(state, _plan("9")) == ALL_DIGITS


def test_stream_reply_zero_is_finished_digit_is_a_digit() -> None:
    assert play_events(AgiReply(200, result=0, endpos=3), "p1", AT) == [PlaybackFinished("p1", AT)]
    assert play_events(AgiReply(200, result=49, endpos=3), "p1", AT) == [DigitReceived("1", AT)]


def test_stream_reply_minus_one_is_left_to_the_channel_check() -> None:
    assert play_events(AgiReply(200, result=-1, endpos=0), "p1", AT) is None


def test_stream_reply_that_is_no_result_is_a_failed_playback() -> None:
    assert play_events(AgiReply(510, text="x"), "p1", AT) == [PlaybackFailed("p1", AT)]


def test_wait_reply_zero_is_the_timeout_of_that_timer() -> None:
    assert wait_events(AgiReply(200, result=0), "t3", AT) == [ConsentTimedOut("t3", AT)]
    assert wait_events(AgiReply(200, result=35), "t3", AT) == [DigitReceived("#", AT)]
    assert wait_events(AgiReply(200, result=-1), "t3", AT) is None


def test_stream_file_takes_the_path_of_a_sound_uri_and_refuses_quotes() -> None:
    assert stream_file("sound:/var/lib/p/da/lab-docs-v1") == "/var/lib/p/da/lab-docs-v1"
    with pytest.raises(ValueError):
        stream_file('sound:/p/a "b')


def test_wait_milliseconds_rounds_and_is_never_zero() -> None:
    assert (wait_milliseconds(8.0), wait_milliseconds(0.0001)) == ("8000", "1")
