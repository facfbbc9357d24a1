"""How a call leaves the ARI adapter (:mod:`callconsent.stasis`): the result variables the hook
reads, then the channel let go on in the dialplan; a stranger (a channel in Stasis after a
restart) let go unrecorded."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog

from callconsent import metrics, names
from callconsent._stasis_channel import stranger_info
from callconsent.ari import AriError, AriNotFound
from callconsent.consent import ConsentMachine
from callconsent.ports import AriOps, Store, write_unhandled

log = structlog.get_logger("callconsent.stasis")

_CONTINUE_ATTEMPTS = 3


async def set_result(
    ari: AriOps,
    channel_id: str,
    status: str,
    reason: str,
    recording: str,
    bound: Any,
    extra: list[tuple[str, str]] | None = None,
) -> None:
    """Set the result variables in one ARI request (``ARRAY()``: all or none), STATUS
    last, so a failure leaves the hook's "unavailable" path (no recording) in force.
    ``extra`` first (the agent bridge's)."""
    pairs = [
        *(extra or ()),
        (names.VAR_RECORDING, recording),
        (names.VAR_REASON, reason),
        (names.VAR_STATUS, status),
    ]
    try:
        await ari.set_variables(channel_id, pairs)
    except AriNotFound:
        return
    except AriError as exc:
        applied = await _status_applied(ari, channel_id, status)
        bound.error("set_result_failed", error=str(exc), applied=applied)
        if not applied:  # the hook goes its "unavailable" way
            metrics.CALLS.inc(status=names.Status.UNAVAILABLE, reason="app_unavailable")
            return
    metrics.CALLS.inc(status=str(status), reason=str(reason))
    if recording and dict(extra or ()).get(names.VAR_RECORD_AT) != names.RECORD_AT_BRIDGE:
        metrics.RECORDINGS_STARTED.inc()  # MixMonitor in the hook


async def _status_applied(ari: AriOps, channel_id: str, status: str) -> bool:
    """After a failed answer: did Asterisk apply it all the same (an answer that timed out on a
    loaded machine)? The hook goes by the STATUS it reads, and STATUS is set last, all or none.
    False when that cannot be read either."""
    try:
        return await ari.get_variable(channel_id, names.VAR_STATUS) == status
    except AriError:
        return False


async def continue_call(ari: AriOps, channel_id: str, bound: Any) -> bool:
    """Let the channel go on in the dialplan; False when ARI refused every attempt (then
    :meth:`StasisApp.on_connected <callconsent.stasis.StasisApp.on_connected>` tries again once ARI is back). One log line per call, not per
    attempt: while Asterisk is away every call in the flow fails here at once."""
    error = ""
    for attempt in range(1, _CONTINUE_ATTEMPTS + 1):
        try:
            await ari.continue_in_dialplan(channel_id)
            return True
        except AriNotFound:
            return True
        except AriError as exc:
            error = str(exc)
            if attempt < _CONTINUE_ATTEMPTS:
                await asyncio.sleep(0.2 * attempt)
    bound.critical("call_stranded_in_stasis", attempts=_CONTINUE_ATTEMPTS, error=error)
    return False


async def continue_stranger(ari: AriOps, store: Store, channel_id: str) -> None:
    """A channel in Stasis the app knows nothing of (it restarted): let it go, unrecorded."""
    bound = log.bind(channel_id=channel_id)
    bound.warning("call_reconciled", status=names.Status.ERROR, reason="app_restarted")
    info = await stranger_info(ari, channel_id)  # before it leaves Stasis and the Gosub
    # a prompt still playing holds every later command on the channel: stop it first
    for playback_id in ConsentMachine.playback_ids(channel_id):
        with contextlib.suppress(AriError):
            await ari.stop_playback(playback_id)
    await set_result(ari, channel_id, names.Status.ERROR, "app_restarted", "", bound)
    await continue_call(ari, channel_id, bound)
    await write_unhandled(store, info, names.Status.ERROR, "app_restarted", bound)
