"""Fakes for the FastAGI hook's tests: a scripted AGI session (a channel that plays prompts and
receives digits as told) and a fake Asterisk FastAGI client over a real socket."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType

from callconsent.agi.wire import AgiGone, AgiHungUp, AgiReply, AgiRequest, command, parse_script
from tests.support.dialplan_split import separate_args

#: A header as Asterisk 22 sends it (tests/support/agi_capture.json), for route ``support``.
HEADER = [
    "agi_network: yes",
    "agi_network_script: callconsent?route=support",
    "agi_request: agi://127.0.0.1:4573/callconsent?route=support",
    "agi_channel: PJSIP/lab-caller-00000001",
    "agi_language: en",
    "agi_type: PJSIP",
    "agi_uniqueid: 1796455517.1",
    "agi_version: 22.10.1",
    "agi_callerid: +4511112222",
    "agi_calleridname: Lab Caller",
    "agi_callingpres: 0",
    "agi_callingani2: 0",
    "agi_callington: 0",
    "agi_callingtns: 0",
    "agi_dnid: 4570",
    "agi_rdnis: unknown",
    "agi_context: callconsent-agi",
    "agi_extension: s",
    "agi_priority: 17",
    "agi_enhanced: 0.0",
    "agi_accountcode: ",
    "agi_threadid: 140052955506368",
]


def request(
    script: str = "callconsent?route=support", uniqueid: str = "1796455517.1"
) -> AgiRequest:
    path, params = parse_script(script)
    env = {
        "agi_network_script": script,
        "agi_uniqueid": uniqueid,
        "agi_channel": "PJSIP/lab-caller-00000001",
    }
    return AgiRequest(MappingProxyType(env), path, MappingProxyType(params))


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def array_write(name: str, value: str) -> list[tuple[str, str]]:
    """What one ``SET VARIABLE name value`` sets, as Asterisk does it: ``ARRAY(a,b)`` takes
    ``value`` apart with the dialplan's argument splitter."""
    if not (name.startswith("ARRAY(") and name.endswith(")")):
        return [(name, value)]
    return list(zip(name[6:-1].split(","), separate_args(value), strict=True))


@dataclass(eq=False)
class FakeLine:
    """An AGI session on a pretend channel. ``script`` is consumed by each ``STREAM FILE`` and
    ``WAIT FOR DIGIT`` in turn: "" plays to the end / times out, a digit is pressed (a
    ``STREAM FILE`` whose escape digits do not hold it plays on, as Asterisk does), "hangup"
    hangs up, "missing" is a file Asterisk cannot open. ``fail`` maps a command name to an
    exception it raises."""

    request: AgiRequest = field(default_factory=request)
    script: list[str] = field(default_factory=list)
    caller: tuple[str, str, str] = ("+4511112222", "Lab Caller", "4570")
    state: str = "Ring"  # CHANNEL(state): "Up" when the hook answered before the AGI
    fail: dict[str, BaseException] = field(default_factory=dict)
    hung_up: bool = False
    closed: bool = False
    stray_lines: int = 0
    sent: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    assignments: list[tuple[str, str]] = field(default_factory=list)  # every variable set, in order
    block: asyncio.Event | None = None  # STREAM FILE waits for it (a long prompt)

    async def send(self, name: str, *args: str, within: float = 10.0) -> AgiReply:
        if self.closed:
            raise AgiGone("closed")
        if self.hung_up:
            raise AgiHungUp("511 dead channel")
        command(name, *args)  # what the real line would refuse to send (line breaks, length)
        self.sent.append((name, args))
        if name in self.fail:
            raise self.fail[name]
        if name == "GET FULL VARIABLE":
            number, caller_name, dnid = (b64(t) for t in self.caller)
            data = f"{number}:{caller_name}:{dnid}:1796455517.0:{self.state}:b2s="
            return AgiReply(200, result=1, data=data)
        if name in ("STREAM FILE", "WAIT FOR DIGIT"):
            if name == "STREAM FILE" and self.block is not None:
                await self.block.wait()
                if self.closed:
                    raise AgiGone("closed")
            step = self.script.pop(0) if self.script else ""
            if step == "hangup":
                self.hung_up = True
                return AgiReply(200, result=-1, endpos=800)
            if step == "missing":
                return AgiReply(200, result=-1, endpos=0)
            escape = args[1] if name == "STREAM FILE" else "0123456789*#"
            if step and step in escape:
                return AgiReply(200, result=ord(step), endpos=800)
            return AgiReply(200, result=0, endpos=16000 if name == "STREAM FILE" else None)
        if name == "SET VARIABLE":
            for var, value in array_write(args[0], args[1]):
                self.assignments.append((var, value))
                self.variables[var] = value
            return AgiReply(200, result=1)
        if name == "CHANNEL STATUS":
            return AgiReply(200, result=6)
        return AgiReply(200, result=0)

    def close(self) -> None:
        self.closed = True

    def commands(self, name: str) -> list[tuple[str, ...]]:
        return [args for n, args in self.sent if n == name]


_SYNC = re.compile(r'^GET FULL VARIABLE "([0-9a-f]+)"$')


async def fake_asterisk(
    port: int,
    header: list[str],
    answer: Callable[[str], list[str]],
    *,
    before_sync: list[str] | None = None,
    commands: int = 100,
) -> list[str]:
    """Connect to the server as Asterisk would: the header, then answer each command line with
    ``answer(line)``'s lines (the sync command is answered first, after ``before_sync`` lines,
    e.g. what caller text smuggled into the header). Returns the command lines received."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    got: list[str] = []
    try:
        writer.write("".join(f"{line}\n" for line in header).encode() + b"\n")
        await writer.drain()
        for _ in range(commands):
            raw = await reader.readline()
            if not raw:
                break
            line = raw.decode().rstrip("\n")
            sync = _SYNC.match(line)
            lines = [*(before_sync or []), f"200 result=1 ({sync[1]})"] if sync else answer(line)
            got.append(line)
            writer.write("".join(f"{x}\n" for x in lines).encode())
            await writer.drain()
    finally:
        writer.close()
    return got
