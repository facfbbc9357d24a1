"""What the ARI adapter (:mod:`callconsent.stasis`) learns of a channel: from its StasisStart
event, or, for a channel already in Stasis when the app started, from its variables."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from typing import Any

from callconsent import names
from callconsent.ari import AriError
from callconsent.evidence.documents import CallInfo
from callconsent.ports import AriOps

_NOT_ROUTE_CHARS = re.compile(r"[^a-zA-Z0-9_-]")


async def call_info(ari: AriOps, channel_id: str, event: dict[str, Any]) -> CallInfo:
    """The call as its StasisStart event shows it (``channelvars`` from ari.conf), asking ARI
    only for what the event does not carry."""
    channel = event.get("channel") or {}
    caller = channel.get("caller") or {}
    args = event.get("args") or []
    shown = channel.get("channelvars")  # ari.conf ``channelvars``: no request needed
    shown = shown if isinstance(shown, dict) else {}

    async def var(name: str) -> str | None:
        value = shown.get(name)
        if isinstance(value, str):
            return value
        try:
            return await ari.get_variable(channel_id, name)
        except AriError:
            return None

    # the caller ID as sent: the hook normalised CALLERID (issue 11)
    wanted = names.STASIS_START_VARS  # linkedid, dnid, raw number, raw name
    if all(isinstance(shown.get(name), str) for name in wanted):
        linkedid, dnid, raw_num, raw_name = (shown[name] for name in wanted)
    else:
        linkedid, dnid, raw_num, raw_name = await asyncio.gather(*map(var, wanted))
    return CallInfo(
        uniqueid=channel_id,
        linkedid=linkedid or str(channel.get("linkedid") or channel_id),
        channel=str(channel.get("name", "")),
        route=str(args[0]) if args else "",
        caller_number=raw_num or caller.get("number"),
        caller_name=raw_name or caller.get("name"),
        dialled_number=dnid,
    )


async def stranger_info(ari: AriOps, channel_id: str) -> CallInfo:
    """No StasisStart to read: the channel name and the hook's route argument (``ARG1`` of
    its Gosub frame) come from channel variables, as the ledger entry needs both."""
    name, arg1 = await asyncio.gather(
        ari.get_variable(channel_id, "CHANNEL(name)"),
        ari.get_variable(channel_id, "ARG1"),
        return_exceptions=True,
    )
    event: dict[str, Any] = {"channel": {}, "args": []}
    if isinstance(name, str) and name:
        event["channel"]["name"] = name
    if isinstance(arg1, str):
        route = _NOT_ROUTE_CHARS.sub("", arg1)  # as the hook's FILTER() passes it
        event["args"] = [route] if route else []
    info = await call_info(ari, channel_id, event)
    return dataclasses.replace(info, caller_name=None)  # no route asked to keep it
