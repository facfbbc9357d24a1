"""The FastAGI wire format, as pure functions: the request header Asterisk sends first, the
reply lines it sends to each command, and the commands we send. No I/O.

Reply shapes (captured from Asterisk 22, ``tests/support/agi_capture.json``)::

    200 result=0                      200 result=49 endpos=15680     200 result=-1 endpos=0
    200 result=1 (1796455517.0)       200 result= (timeout)          510 Invalid or unknown command
    511 Command Not Permitted on a dead channel or intercept routine
    520-Invalid command syntax.  Proper usage follows:   ...   520 End of proper usage.
    HANGUP                            (the channel hung up; sent between commands)

Header lines are ``agi_<name>: <value>`` up to an empty line. Asterisk copies caller-controlled
text (``agi_callerid``, ``agi_calleridname``, ``agi_dnid``, ``agi_rdnis``) into it unescaped, so a
caller ID with line breaks can add lines, end the header early or forge replies: only the keys
Asterisk writes before the first caller-controlled one are trusted (:data:`TRUSTED_KEYS`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final
from urllib.parse import unquote

__all__ = [
    "HANGUP_LINE",
    "TRUSTED_KEYS",
    "AgiGone",
    "AgiHungUp",
    "AgiProtocolError",
    "AgiReply",
    "AgiRequest",
    "command",
    "continues",
    "parse_header",
    "parse_reply",
    "parse_script",
]

HANGUP_LINE: Final = "HANGUP"
#: Written by Asterisk (res_agi launch_netscript + setup_env) before agi_callerid, the first
#: caller-controlled value: a line break in caller text cannot forge these.
TRUSTED_KEYS: Final = frozenset(
    {
        "agi_network",
        "agi_network_script",
        "agi_request",
        "agi_channel",
        "agi_language",
        "agi_type",
        "agi_uniqueid",
        "agi_version",
    }
)

_HEADER_LINE = re.compile(r"^(agi_[a-z0-9_]+): ?(.*)$")
_REPLY = re.compile(r"^(?P<code>[1-5][0-9]{2})(?P<sep>[ -])(?P<rest>.*)$")
_RESULT = re.compile(r"^result=(?P<result>-?[0-9]*)(?P<tail>.*)$")
_ENDPOS = re.compile(r"(?:^|\s)endpos=(?P<endpos>[0-9]+)(?:\s|$)")
_SCRIPT_PATH = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_PARAM_NAME = re.compile(r"^[a-z_]{1,32}$")
_PARAM_VALUE = re.compile(r"^[A-Za-z0-9_.-]{0,128}$")
_MAX_PARAMS = 8


class AgiProtocolError(ValueError):
    """Something on the wire that is not FastAGI as Asterisk speaks it."""


class AgiHungUp(Exception):
    """The channel hung up: ``511`` (dead channel), or the connection is gone."""


class AgiGone(AgiHungUp):
    """The connection closed (by Asterisk, or by us after an error or at shutdown)."""


@dataclass(frozen=True, slots=True)
class AgiReply:
    """One reply to one command.

    ``result`` is the number after ``result=`` (None when absent or empty), ``data`` the text in
    parentheses (``GET VARIABLE``'s value, ``(timeout)``), ``endpos`` the sample offset a
    playback stopped at, ``text`` the rest of the line (or every line of a multi-line reply).
    """

    code: int
    result: int | None = None
    data: str | None = None
    endpos: int | None = None
    text: str = ""

    @property
    def ok(self) -> bool:
        return self.code == 200

    @property
    def dead_channel(self) -> bool:
        """511: the channel hung up (or this is an intercept routine)."""
        return self.code == 511

    @property
    def failed(self) -> bool:
        """``result=-1``: an error, or the channel hung up during the command."""
        return self.ok and self.result == -1

    @property
    def digit(self) -> str | None:
        """The DTMF digit a ``STREAM FILE``/``WAIT FOR DIGIT`` ended on (ASCII code), or None."""
        if not self.ok or self.result is None or self.result <= 0:
            return None
        char = chr(self.result) if self.result < 128 else ""
        return char if char and char in "0123456789*#ABCD" else None


def continues(line: str) -> bool:
    """The line opens (or continues) a multi-line reply: ``520-...``; it ends at ``520 ...``."""
    match = _REPLY.match(line)
    return match is not None and match["sep"] == "-"


def parse_reply(lines: Sequence[str]) -> AgiReply:
    """One reply from its lines (without line ends): one line, or ``NNN-`` lines then the
    closing ``NNN `` one. Raises :class:`AgiProtocolError` for anything else (``HANGUP`` is not
    a reply: the reader notes it and reads on)."""
    if not lines:
        raise AgiProtocolError("empty reply")
    first = _REPLY.match(lines[0])
    if first is None:
        raise AgiProtocolError(f"not an AGI reply: {lines[0][:80]!r}")
    code = int(first["code"])
    if first["sep"] == "-":
        last = _REPLY.match(lines[-1])
        if len(lines) < 2 or last is None or int(last["code"]) != code or last["sep"] != " ":
            raise AgiProtocolError(f"unterminated {code} reply")
        return AgiReply(code, text="\n".join([first["rest"], *lines[1:-1], last["rest"]]))
    if len(lines) != 1:
        raise AgiProtocolError("extra lines after a one-line reply")
    rest = first["rest"]
    result = _RESULT.match(rest)
    if result is None:
        return AgiReply(code, text=rest)
    tail = result["tail"]
    data: str | None = None
    opening = tail.find("(")
    if opening != -1 and tail.endswith(")"):
        data = tail[opening + 1 : -1]
        tail = tail[:opening]
    endpos = _ENDPOS.search(tail)
    number = result["result"]
    return AgiReply(
        code,
        result=int(number) if number not in ("", "-") else None,
        data=data,
        endpos=int(endpos["endpos"]) if endpos else None,
        text=rest,
    )


@dataclass(frozen=True, slots=True)
class AgiRequest:
    """The request header. ``env`` holds the first value of every key; ``path`` and ``params``
    come from ``agi_network_script`` (``callconsent?route=support``)."""

    env: Mapping[str, str]
    path: str
    params: Mapping[str, str] = field(default_factory=dict)
    #: lines after the trusted keys that were no header line (caller text with line breaks)
    stray_lines: int = 0

    @property
    def uniqueid(self) -> str:
        return self.env.get("agi_uniqueid", "")

    @property
    def channel(self) -> str:
        return self.env.get("agi_channel", "")

    def trusted(self, key: str) -> str | None:
        """A header value no caller can have written (see :data:`TRUSTED_KEYS`)."""
        if key not in TRUSTED_KEYS:
            raise KeyError(f"{key} may carry caller-controlled text")
        return self.env.get(key)


def parse_header(lines: Sequence[str]) -> AgiRequest:
    """The header from its lines (without line ends, the closing empty line excluded).

    Before the first caller-controlled key a line that is not ``agi_<name>: <value>`` is an
    error; after it, such lines are counted (``stray_lines``) and skipped. The first value of a
    key wins: caller text can add lines only after the trusted keys, never replace them.
    """
    env: dict[str, str] = {}
    stray = 0
    for line in lines:
        match = _HEADER_LINE.match(line)
        if match is None:
            if set(env) <= TRUSTED_KEYS:
                raise AgiProtocolError(f"not an AGI header line: {line[:80]!r}")
            stray += 1
            continue
        env.setdefault(match[1], match[2])
    if "agi_uniqueid" not in env or "agi_network_script" not in env:
        raise AgiProtocolError("not a FastAGI request: agi_uniqueid or agi_network_script missing")
    path, params = parse_script(env["agi_network_script"])
    return AgiRequest(MappingProxyType(env), path, MappingProxyType(params), stray)


def parse_script(script: str) -> tuple[str, dict[str, str]]:
    """``callconsent?route=support`` -> ("callconsent", {"route": "support"}). Strict: a path
    and parameter names/values of plain characters only, each parameter once."""
    path, _, query = script.partition("?")
    path = path.strip("/")
    if not _SCRIPT_PATH.match(path):
        raise AgiProtocolError(f"bad AGI script path {path[:80]!r}")
    params: dict[str, str] = {}
    if query:
        pairs = query.split("&")
        if len(pairs) > _MAX_PARAMS:
            raise AgiProtocolError("too many parameters")
        for pair in pairs:
            name, sep, raw = pair.partition("=")
            value = unquote(raw)
            if not sep or not _PARAM_NAME.match(name) or not _PARAM_VALUE.match(value):
                raise AgiProtocolError(f"bad AGI parameter {pair[:80]!r}")
            if name in params:
                raise AgiProtocolError(f"parameter {name!r} given twice")
            params[name] = value
    return path, params


def _quote(arg: str) -> str:
    if any(c in arg for c in "\r\n\0"):
        raise ValueError("an AGI argument cannot hold a line break or NUL")
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


#: res_agi reads a command line into 2,048 bytes (AGI_BUF_LEN) and takes the rest of a longer
#: one as the next command: a longer line is never sent.
COMMAND_MAX_BYTES: Final = 2047


def command(name: str, *args: str) -> str:
    """One command line (with its newline): ``name`` as is (ours: a constant), each argument
    quoted as res_agi parses it (backslash escapes inside double quotes). ValueError for a line
    res_agi would split."""
    line = " ".join([name, *(_quote(a) for a in args)]) + "\n"
    if len(line.encode()) > COMMAND_MAX_BYTES:
        raise ValueError(f"an AGI command line is at most {COMMAND_MAX_BYTES} bytes")
    return line
