"""One call's state in the ARI adapter (:mod:`callconsent.stasis`)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from callconsent.consent import ConsentMachine
from callconsent.evidence.documents import CallInfo

#: Where a channel runs its dialplan: (context, extension, priority), as text.
Location = tuple[str, str, str]


@dataclass
class Call:
    info: CallInfo
    machine: ConsentMachine
    log: Any
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    recording_path: str | None = None
    recording_closed: bool = False
    result_extra: list[str] | None = None  # the extra variables' names of the result set last
    stopping: asyncio.Task[None] | None = None  # a prompt's stop in flight (the disk need not wait)
    entered: float = field(default_factory=time.monotonic)  # for the notice-start latency
    prompt_started: bool = False
    stranded: bool = False  # finished, but ARI refused the continue: still in Stasis
    up: bool = False  # answered before Stasis (the hook's Answer()): no answer request needed
    #: epoch seconds of the call's milestones, for the one ``call_timing`` line (bench/live.py)
    marks: dict[str, float] = field(default_factory=dict)
    #: the Stasis() line the channel entered the app from (StasisStart): a key AMI reports from
    #: this line was pressed in Stasis, where ARI hears it; from any other line, after the flow
    stasis_at: Location | None = None
    #: the recording's end (and late keys) come from AMI, not from an ARI channel subscription
    ends_via_ami: bool = False
    #: AMI reported the channel's end while the flow still ran: finalise once it has finished
    ended: bool = False


def stasis_location(event: dict[str, Any]) -> Location | None:
    """The dialplan line of a StasisStart event's channel, or None when it does not say."""
    plan = (event.get("channel") or {}).get("dialplan") or {}
    context, exten, priority = plan.get("context"), plan.get("exten"), plan.get("priority")
    if not isinstance(context, str) or not isinstance(exten, str) or priority is None:
        return None
    return (context, exten, str(priority))
