"""The FastAGI adapter: one consent flow per AGI session, on the same pure state machine, planner
and evidence store as the Stasis adapter (:mod:`callconsent.stasis`).

AGI is one command at a time, so the flow is a loop: feed an event, carry out the actions the
machine returns; a prompt or a wait for a digit is a blocking command whose reply is the next
event (:mod:`callconsent.agi.rules`). It decides nothing itself. Fail safe: any error becomes an
``AdapterFailed`` event, which the machine answers with "continue without recording"; the
reason is logged and in the ledger. Closing the session is "continue in the dialplan": the
``callconsent-agi`` hook then starts MixMonitor only if the result says so.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Final, Protocol

import structlog

from callconsent import names
from callconsent.agi.ended import RecordedCalls
from callconsent.agi.result import set_result
from callconsent.agi.rules import (
    CALL_INFO_EXPRESSION,
    ENDED_SCRIPT,
    BadRequest,
    FlowRequest,
    check_request,
    escape_digits,
    parse_call_info,
    play_events,
    stream_file,
    wait_events,
    wait_milliseconds,
)
from callconsent.agi.wire import AgiHungUp, AgiProtocolError, AgiReply, AgiRequest
from callconsent.clock import Clock, utc_now
from callconsent.consent import (
    Action,
    AdapterFailed,
    Answer,
    Answered,
    CallEntered,
    CallerHungUp,
    CancelTimer,
    ConsentMachine,
    ContinueDialplan,
    DigitReceived,
    Event,
    IllegalEvent,
    LedgerWritten,
    PlaybackFailed,
    PlaybackStarted,
    PlayPrompt,
    PrepareRecording,
    RecordingPrepared,
    SetResult,
    ShutdownRequested,
    StartTimer,
    State,
    StopPlayback,
    WriteLedger,
)
from callconsent.evidence.documents import CallInfo
from callconsent.hook_result import ResultVariables
from callconsent.ports import (
    NOT_WATCHED,
    Objections,
    Planner,
    Skip,
    Store,
    kept_caller_name,
    write_unhandled,
)
from callconsent.timing import log_timing, mark
from callconsent.withdrawal.route import Readout

__all__ = ["ADAPTER", "AgiFlow", "AgiLine"]

log = structlog.get_logger("callconsent.agi")

ADAPTER: Final = "agi"
#: A prompt longer than this is cut off as a failure (no notice is near it).
_PLAY_TIMEOUT: Final = 600.0
_COMMAND_TIMEOUT: Final = 10.0
_SHUTDOWN_WAIT: Final = 10.0


class AgiLine(Protocol):
    """One AGI session (:class:`callconsent.agi.server.AgiSession`; fakes in tests)."""

    request: AgiRequest
    hung_up: bool  # Asterisk said HANGUP, or 511
    closed: bool
    stray_lines: int  # lines before the sync reply: caller text that added header lines

    async def send(self, name: str, *args: str, within: float = 10.0) -> AgiReply: ...
    def close(self) -> None: ...


@dataclass
class _Call:
    line: AgiLine
    info: CallInfo
    machine: ConsentMachine
    log: Any
    recording_path: str | None = None
    result_extra: list[str] | None = None  # the extra variables' names of the result set last
    marks: dict[str, float] = field(default_factory=dict)  # call_timing's, epoch seconds
    up: bool = False  # answered before the AGI (the hook's Answer()): no ANSWER needed


class AgiFlow:
    """The server's handler: runs the consent flow for ``callconsent`` requests, and finalises
    the recording for ``callconsent-ended`` (the hook's hangup handler)."""

    def __init__(
        self,
        planner: Planner,
        store: Store,
        *,
        clock: Clock = utc_now,
        whisper_dir: str = "",
        prompts_dir: str = "",
        agent_wait: float = names.AGENT_WAIT_SECONDS,  # the agent gosub's wait for the answer
        call_refs: Readout | None = None,
        config_sha256: Callable[[], str] | None = None,  # the config in force (reloads)
        objections: Objections | None = None,  # R30: the caller's and agent's codes enabled
        can_record: Callable[[], bool] = lambda: True,  # R36: the app can watch a recording
    ) -> None:
        self._planner = planner
        self._config_sha256 = config_sha256 or (lambda: "")
        self._can_record = can_record
        self._store = store
        self._clock = clock
        self._results = ResultVariables(whisper_dir, prompts_dir, call_refs, objections, agent_wait)
        self._lines: set[AgiLine] = set()
        self._recorded = RecordedCalls(store, clock)
        self._running: set[asyncio.Task[Any]] = set()  # flows in progress
        self._stopping = False

    @property
    def active_calls(self) -> int:
        return len(self._lines)

    def use_call_refs(self, call_refs: Readout | None) -> None:
        """The call-reference readout for calls that start from now on (after a reload)."""
        self._results.refs = call_refs

    async def __call__(self, line: AgiLine) -> None:
        if line.request.path == ENDED_SCRIPT:  # the hook's hangup handler: returns at once
            line.close()
            self._recorded.ended(line.request.uniqueid)
            return
        task = asyncio.current_task()
        self._lines.add(line)
        if task is not None:
            self._running.add(task)
        try:
            await self._flow(line)
        finally:
            self._lines.discard(line)
            if task is not None:
                self._running.discard(task)
            line.close()

    async def shutdown(self) -> None:
        """SIGTERM: every call in the flow is continued unrecorded (its session is closed, so
        the hook takes its "unavailable" path) and written to the ledger as ``shutdown``."""
        self._stopping = True
        for line in list(self._lines):
            line.close()
        if self._running:  # each flow sees its session closed and writes its ledger entry
            await asyncio.wait(set(self._running), timeout=_SHUTDOWN_WAIT)
        await self._recorded.drain()

    # -- the flow ---------------------------------------------------------------------------
    async def _flow(self, line: AgiLine) -> None:
        started = self._clock().timestamp()  # the request read: the call entered
        checked = check_request(line.request)
        bound = log.bind(channel_id=line.request.uniqueid, adapter=ADAPTER)
        if isinstance(checked, BadRequest):
            await self._refuse(line, checked, bound)
            return
        info, up = await self._call_info(line, checked, bound)
        bound = bound.bind(call_id=info.uniqueid, route=info.route)
        decision = self._planner.plan(checked.route, info.dialled_number)
        # no await since plan(): the plan and this hash come from the same config (SIGHUP)
        info = replace(
            info,
            config_sha256=self._config_sha256(),
            caller_name=kept_caller_name(decision, info.caller_name),  # only if the route asks
        )
        if isinstance(decision, Skip):
            bound.info("call_skipped", status=decision.status, reason=decision.reason)
            await set_result(line, decision.status, decision.reason, "", bound)
            line.close()
            await write_unhandled(self._store, info, decision.status, decision.reason, bound)
            return
        info = replace(info, route=decision.route)
        call = _Call(line, info, ConsentMachine(decision, call_key=info.uniqueid), bound, up=up)
        call.marks["start"] = started
        bound.info("call_entered", language=decision.language)
        await self._run(call, CallEntered(self._clock()))
        log_timing(call.log, call.marks)

    async def _refuse(self, line: AgiLine, bad: BadRequest, bound: Any) -> None:
        bound.warning("agi_bad_request", reason=bad.reason, detail=bad.detail)
        status = names.Status.ERROR
        await set_result(line, status, bad.reason, "", bound)
        line.close()
        if bad.uniqueid_ok:
            uniqueid = line.request.uniqueid
            info = CallInfo(uniqueid, uniqueid, line.request.channel, "", None, None, None, ADAPTER)
            await write_unhandled(self._store, info, status, bad.reason, bound)

    async def _call_info(
        self, line: AgiLine, checked: FlowRequest, bound: Any
    ) -> tuple[CallInfo, bool]:
        """The call, and whether the channel is answered already. Caller text is read as
        base64 (never from the header, where caller ID with line breaks could have added
        lines: those are counted and logged)."""
        text = None
        try:
            text = parse_call_info(
                await line.send("GET FULL VARIABLE", CALL_INFO_EXPRESSION, within=_COMMAND_TIMEOUT)
            )
            if text is None:
                bound.warning("agi_call_info_unavailable", hint="load func_base64")
        except (AgiHungUp, TimeoutError, AgiProtocolError) as exc:
            bound.info("agi_call_info_failed", error=str(exc) or type(exc).__name__)
        if line.stray_lines or line.request.stray_lines:
            bound.warning(
                "agi_header_injection",
                lines=line.stray_lines,
                header_lines=line.request.stray_lines,
            )
        info = CallInfo(
            uniqueid=checked.uniqueid,
            linkedid=(text.linkedid if text else None) or checked.uniqueid,
            channel=checked.channel,
            route=checked.route or "",
            caller_number=text.caller_number if text else None,
            caller_name=text.caller_name if text else None,
            dialled_number=text.dialled_number if text else None,
            adapter=ADAPTER,
        )
        return info, text is not None and text.answered

    async def _run(self, call: _Call, first: Event) -> None:
        pending: deque[Event] = deque([first])
        while pending:
            event = pending.popleft()
            before = call.machine.state
            mark(call.marks, event, finished=call.machine.finished)
            try:
                actions = call.machine.handle(event)
            except IllegalEvent as exc:
                call.log.error("illegal_event", error=str(exc))
                continue
            if call.machine.state is not before:
                call.log.info(
                    "consent_state",
                    event_type=type(event).__name__,
                    from_state=before.value,
                    to_state=call.machine.state.value,
                )
            line: asyncio.Task[list[Event]] | None = None
            for action in actions:  # the machine puts a prompt or a wait last
                if isinstance(action, WriteLedger) and not action.final:
                    # durable before the session closes, written while the result is set
                    line = asyncio.create_task(self._do(call, action))
                    continue
                pending.extend(await self._do(call, action))
            if line is not None:
                pending.extend(await line)

    async def _do(self, call: _Call, action: Action) -> list[Event]:
        line = call.line
        try:
            match action:
                case Answer():
                    if call.up:  # the hook answered before the AGI
                        return [Answered(self._clock())]
                    reply = await line.send("ANSWER", within=_COMMAND_TIMEOUT)
                    if reply.ok and reply.result == 0:
                        return [Answered(self._clock())]
                    return await self._hung_up_or(call, AdapterFailed("agi_error", self._clock()))
                case PlayPrompt(playback_id, prompt):
                    if not prompt.version:  # the audio file is missing (R4)
                        call.log.error("prompt_missing", prompt=prompt.prompt_id)
                        return [PlaybackFailed(playback_id, self._clock())]
                    return await self._play(call, playback_id, prompt.media)
                case StartTimer(timer_id, seconds):
                    reply = await line.send(
                        "WAIT FOR DIGIT", wait_milliseconds(seconds), within=seconds + 15.0
                    )
                    events = wait_events(reply, timer_id, self._clock())
                    if events is None:
                        failed = AdapterFailed("agi_error", self._clock())
                        return await self._hung_up_or(call, failed)
                    return events
                case StopPlayback() | CancelTimer():
                    return []  # a prompt or a wait has ended when its reply came
                case PrepareRecording(outcome):
                    if not self._can_record():  # e.g. AMI away: transfers would go unseen
                        call.log.error("recording_not_watched", reason=NOT_WATCHED)
                        return [AdapterFailed(NOT_WATCHED, self._clock())]
                    path = await self._store.prepare_recording(outcome, call.info, self._clock())
                    call.recording_path = path
                    self._recorded.remember(call.info)
                    return [RecordingPrepared(self._clock())]
                case SetResult(status, reason, recording):
                    call.marks.setdefault("decided", self._clock().timestamp())
                    path = call.recording_path if recording and call.recording_path else ""
                    call.result_extra, extra = self._results.next(  # undoes a result before
                        call.machine.plan,
                        call.machine.outcome,
                        path,
                        call.info.uniqueid,
                        call.result_extra,
                    )
                    await set_result(line, status, reason, path, call.log, extra)
                    call.log.info("consent_result", status=status, reason=reason, recording=path)
                case ContinueDialplan():
                    line.close()  # AGI() returns; the hook reads the result
                    call.marks.setdefault("continued", self._clock().timestamp())
                case WriteLedger(outcome, final):
                    call.marks.setdefault("decided", self._clock().timestamp())  # recorded: first
                    try:  # a final line: unrecorded (the store discards what was prepared)
                        await self._store.write_call(outcome, call.info, final=final)
                    finally:
                        if final:
                            call.recording_path = None
                    return [LedgerWritten(self._clock())]
        except AgiHungUp:
            if self._stopping:
                return [ShutdownRequested(self._clock())]
            call.log.info("channel_gone", action=type(action).__name__)
            return [CallerHungUp(self._clock())]
        except (TimeoutError, AgiProtocolError) as exc:
            call.log.error("agi_error", action=type(action).__name__, error=str(exc) or "timeout")
            return [AdapterFailed("agi_error", self._clock())]
        except (OSError, ValueError) as exc:  # storage: disk full, permissions, unsafe id
            call.log.error("storage_error", action=type(action).__name__, error=str(exc))
            return [AdapterFailed("storage_error", self._clock())]
        return []

    async def _play(self, call: _Call, playback_id: str, media: str) -> list[Event]:
        """``STREAM FILE`` with the state's escape digits. A notice stopped by an objection digit
        plays on from where it stopped, ignoring further digits."""
        try:
            target = stream_file(media)
        except ValueError as exc:
            call.log.error("prompt_unplayable", error=str(exc))
            return [PlaybackFailed(playback_id, self._clock())]
        in_notice = call.machine.state is State.NOTICE
        escape = escape_digits(call.machine.state, call.machine.plan)
        events: list[Event] = [PlaybackStarted(playback_id, self._clock())]
        offset: list[str] = []
        while True:
            reply = await call.line.send(
                "STREAM FILE", target, escape, *offset, within=_PLAY_TIMEOUT
            )
            at = self._clock()
            got = play_events(reply, playback_id, at)
            if got is None:
                return events + await self._hung_up_or(call, PlaybackFailed(playback_id, at))
            if in_notice and isinstance(got[0], DigitReceived) and reply.endpos:
                events += got
                escape, offset = "", [str(reply.endpos)]
                continue
            return events + got

    async def _hung_up_or(self, call: _Call, failed: Event) -> list[Event]:
        """After ``result=-1``: hung up (HANGUP, 511, or the connection gone on a harmless
        question to the channel), or else ``failed``."""
        if not call.line.hung_up:
            try:
                await call.line.send("CHANNEL STATUS", within=_COMMAND_TIMEOUT)
            except AgiHungUp:
                pass
            except (TimeoutError, AgiProtocolError):
                return [failed]
        if call.line.hung_up or call.line.closed:
            if self._stopping:
                return [ShutdownRequested(self._clock())]
            return [CallerHungUp(self._clock())]
        return [failed]
