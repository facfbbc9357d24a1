"""The ARI REST client's HTTP/1.1 wire: request bytes, and a response parser that accepts only
what it understands (Content-Length bodies), whatever the pieces the bytes arrive in."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callconsent.ari._http import (
    MAX_BODY,
    MAX_HEAD,
    HttpProtocolError,
    Response,
    ResponseParser,
    build_request,
)

BODY = b'{"id":"pb-1","state":"queued","media_uri":"sound:notice"}'
ASTERISK_201 = (
    b"HTTP/1.1 201 Created\r\nServer: Asterisk\r\nDate: Sat, 05 Dec 2026 12:00:00 GMT\r\n"
    b"Cache-Control: no-cache, no-store\r\nContent-Length: %d\r\n"
    b"Content-type: application/json\r\n\r\n%s" % (len(BODY), BODY)
)
EXPECTED = Response(201, BODY, close=False)


def _parse_pieces(pieces: list[bytes]) -> Response:
    parser = ResponseParser()
    results = [parser.feed(piece) for piece in pieces]
    assert all(r is None for r in results[:-1]), "a response before the last byte"
    assert results[-1] is not None, "no response after the last byte"
    return results[-1]


def test_a_response_split_at_every_byte_boundary_parses_the_same() -> None:
    for cut in range(1, len(ASTERISK_201)):
        assert _parse_pieces([ASTERISK_201[:cut], ASTERISK_201[cut:]]) == EXPECTED


def test_a_response_fed_one_byte_at_a_time_parses() -> None:
    pieces = [ASTERISK_201[i : i + 1] for i in range(len(ASTERISK_201))]
    assert _parse_pieces(pieces) == EXPECTED


@given(st.lists(st.integers(min_value=1, max_value=len(ASTERISK_201) - 1), max_size=8))
def test_a_response_split_anywhere_into_many_pieces_parses(cuts: list[int]) -> None:
    bounds = [0, *sorted(set(cuts)), len(ASTERISK_201)]
    pieces = [ASTERISK_201[a:b] for a, b in itertools.pairwise(bounds)]
    assert _parse_pieces(pieces) == EXPECTED


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", Response(204, b"", False)),
        (b"HTTP/1.1 204 No Content\r\nServer: Asterisk\r\n\r\n", Response(204, b"", False)),
        (b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\n{}", Response(404, b"{}", False)),
        (
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            Response(200, b"", True),
        ),
        (
            b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\nContent-Length: 0\r\n\r\n",
            Response(200, b"", True),
        ),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", Response(200, b"", True)),
        (
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
            Response(200, b"", False),
        ),
        (b"HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx", Response(200, b"x", False)),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
            Response(200, b"x", False),
        ),
    ],
)
def test_understood_responses(raw: bytes, expected: Response) -> None:
    assert ResponseParser().feed(raw) == expected


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
            "Transfer-Encoding",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}",
            "Transfer-Encoding",
        ),
        (b"HTTP/1.1 200 OK\r\nServer: Asterisk\r\n\r\n{}", "without Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", "conflicting"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\n{}", "malformed Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0x2\r\n\r\n{}", "malformed Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n{}", "malformed Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1), "over"),
        (b"HTTP/1.1 204 No Content\r\nContent-Length: 2\r\n\r\n{}", "204 answer with a body"),
        (b"HTTP/1.1 100 Continue\r\n\r\n", "informational"),
        (b"HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n", "malformed status line"),
        (b"HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n", "malformed status line"),
        (b"HTTP/1.1 600 Odd\r\nContent-Length: 0\r\n\r\n", "malformed status line"),
        (b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", "malformed status line"),
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "malformed status line"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", "malformed status line"),
        (b"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n", "malformed header line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n folded\r\n\r\n", "malformed header line"),
        (b"HTTP/1.1 200 OK\r\nX: a\nContent-Length: 0\r\n\r\n", "malformed header line"),
        (b"HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n", "malformed header line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK", "after the end"),
        (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 101 + b"Content-Length: 0\r\n\r\n", "header lines"),
    ],
)
def test_responses_it_does_not_understand_are_refused(raw: bytes, complaint: str) -> None:
    with pytest.raises(HttpProtocolError, match=complaint):
        ResponseParser().feed(raw)


def test_refusals_do_not_depend_on_how_the_bytes_are_split() -> None:
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    for cut in range(1, len(raw)):
        parser = ResponseParser()
        with pytest.raises(HttpProtocolError, match="Transfer-Encoding"):
            parser.feed(raw[:cut])
            parser.feed(raw[cut:])


def test_a_head_without_end_is_refused_once_over_the_limit() -> None:
    parser = ResponseParser()
    assert parser.feed(b"HTTP/1.1 200 OK\r\n") is None
    with pytest.raises(HttpProtocolError, match="head longer"):
        parser.feed(b"X-Filler: " + b"a" * MAX_HEAD)


def test_bytes_after_a_complete_response_are_refused() -> None:
    parser = ResponseParser()
    assert parser.feed(b"HTTP/1.1 204 No Content\r\n\r\n") is not None
    with pytest.raises(HttpProtocolError, match="after the end"):
        parser.feed(b"x")


def test_an_error_quotes_a_short_printable_excerpt_only() -> None:
    with pytest.raises(HttpProtocolError) as caught:
        ResponseParser().feed(b"\x00\x1b[31m" + b"A" * 500 + b"\r\n\r\n")
    message = str(caught.value)
    assert "\x1b" not in message and "\x00" not in message
    assert len(message) < 100


def test_body_is_incomplete_until_its_last_byte() -> None:
    parser = ResponseParser()
    assert parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab") is None
    assert parser.started
    assert parser.feed(b"c") == Response(200, b"abc", False)


# --- requests --------------------------------------------------------------------------------


def test_get_request_bytes() -> None:
    auth = [("Authorization", "Basic YTpi")]
    raw = build_request("GET", "/ari/asterisk/info", "127.0.0.1:8088", auth)
    assert raw == (
        b"GET /ari/asterisk/info HTTP/1.1\r\nHost: 127.0.0.1:8088\r\n"
        b"Authorization: Basic YTpi\r\n\r\n"
    )


def test_post_without_body_sends_a_zero_length() -> None:
    raw = build_request("POST", "/ari/channels/c1/answer?x=1", "h")
    assert (
        raw == b"POST /ari/channels/c1/answer?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"
    )


def test_body_follows_the_head_with_its_length() -> None:
    raw = build_request("PUT", "/ari/a", "h", [("Content-Type", "application/json")], b'{"a":1}')
    assert raw.endswith(b'Content-Type: application/json\r\nContent-Length: 7\r\n\r\n{"a":1}')


@pytest.mark.parametrize(
    ("method", "target", "host", "headers"),
    [
        ("GET /x HTTP/1.1\r\nX:", "/ari", "h", []),
        ("GET", "/ari/a b", "h", []),
        ("GET", "/ari/a\r\nInjected: 1", "h", []),
        ("GET", "ari/no-slash", "h", []),
        ("GET", "/ari", "h\r\nX: 1", []),
        ("GET", "/ari", "", []),
        ("GET", "/ari", "h", [("X", "a\r\nInjected: 1")]),
        ("GET", "/ari", "h", [("X Y", "a")]),
        ("GET", "/ari", "h", [("X", "ø")]),
    ],
)
def test_nothing_that_would_break_the_framing_is_sent(
    method: str, target: str, host: str, headers: list[tuple[str, str]]
) -> None:
    with pytest.raises(ValueError):
        build_request(method, target, host, headers)
