"""The ARI (Stasis) adapter: one consent flow per channel, on the pure state machine.

It translates ARI events into :mod:`callconsent.consent` events and carries out the actions the
machine returns (:mod:`callconsent._stasis_actions`). It decides nothing itself. Fail safe: any
error while carrying out an action becomes an ``AdapterFailed`` event, which the machine answers
with "continue the call without recording"; the reason is logged and written to the ledger. The
app never hangs up a caller.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import structlog

from callconsent import metrics, names
from callconsent._stasis_actions import Actions
from callconsent._stasis_call import Call, Location, stasis_location
from callconsent._stasis_channel import call_info
from callconsent._stasis_events import USED_EVENTS, event_time, translate
from callconsent._stasis_exit import continue_call, continue_stranger, set_result
from callconsent.ari import READ_AT, AriError, AriNotFound
from callconsent.clock import Clock, utc_now
from callconsent.consent import (
    AdapterFailed,
    CallEntered,
    CallerHungUp,
    ConsentMachine,
    ConsentTimedOut,
    Event,
    IllegalEvent,
    PlaybackStarted,
    ShutdownRequested,
    WriteLedger,
)
from callconsent.hook_result import ResultVariables
from callconsent.ports import (
    AriOps,
    Objections,
    Planner,
    Skip,
    Store,
    kept_caller_name,
    write_unhandled,
)
from callconsent.timing import log_timing, mark
from callconsent.withdrawal.route import Readout

__all__ = ["USED_EVENTS", "AriOps", "Planner", "Skip", "StasisApp", "Store"]

log = structlog.get_logger("callconsent.stasis")


class StasisApp:
    """Receives ARI events (an :class:`callconsent.ari.EventSink`) and runs each call's flow."""

    def __init__(
        self,
        ari: AriOps,
        planner: Planner,
        store: Store,
        *,
        clock: Clock = utc_now,
        whisper_dir: str = "",
        prompts_dir: str = "",
        agent_wait: float = names.AGENT_WAIT_SECONDS,  # the agent gosub's wait for the answer
        call_refs: Readout | None = None,  # R17b: the call reference read to the caller
        config_sha256: Callable[[], str] | None = None,  # the config in force (reloads)
        objections: Objections | None = None,  # R30: objection after the flow
        can_record: Callable[[], bool] = lambda: True,  # R36: the app can watch a recording
        ami_ends: Callable[[], bool] = lambda: False,  # AMI reports a recorded call's end now
        heard_key: Callable[[], None] = lambda: None,  # ARI reported a key (do AMI's come?)
    ) -> None:
        self._ari = ari
        self._planner = planner
        self._store = store
        self._clock = clock
        self._config_sha256 = config_sha256 or (lambda: "")
        self._objections = objections
        self._ami_ends, self._heard_key = ami_ends, heard_key
        self._actions = Actions(  # carries out the machine's actions on the channel
            ari,
            store,
            clock,
            self._timer_fired,
            results=ResultVariables(whisper_dir, prompts_dir, call_refs, objections, agent_wait),
            can_record=can_record,
            ami_ends=ami_ends,
        )
        self._calls: dict[str, Call] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    def use_call_refs(self, call_refs: Readout | None) -> None:
        """A reloaded config's call-reference read-out (R17b), for results set from now on."""
        self._actions.results.refs = call_refs

    # -- EventSink ------------------------------------------------------------------------
    async def on_connected(self) -> None:
        """After a (re)connect: events may have been lost, so no flow in progress is trusted.
        First, Asterisk is told to send the app only the events it reads."""
        try:
            await self._ari.filter_events(allowed=USED_EVENTS)
        except AriError as exc:  # costs CPU on both sides, changes nothing else
            log.warning("event_filter_failed", error=str(exc))
        try:
            in_stasis = set(await self._ari.application_channel_ids())
        except AriError as exc:
            log.error("reconcile_failed", error=str(exc))
            return
        recorded: list[tuple[str, Call]] = []
        for channel_id, call in list(self._calls.items()):
            if call.machine.finished:
                if channel_id in in_stasis:
                    if call.stranded:  # let go while ARI was away: it is still waiting
                        call.stranded = not await continue_call(self._ari, channel_id, call.log)
                elif call.recording_path is not None:
                    recorded.append((channel_id, call))
                else:  # it left Stasis in the gap: nothing more to hear of it
                    self._forget(channel_id, call)
                continue
            if channel_id in in_stasis:
                await self._feed(call, AdapterFailed("event_gap", self._clock()))
            else:  # it left Stasis unseen: only a hangup takes a call out before we continue it
                await self._feed(call, CallerHungUp(self._clock()))
                self._forget(channel_id, call)
        for channel_id in in_stasis - set(self._calls):
            await continue_stranger(self._ari, self._store, channel_id)
        for channel_id, call in recorded:  # callers first: this may wait for MixMonitor
            await self._recheck_recording(channel_id, call)

    async def _recheck_recording(self, channel_id: str, call: Call) -> None:
        """A recorded call that left Stasis before the gap: its end may have been lost (or
        Asterisk restarted). Gone: finalise its sidecar now, in the background (it waits for
        MixMonitor to close the file). Still up: subscribe again to hear of its end, unless AMI
        reports it (:mod:`callconsent.stasis_ami`, which checks it at every AMI login too)."""
        try:
            await self._ari.get_channel(channel_id)
        except AriNotFound:
            task = asyncio.create_task(self._channel_gone(channel_id, call))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        except AriError as exc:
            call.log.warning("recording_recheck_failed", error=str(exc))
            return
        if call.ends_via_ami and self._ami_ends():
            return  # AMI is back too: its login checks the call as well
        try:  # AMI away: ARI reports the end from now on
            await self._ari.subscribe(f"channel:{channel_id}")
        except AriError as exc:
            call.log.warning("recording_resubscribe_failed", error=str(exc))
        else:
            call.ends_via_ami = False

    async def on_channel_event(self, channel_id: str | None, event: dict[str, Any]) -> None:
        if channel_id is None:
            return
        kind = event.get("type")
        if kind == "StasisStart":
            await self._start(channel_id, event)
            return
        call = self._calls.get(channel_id)
        if call is None:
            return
        if kind == "ChannelDtmfReceived":
            self._heard_key()
            if call.machine.finished and self._objections:
                digit, route = str(event.get("digit", "")), call.machine.plan.route
                await self._objections.on_late_digit(call.info.uniqueid, digit, route)
                return
        translated = translate(kind, event, self._clock)
        if isinstance(translated, PlaybackStarted) and not call.prompt_started:
            call.prompt_started = True
            metrics.NOTICE_START.observe(time.monotonic() - call.entered)
        if translated is not None:
            mark(call.marks, translated, finished=call.machine.finished)
            await self._feed(call, translated)
        if kind == "ChannelDestroyed" or (call.ended and call.machine.finished):
            await self._channel_gone(channel_id, call)
        elif kind == "StasisEnd" and call.machine.finished and call.recording_path is None:
            self._forget(channel_id, call)

    # -- AMI: a recorded call's end and late keys (callconsent.stasis_ami) -----------------
    def tracks(self, channel_id: str) -> bool:
        return channel_id in self._calls

    def ami_watched(self) -> list[str]:
        """The recorded calls past the flow whose end only AMI reports (no ARI subscription)."""
        return [i for i, c in self._calls.items() if c.ends_via_ami and c.machine.finished]

    async def ended(self, channel_id: str) -> None:
        """The channel is gone (AMI Hangup, ARI 404): finalise once, after the flow if in it."""
        call = self._calls.get(channel_id)
        if call is None:
            return
        if not call.machine.finished:  # ARI's own hangup events finish the flow first
            call.ended = True
            return
        await self._channel_gone(channel_id, call)

    async def late_key(self, channel_id: str, digit: str, where: Location) -> None:
        """A key AMI reports on an AMI-watched call, pressed on dialplan line ``where``: one
        pressed on the Stasis() line is ARI's (in the flow, or late while still in Stasis)."""
        call = self._calls.get(channel_id)
        if call is None or not call.ends_via_ami or where == call.stasis_at:
            return
        if call.machine.finished and self._objections is not None:
            await self._objections.on_late_digit(channel_id, digit, call.machine.plan.route)

    async def shutdown(self) -> None:
        """Continue every call still in the consent flow, unrecorded (SIGTERM)."""
        for call in list(self._calls.values()):
            if not call.machine.finished:
                await self._feed(call, ShutdownRequested(self._clock()))
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- call lifecycle -------------------------------------------------------------------
    async def _start(self, channel_id: str, event: dict[str, Any]) -> None:
        if channel_id in self._calls:
            return
        info = await call_info(self._ari, channel_id, event)
        bound = log.bind(channel_id=channel_id, call_id=info.uniqueid, route=info.route)
        args = event.get("args") or []
        decision = self._planner.plan(str(args[0]) if args else None, info.dialled_number)
        # no await since plan(): the plan and this hash come from the same config (SIGHUP)
        info = dataclasses.replace(
            info,
            config_sha256=self._config_sha256(),
            caller_name=kept_caller_name(decision, info.caller_name),  # only if the route asks
        )
        if isinstance(decision, Skip):
            bound.info("call_skipped", status=decision.status, reason=decision.reason)
            await set_result(self._ari, channel_id, decision.status, decision.reason, "", bound)
            await continue_call(self._ari, channel_id, bound)
            await write_unhandled(self._store, info, decision.status, decision.reason, bound)
            return
        info = dataclasses.replace(info, route=decision.route)
        call = Call(info, ConsentMachine(decision, call_key=channel_id, playlists=True), bound)
        call.up = (event.get("channel") or {}).get("state") == "Up"
        self._calls[channel_id] = call
        call.marks["start"] = event_time(event, self._clock).timestamp()
        if isinstance(read := event.get(READ_AT), float):
            call.marks["read"] = read  # the event's way to the app vs the app's queue
        call.stasis_at = stasis_location(event)
        bound.info("call_entered", language=decision.language)
        await self._feed(call, CallEntered(event_time(event, self._clock)))

    async def _channel_gone(self, channel_id: str, call: Call) -> None:
        if call.recording_path is not None and not call.recording_closed:
            call.recording_closed = True
            try:
                await self._store.recording_ended(call.info, self._clock())
            except (OSError, ValueError) as exc:
                metrics.RECORDINGS_FAILED.inc()
                call.log.error("recording_finalise_failed", error=str(exc))
            else:
                metrics.RECORDINGS_STOPPED.inc()
        self._forget(channel_id, call)

    def _forget(self, channel_id: str, call: Call) -> None:
        for handle in call.timers.values():
            handle.cancel()
        if self._calls.pop(channel_id, None) is not None:
            log_timing(call.log, call.marks)

    # -- the machine ----------------------------------------------------------------------
    async def _feed(self, call: Call, first: Event) -> None:
        async with call.lock:
            pending: deque[Event] = deque([first])
            while pending:
                event = pending.popleft()
                before = call.machine.state
                try:
                    actions = call.machine.handle(event)
                except IllegalEvent as exc:
                    call.log.error("illegal_event", error=str(exc))
                    continue
                if call.machine.state is not before:  # debug: ~6 per call, a JSON line each
                    call.log.debug(
                        "consent_state",
                        event_type=type(event).__name__,
                        from_state=before.value,
                        to_state=call.machine.state.value,
                    )
                line: asyncio.Task[Event | None] | None = None
                for action in actions:
                    if isinstance(action, WriteLedger) and not action.final:
                        # durable before the call continues, written while the result is set
                        line = asyncio.create_task(self._actions.do(call, action))
                        continue
                    follow = await self._actions.do(call, action)
                    if follow is not None:
                        pending.append(follow)
                if line is not None and (follow := await line) is not None:
                    pending.append(follow)

    def _timer_fired(self, call: Call, timer_id: str) -> None:
        call.timers.pop(timer_id, None)
        task = asyncio.create_task(self._feed(call, ConsentTimedOut(timer_id, self._clock())))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
