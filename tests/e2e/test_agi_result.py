"""The FastAGI result on the real Asterisk: one ``SET VARIABLE`` of an ``ARRAY(...)`` sets every
value as sent (commas, quotes, backslashes, brackets, dialplan syntax), through res_agi's quoting
and Asterisk's argument splitter both."""

from __future__ import annotations

import asyncio
from typing import Any

from callconsent import names
from callconsent.agi.result import set_result
from callconsent.agi.server import AgiServer, AgiSession
from tests.harness.asterisk import AsteriskLab
from tests.harness.sipp import Call, Pause, run_call

#: the hook's FastAGI address (host:port; FILTER drops the quotes of the reset value)
SERVER_GLOBAL = "CALLCONSENT_AGI_SERVER"
VALUES = [
    ("LAB_PLAIN", "/var/spool/asterisk/recording/2026/12/05/1.2.wav"),
    ("__LAB_INHERITED", "training,documentation"),
    ("LAB_QUOTES", 'say "hi", then \\ leave'),
    ("LAB_BRACKETS", "(a,[b]),c)"),
    ("LAB_EXPRESSION", "${SHELL(id)}$[1+1]"),
    ("LAB_EMPTY", ""),
]


class _Log:
    def __init__(self) -> None:
        self.errors: list[tuple[str, dict[str, Any]]] = []

    def error(self, event: str, **kw: Any) -> None:
        self.errors.append((event, kw))


async def test_one_set_variable_sets_every_value_as_sent(asterisk: AsteriskLab) -> None:
    read: dict[str, str] = {}
    log = _Log()
    sent: list[str] = []

    async def handler(session: AgiSession) -> None:
        await set_result(session, "refused", "timeout", "", log, list(VALUES))
        sent.append("done")
        for name, _ in [*VALUES, (names.VAR_STATUS, "")]:
            reply = await session.send("GET VARIABLE", name.lstrip("_"))
            read[name] = reply.data or ""
        session.close()

    # a port of its own: the app of another test may still hold the hook's default 4573
    server = AgiServer(handler, bind="127.0.0.1", port=0, allow=["127.0.0.1/32"])
    await server.start()
    asterisk.cli(f"dialplan set global {SERVER_GLOBAL} 127.0.0.1:{server.port}")
    try:
        call = Call(to="agi-support", timeline=[Pause(3.0)])
        await asyncio.get_running_loop().run_in_executor(None, run_call, call)
    finally:
        asterisk.cli(f'dialplan set global {SERVER_GLOBAL} ""')  # back to the default
        await server.close(grace=2.0)

    assert sent == ["done"], "no FastAGI session for the call"
    assert log.errors == []
    assert read == {**dict(VALUES), names.VAR_STATUS: "refused"}
