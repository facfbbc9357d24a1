"""A recorded call's preparation in the ARI adapter (:mod:`callconsent.stasis`): its sidecar made
durable and the app subscribed to its channel, both at once (neither waits for the other), and
both in place before the call can continue.

The subscription lets the app hear of the channel's end after it has left Stasis, to finalise
the recording. Either half failing undoes the other: a sidecar made for a channel that could not
be subscribed becomes a ``not_started`` tombstone (no end of it would ever be reported); a
subscription made for a sidecar that could not be written is dropped, best effort. The error is
raised for the adapter to turn into "continue unrecorded".

When AMI is logged in, the app hears the channel's end from AMI's ``Hangup`` instead
(:mod:`callconsent.stasis_ami`): no subscription, which spares Asterisk building an event for
every dialplan step, variable and bridge change of the channel for the rest of the call."""

from __future__ import annotations

import asyncio
import contextlib

from callconsent.ari import AriError
from callconsent.clock import Clock
from callconsent.consent import CallOutcome
from callconsent.evidence import sidecar
from callconsent.evidence.documents import CallInfo
from callconsent.ports import AriOps, Store


async def prepare_recording(
    ari: AriOps,
    store: Store,
    outcome: CallOutcome,
    info: CallInfo,
    clock: Clock,
    subscribe: bool = True,
) -> str:
    """The audio path MixMonitor is to write, once the sidecar is durable and the channel
    subscribed; raises the first half's error (the sidecar's first) after undoing the other.
    Without ``subscribe`` (AMI reports the channel's end) only the sidecar is made."""
    if not subscribe:
        return await store.prepare_recording(outcome, info, clock())
    source = f"channel:{info.uniqueid}"
    made, subscribed = await asyncio.gather(
        store.prepare_recording(outcome, info, clock()),
        ari.subscribe(source),
        return_exceptions=True,
    )
    if isinstance(made, BaseException):
        if not isinstance(subscribed, BaseException):
            with contextlib.suppress(AriError):  # only costs events of a call we forget
                await ari.unsubscribe(source)
        raise made
    if isinstance(subscribed, BaseException):  # no recording will start: no end will come
        reason = sidecar.TombstoneReason.NOT_STARTED
        await store.discard_recording(info.uniqueid, clock(), reason)
        raise subscribed
    return made
