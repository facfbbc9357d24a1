"""How the FastAGI adapter (:mod:`callconsent.agi.adapter`) sets a call's result: one ``SET
VARIABLE`` at a time on the session, the same variables as the Stasis adapter sets."""

from __future__ import annotations

from typing import Any, Final, Protocol

from callconsent import names
from callconsent.agi.wire import AgiHungUp, AgiProtocolError, AgiReply

_COMMAND_TIMEOUT: Final = 10.0


class Sender(Protocol):
    async def send(self, name: str, *args: str, within: float = 10.0) -> AgiReply: ...


async def set_result(
    line: Sender,
    status: str,
    reason: str,
    recording: str,
    bound: Any,
    extra: list[tuple[str, str]] | None = None,
) -> None:
    """``extra`` first, STATUS last, so a partial failure of a first result leaves the hook's
    "unavailable" path (no recording) in force; a result replacing one that said "record" starts
    by clearing the path (:func:`callconsent.hook_result.replacing`)."""
    try:
        for name, value in extra or ():
            await line.send("SET VARIABLE", name, value, within=_COMMAND_TIMEOUT)
        await line.send("SET VARIABLE", names.VAR_RECORDING, recording)
        await line.send("SET VARIABLE", names.VAR_REASON, reason)
        await line.send("SET VARIABLE", names.VAR_STATUS, status)
    except AgiHungUp:
        return
    except (TimeoutError, AgiProtocolError, ValueError) as exc:
        bound.error("set_result_failed", error=str(exc) or "timeout")
