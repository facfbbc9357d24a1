"""The HTTP/1.1 wire of the ARI REST client, pure (no I/O): request bytes, response parsing.

Only what Asterisk's HTTP server speaks is understood: a status line, headers, and a body of
exactly ``Content-Length`` bytes (or none, for 204 and 304). Anything else (chunked or any
other ``Transfer-Encoding``, a body without a length, conflicting lengths, an oversized head or
body, a malformed status line or header, an informational 1xx answer) raises
:class:`HttpProtocolError` instead of being guessed at; the connection is then unusable.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

#: Longest status line plus headers accepted (Asterisk's are a few hundred bytes).
MAX_HEAD = 16 * 1024
#: Largest body accepted (ARI answers are JSON objects of a few kB).
MAX_BODY = 4 * 1024 * 1024
#: Most header lines accepted.
MAX_HEADERS = 100

_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([1-5][0-9][0-9])(?: [\x20-\x7e\x80-\xff]*)?")
#: RFC 9110 token characters (header names, methods).
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TOKEN_STR = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: What a request target, the Host or a header value may hold: visible ASCII and space (values).
_TARGET = re.compile(r"/[\x21-\x7e]*")
_VALUE = re.compile(r"[\x20-\x7e]*")
_DIGITS = re.compile(rb"[0-9]{1,12}")


class HttpProtocolError(Exception):
    """The server's bytes are not an HTTP/1.1 answer this client understands (the message
    names what is wrong and never quotes more than a short, printable excerpt)."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    #: The server will close the connection (``Connection: close`` or HTTP/1.0).
    close: bool


def build_request(
    method: str,
    target: str,
    host: str,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes | None = None,
) -> bytes:
    """The bytes of one request. ``target`` is the encoded path and query (``/ari/...``);
    a ``Content-Length`` is sent for a body and for every method but GET (``0`` then).

    Raises ValueError for a method, target, host or header that would break the framing (a
    space or line break where none may be): nothing reaches the wire unescaped."""
    if not _TOKEN_STR.fullmatch(method):
        raise ValueError(f"not an HTTP method: {method!r}")
    if not _TARGET.fullmatch(target):
        raise ValueError("request target must be an encoded path starting with '/'")
    if not host or not _VALUE.fullmatch(host) or " " in host:
        raise ValueError("host must be visible ASCII")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    for name, value in headers:
        if not _TOKEN_STR.fullmatch(name) or not _VALUE.fullmatch(value):
            raise ValueError(f"header {name!r} has a name or value that cannot be sent")
        lines.append(f"{name}: {value}")
    if body is not None or method != "GET":
        lines.append(f"Content-Length: {len(body) if body else 0}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
    return head + body if body else head


def _excerpt(data: bytes) -> str:
    """A short printable excerpt of bytes the server sent, for an error message."""
    text = data[:40].decode("ascii", "replace")
    return repr("".join(c if c.isprintable() else "?" for c in text))


class ResponseParser:
    """Parse one response from bytes fed in pieces of any size.

    :meth:`feed` returns the :class:`Response` once it is complete, else ``None``; bytes past
    the end of the response are an error (one request in flight: the server may send
    nothing more). ``no_body`` (the answer to a HEAD) is not needed here: we never send one.
    """

    __slots__ = ("_buffer", "_done", "_head", "_length")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._head: tuple[int, bool] | None = None
        self._length = 0
        self._done = False

    def feed(self, data: bytes) -> Response | None:
        if self._done:
            if data:
                raise HttpProtocolError(f"data after the end of the answer: {_excerpt(data)}")
            return None
        self._buffer += data
        if self._head is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEAD:
                    raise HttpProtocolError(f"answer head longer than {MAX_HEAD} bytes")
                return None
            if end + 4 > MAX_HEAD:
                raise HttpProtocolError(f"answer head longer than {MAX_HEAD} bytes")
            status, close, length = _parse_head(bytes(self._buffer[:end]))
            self._head = (status, close)
            self._length = length
            del self._buffer[: end + 4]
        if len(self._buffer) < self._length:
            return None
        if len(self._buffer) > self._length:
            extra = bytes(self._buffer[self._length :])
            raise HttpProtocolError(f"data after the end of the answer: {_excerpt(extra)}")
        self._done = True
        status, close = self._head
        return Response(status, bytes(self._buffer), close)

    @property
    def started(self) -> bool:
        """Some bytes of the answer have arrived."""
        return bool(self._buffer) or self._head is not None


def _parse_head(head: bytes) -> tuple[int, bool, int]:
    """(status, server closes?, body length) of a status line plus headers."""
    status_line, *lines = head.split(b"\r\n")
    match = _STATUS_LINE.fullmatch(status_line)
    if match is None:
        raise HttpProtocolError(f"malformed status line: {_excerpt(status_line)}")
    status = int(match[2])
    if status < 200:
        raise HttpProtocolError(f"informational answer {status} not expected")
    close = match[1] == b"0"
    if len(lines) > MAX_HEADERS:
        raise HttpProtocolError(f"more than {MAX_HEADERS} header lines")
    lengths: set[bytes] = set()
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            raise HttpProtocolError(f"malformed header line: {_excerpt(line)}")
        if b"\r" in value or b"\n" in value or b"\x00" in value:
            raise HttpProtocolError(f"malformed header line: {_excerpt(line)}")
        key = name.lower()
        value = value.strip(b" \t")
        if key == b"content-length":
            lengths.add(value)
        elif key == b"transfer-encoding":
            raise HttpProtocolError(f"Transfer-Encoding {_excerpt(value)} not supported")
        elif key == b"connection":
            tokens = {t.strip().lower() for t in value.split(b",")}
            if b"close" in tokens:
                close = True
            elif b"keep-alive" in tokens and match[1] == b"0":
                close = False
    if status in (204, 304):
        if lengths - {b"0"}:
            raise HttpProtocolError(f"a {status} answer with a body")
        return status, close, 0
    if not lengths:
        raise HttpProtocolError("answer without Content-Length")
    if len(lengths) > 1:
        raise HttpProtocolError("conflicting Content-Length headers")
    (raw,) = lengths
    if not _DIGITS.fullmatch(raw):
        raise HttpProtocolError(f"malformed Content-Length: {_excerpt(raw)}")
    length = int(raw)
    if length > MAX_BODY:
        raise HttpProtocolError(f"answer body of {length} bytes is over {MAX_BODY}")
    return status, close, length
