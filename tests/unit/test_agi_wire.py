"""The FastAGI wire format (issue 17): replies and headers as Asterisk 22 sends them.

The samples are real: ``tests/support/agi_capture.json`` is a session captured from the lab
Asterisk (a raw FastAGI server sending each command below to a sipp call).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from callconsent.agi.wire import (
    AgiProtocolError,
    AgiReply,
    command,
    continues,
    parse_header,
    parse_reply,
    parse_script,
)

CAPTURE = Path(__file__).resolve().parents[1] / "support" / "agi_capture.json"


def _captured() -> tuple[list[str], dict[str, list[str]]]:
    """The header lines, and each command's reply lines (HANGUP notices dropped)."""
    rows = [(d, line.rstrip("\n")) for d, line in json.loads(CAPTURE.read_text())]
    header: list[str] = []
    replies: dict[str, list[str]] = {}
    current: str | None = None
    for direction, line in rows:
        if direction == ">":
            current = line
            replies.setdefault(current, [])
        elif direction == "<" and current is None:
            if line:
                header.append(line)
        elif direction == "<" and current is not None and line != "HANGUP":
            replies[current].append(line)
    return header, replies


HEADER, REPLIES = _captured()
S = "/usr/share/asterisk/sounds/en_US_f_Allison/"


def _reply(cmd: str) -> AgiReply:
    lines = REPLIES[cmd]
    if continues(lines[0]):
        return parse_reply(lines)
    return parse_reply(lines[:1])


@pytest.mark.parametrize(
    ("cmd", "code", "result", "data", "endpos", "digit"),
    [
        ("ANSWER", 200, 0, None, None, None),
        (f'STREAM FILE {S}beep ""', 200, 0, None, 3520, None),
        (f'STREAM FILE {S}does-not-exist ""', 200, -1, None, 0, None),
        (f'STREAM FILE {S}demo-instruct "0123456789*#"', 200, 49, None, 15680, "1"),
        ("WAIT FOR DIGIT 1500", 200, 0, None, None, None),
        ("WAIT FOR DIGIT 15000", 200, -1, None, None, None),
        (f"GET DATA {S}beep 500 1", 200, None, "timeout", None, None),
        ("GET VARIABLE NOT_SET_VAR", 200, 0, None, None, None),
        ('GET FULL VARIABLE "tok123abc"', 200, 1, "tok123abc", None, None),
        ("GET FULL VARIABLE ${BASE64_ENCODE(${CALLERID(num)})}", 200, 1, "KzQ1MTExMTIyMjI=", None, None),
        ('SET VARIABLE CAPTURE_X "a b"', 200, 1, None, None, None),
        ("CHANNEL STATUS", 200, 6, None, None, None),
        ("BOGUS COMMAND", 510, None, None, None, None),
    ],
)  # fmt: skip
def test_captured_reply_parses_to_its_result_data_endpos_and_digit(
    cmd: str, code: int, result: int | None, data: str | None, endpos: int | None, digit: str | None
) -> None:
    reply = _reply(cmd)
    assert (reply.code, reply.result, reply.data, reply.endpos, reply.digit) == (
        code,
        result,
        data,
        endpos,
        digit,
    )


def test_captured_get_variable_value_keeps_dots() -> None:
    assert _reply("GET VARIABLE UNIQUEID").data == "1796455517.0"


def test_captured_result_minus_one_is_failed_and_not_a_digit() -> None:
    reply = _reply("WAIT FOR DIGIT 15000")
    assert reply.failed and reply.digit is None and not reply.dead_channel


def test_captured_520_usage_is_one_reply_over_many_lines() -> None:
    lines = REPLIES["STREAM FILE"]
    assert continues(lines[0]) and len(lines) > 2
    reply = parse_reply(lines)
    assert reply.code == 520 and "Proper usage follows" in reply.text
    assert reply.text.endswith("End of proper usage.")


def test_captured_511_after_hangup_is_a_dead_channel() -> None:
    (line,) = [r for r in REPLIES["CHANNEL STATUS"] if r.startswith("511")]
    reply = parse_reply([line])
    assert reply.dead_channel and not reply.ok


def test_hangup_notice_is_not_a_reply() -> None:
    with pytest.raises(AgiProtocolError):
        parse_reply(["HANGUP"])


@pytest.mark.parametrize(
    "lines",
    [
        [],
        ["agi_callerid: 1"],
        ["20 result=1"],
        ["520-Invalid command syntax."],
        ["520-a", "b", "510 end"],
        ["200 result=0", "200 result=1"],
    ],
)
def test_malformed_reply_is_a_protocol_error(lines: list[str]) -> None:
    with pytest.raises(AgiProtocolError):
        parse_reply(lines)


@pytest.mark.parametrize(
    ("result", "digit"), [(48, "0"), (57, "9"), (42, "*"), (35, "#"), (0, None), (7, None)]
)
def test_digit_is_the_ascii_code_of_a_dtmf_key_only(result: int, digit: str | None) -> None:
    assert AgiReply(200, result=result).digit == digit


def test_captured_header_gives_uniqueid_channel_path_and_route() -> None:
    request = parse_header(HEADER)
    assert request.uniqueid == "1796455517.0"
    assert request.channel == "PJSIP/lab-caller-00000000"
    assert request.path == "callconsent"
    assert dict(request.params) == {"route": "capture"}
    assert request.env["agi_callerid"] == "+4511112222"
    assert request.stray_lines == 0


def test_caller_text_with_line_breaks_cannot_replace_a_trusted_header_key() -> None:
    at = HEADER.index("agi_callerid: +4511112222")
    forged = [
        *HEADER[: at + 1],
        "agi_uniqueid: ../../etc/passwd",
        "agi_network_script: callconsent?route=other",
        "200 result=49",
        *HEADER[at + 1 :],
    ]
    request = parse_header(forged)
    assert request.uniqueid == "1796455517.0"
    assert dict(request.params) == {"route": "capture"}
    assert request.stray_lines == 1
    with pytest.raises(KeyError):
        request.trusted("agi_callerid")
    assert request.trusted("agi_uniqueid") == "1796455517.0"


def test_junk_before_the_caller_text_is_a_protocol_error() -> None:
    with pytest.raises(AgiProtocolError):
        parse_header(["agi_network: yes", "GET / HTTP/1.1", *HEADER[1:]])


def test_header_without_uniqueid_is_not_a_fastagi_request() -> None:
    with pytest.raises(AgiProtocolError):
        parse_header([line for line in HEADER if not line.startswith("agi_uniqueid")])


@pytest.mark.parametrize(
    ("script", "path", "params"),
    [
        ("callconsent", "callconsent", {}),
        ("callconsent?route=support", "callconsent", {"route": "support"}),
        ("/callconsent-ended", "callconsent-ended", {}),
        ("callconsent?route=mixed-queue", "callconsent", {"route": "mixed-queue"}),
        ("callconsent?route=", "callconsent", {"route": ""}),
    ],
)
def test_network_script_gives_path_and_parameters(
    script: str, path: str, params: dict[str, str]
) -> None:
    assert parse_script(script) == (path, params)


@pytest.mark.parametrize(
    "script",
    [
        "",
        "../etc?route=x",
        "callconsent?route=a&route=b",
        "callconsent?route",
        "callconsent?route=a%20b",
        "callconsent?route=a;rm",
        "callconsent?Route=x",
        "callconsent?" + "&".join(f"p{i}=1" for i in range(9)),
    ],
)
def test_bad_network_script_is_a_protocol_error(script: str) -> None:
    with pytest.raises(AgiProtocolError):
        parse_script(script)


def test_command_quotes_each_argument_as_res_agi_parses_it() -> None:
    assert command("SET VARIABLE", "X", 'a "b" \\c') == 'SET VARIABLE "X" "a \\"b\\" \\\\c"\n'
    assert command("STREAM FILE", "/p/f", "") == 'STREAM FILE "/p/f" ""\n'
    assert command("ANSWER") == "ANSWER\n"


def test_command_refuses_an_argument_with_a_line_break() -> None:
    with pytest.raises(ValueError, match="line break"):
        command("SET VARIABLE", "X", "a\n200 result=1")
