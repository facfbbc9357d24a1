"""Stop the recording of a call still in progress, for the command line (R16).

``callconsent withdraw --call-id ID`` on a call that is still up (its sidecar ``recording``)
deletes the partial file and writes the tombstone (:mod:`callconsent.lifecycle.withdraw`, no
I/O to Asterisk). When nothing recorded without consent remains, MixMonitor must also stop in
Asterisk, else it goes on writing (to the deleted file) until the call ends. The lifecycle job
marks such items ``live``; the command then calls :func:`stop_live_recordings`, which sends AMI
``StopMixMonitor`` for each caller channel (its uniqueid) over ``asterisk.ami`` from the config.

Every outcome is reported, never guessed: not configured, no login, refused. A channel Asterisk
no longer has means the call ended meanwhile, and its recording with it: that is not a problem.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from callconsent.ami import AmiError, session
from callconsent.config import AmiConfig, Config


class StopAmi(Protocol):
    async def stop_mixmonitor(self, channel: str) -> None: ...


AmiOpener = Callable[[AmiConfig], AbstractAsyncContextManager[StopAmi]]


@dataclass(frozen=True, slots=True)
class StopResult:
    """One call: ``stopped`` (AMI confirmed), ``ended`` (the channel is gone: nothing records)
    or ``failed`` (the recording may still run until the call ends; ``detail`` says why)."""

    call_id: str
    outcome: str  # stopped | ended | failed
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome != "failed"

    def as_dict(self) -> dict[str, Any]:
        return {"call_id": self.call_id, "outcome": self.outcome, "detail": self.detail}

    def __str__(self) -> str:
        if self.outcome == "stopped":
            return f"recording stopped in Asterisk: {self.call_id}"
        if self.outcome == "ended":
            return f"call already ended, nothing records: {self.call_id}"
        return (
            f"warning: could not stop the recording in Asterisk: {self.call_id} "
            f"({self.detail}); it goes on until the call ends"
        )


#: The AMI connection the command opens (tests replace it).
_open_ami: AmiOpener = session


async def stop_all(ami: StopAmi, call_ids: Sequence[str]) -> list[StopResult]:
    """``StopMixMonitor`` on each caller channel (by uniqueid), one result each."""
    out: list[StopResult] = []
    for call_id in call_ids:
        try:
            await ami.stop_mixmonitor(call_id)
        except AmiError as exc:
            out.append(StopResult(call_id, "ended" if exc.channel_gone else "failed", str(exc)))
            continue
        out.append(StopResult(call_id, "stopped"))
    return out


def stop_live_recordings(
    config: Config, call_ids: Sequence[str], *, open_ami: AmiOpener | None = None
) -> list[StopResult]:
    """Stop the recordings of ``call_ids`` (calls still up) over AMI; one result per call."""
    if not call_ids:
        return []
    ami_config = config.asterisk.ami
    if ami_config is None:
        return [StopResult(c, "failed", "asterisk.ami is not configured") for c in call_ids]
    opener = open_ami or _open_ami

    async def run() -> list[StopResult]:
        async with opener(ami_config) as ami:
            return await stop_all(ami, call_ids)

    try:
        return asyncio.run(run())
    except AmiError as exc:  # no connection or no login
        return [StopResult(c, "failed", str(exc)) for c in call_ids]
