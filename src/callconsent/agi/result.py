"""How the FastAGI adapter (:mod:`callconsent.agi.adapter`) sets a call's result: one ``SET
VARIABLE`` at a time on the session, the same variables as the Stasis adapter sets."""

from __future__ import annotations

from typing import Any, Final, Protocol

from callconsent import names
from callconsent.agi.wire import AgiHungUp, AgiProtocolError, AgiReply, command
from callconsent.dialplan_args import array_assignment

_COMMAND_TIMEOUT: Final = 10.0
#: res_agi reads a command into 2,048 bytes (AGI_BUF_LEN) and takes what follows as the next
#: command: the result goes as one ARRAY write only well inside that.
ARRAY_LINE_MAX: Final = 1500


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
    by clearing the path (:func:`callconsent.hook_result.replacing`). One ``SET VARIABLE`` of an
    ``ARRAY(...)`` (:func:`callconsent.dialplan_args.array_assignment`: one round trip, not one
    per variable) when its line stays well inside res_agi's command buffer, else one each."""
    pairs = [
        *(extra or ()),
        (names.VAR_RECORDING, recording),
        (names.VAR_REASON, reason),
        (names.VAR_STATUS, status),
    ]
    try:
        sets = [array_assignment(pairs)]
        if len(command("SET VARIABLE", *sets[0]).encode()) > ARRAY_LINE_MAX:
            sets = pairs
    except ValueError:  # a name ARRAY cannot take, a line break (refused below, per variable)
        sets = pairs
    try:
        for name, value in sets:
            await line.send("SET VARIABLE", name, value, within=_COMMAND_TIMEOUT)
    except AgiHungUp:
        return
    except (TimeoutError, AgiProtocolError, ValueError) as exc:
        bound.error("set_result_failed", error=str(exc) or "timeout")
