"""Reading AMI messages so that no decision rests on a header a caller can shadow (pure, no I/O).

Asterisk writes caller-controlled text (``CALLERID(num)``, ``CALLERID(name)``, the connected
line) into every AMI event that carries a channel's snapshot, unescaped. A SIP From header with
``%0D%0A`` becomes real line breaks there, so a caller writes header lines of its own into the
event (a second ``Uniqueid``, a ``BridgeUniqueid``, ...), or, with an empty line, ends the event
early and writes whole events of its own. A channel snapshot comes before the event's own
headers, so a forged line precedes the real one: a reader that keeps the first value, the last
value or a list of both decides on what the caller wrote.

:func:`read` reads one message (the text between two empty lines, as Asterisk frames them) and
:class:`Reader` reads a stream of them, and say whether a message can be trusted:

* ``duplicated``: a header name (compared without case) appears more than once. Asterisk never
  repeats a header in the events the app subscribes to, so any repetition is caller text;
* ``headless``: neither ``Event`` nor ``Response``: the rest of an event a caller cut in two;
* ``truncated``: a channel snapshot (``CallerIDNum``, also with a prefix such as ``Dest``)
  without the ``Uniqueid`` and ``Linkedid`` that always end it: the head of an event a caller
  cut in two. The :class:`Reader` then distrusts every message up to and including the next one
  that holds a ``Linkedid`` (the rest of the cut event): what lies between is the caller's;
* ``response_in_event``: an event that also carries ``Response``: caller text posing as the
  answer to an action.

A line that is not ``Name: value`` is counted (``stray_lines``) and skipped: it shadows nothing.

An untrusted message is never handed to a handler; :attr:`AmiMessage.ids` (every value of every
header that names a channel or a call) says which calls it may concern, so those fail safe.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

EOL: Final = "\r\n"
#: Headers whose values name a channel or a call (any prefix: ``DestUniqueid``, ...).
_ID_HEADER: Final = re.compile(r"(?:uniqueid|linkedid|caller)$")
#: The one event Asterisk sends with a ``Response`` header and caller ID fields without a
#: channel snapshot (so without ``Linkedid``): the answer to an asynchronous AMI Originate.
_ORIGINATE: Final = frozenset({"originateresponse"})
#: ``Name: value``: the name (spaces around it ignored) is all ``_NAME`` characters, the value
#: loses one leading space; the name ends at the line's first colon (``_NAME`` has none).
_LINE: Final = re.compile(r"\s*([A-Za-z0-9_().-]+)\s*: ?(.*)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class AmiMessage:
    """One AMI message. ``fields``: header (lower case) -> value, for headers seen once;
    ``duplicated``: header (lower case) -> every value in order, for headers seen more than
    once; ``problems``: why the message cannot be trusted (empty: it can); ``names``: header
    (lower case) -> its spelling on the wire."""

    fields: Mapping[str, str]
    duplicated: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    stray_lines: int = 0
    names: Mapping[str, str] = field(default_factory=dict)

    @property
    def trusted(self) -> bool:
        return not self.problems

    @property
    def event(self) -> str:
        return self.fields.get("event", "")

    @property
    def is_response(self) -> bool:
        return "response" in self.fields and "event" not in self.fields

    def get(self, name: str) -> str:
        """The value of header ``name`` (any case); "" when absent. Only for trusted messages."""
        return self.fields.get(name.lower(), "")

    def headers(self) -> dict[str, str]:
        """The headers seen once, spelled as on the wire (a duplicated one is left out)."""
        return {self.names.get(k, k): v for k, v in self.fields.items()}

    def pick(self, names: Iterable[str]) -> dict[str, str]:
        """The headers ``names`` (keys as given), "" for an absent one: a handler sees these
        and nothing else of the message."""
        return {name: self.get(name) for name in names}

    @property
    def ids(self) -> frozenset[str]:
        """Every value of every header naming a channel or a call (``Uniqueid``, ``Linkedid``,
        ``Caller``, with any prefix), the duplicated ones included."""
        values: set[str] = set()
        for name, value in self.fields.items():
            if _ID_HEADER.search(name):
                values.add(value.strip())
        for name, many in self.duplicated.items():
            if _ID_HEADER.search(name):
                values.update(v.strip() for v in many)
        values.discard("")
        return frozenset(values)


def read(text: str) -> AmiMessage:
    """One message: ``text`` is what lies between two empty lines (``\\r\\n\\r\\n``)."""
    fields: dict[str, str] = {}
    spelled: dict[str, str] = {}
    repeated: dict[str, list[str]] = {}
    stray = 0
    match = _LINE.match
    for line in text.strip(EOL).split(EOL):
        name, colon, value = line.partition(":")
        if colon and name.isalnum() and name.isascii():  # the usual line: ``Name: value``
            if value[:1] == " ":
                value = value[1:]
        else:  # anything else as the full pattern reads it (the same result for the above)
            found = match(line)
            if found is None:
                if line.strip():
                    stray += 1
                continue
            name, value = found.groups()
        key = name.lower()
        if key in repeated:
            repeated[key].append(value)
        elif key in fields:
            repeated[key] = [fields.pop(key), value]
        else:
            spelled[key] = name
            fields[key] = value
    duplicated = {k: tuple(v) for k, v in repeated.items()}
    originate = fields.get("event", "").lower() in _ORIGINATE
    event = "event" in fields or "event" in repeated
    response = "response" in fields or "response" in repeated
    problems: list[str] = []
    if duplicated:
        problems.append("duplicated")
    if not (event or response):
        problems.append("headless")
    elif event and response and not originate:
        problems.append("response_in_event")
    if _truncated(fields.keys() | repeated.keys()) and not originate:
        problems.append("truncated")
    return AmiMessage(fields, duplicated, tuple(problems), stray, spelled)


def _truncated(names: Iterable[str]) -> bool:
    present = set(names)
    for name in present:
        if name.endswith("calleridnum"):
            prefix = name[: -len("calleridnum")]
            if f"{prefix}uniqueid" not in present or f"{prefix}linkedid" not in present:
                return True
    return False


class Reader:
    """Reads a stream of messages in order. After a truncated message every message up to and
    including the next that holds a ``Linkedid`` is distrusted too (problem ``cut``): it is the
    text of the event a caller cut in two."""

    def __init__(self) -> None:
        self._cut = False

    def read(self, text: str) -> AmiMessage:
        message = read(text)
        if self._cut:
            if any(name.endswith("linkedid") for name in (*message.fields, *message.duplicated)):
                self._cut = "truncated" in message.problems
            return _with_problem(message, "cut")
        if "truncated" in message.problems:
            self._cut = True
        return message


def _with_problem(message: AmiMessage, problem: str) -> AmiMessage:
    if problem in message.problems:
        return message
    return AmiMessage(
        message.fields,
        message.duplicated,
        (*message.problems, problem),
        message.stray_lines,
        message.names,
    )


def shown(value: str, limit: int = 80) -> str:
    """``value`` for a log line: control characters escaped, at most ``limit`` characters."""
    escaped = value.encode("unicode_escape", "backslashreplace").decode("ascii")
    return escaped if len(escaped) <= limit else escaped[: limit - 3] + "..."
