"""The consent machine's actions carried out on a call's channel, for the ARI adapter
(:mod:`callconsent.stasis`): each action becomes ARI requests or a store write, and what came of
it the event the machine hears next. Fail safe: an ARI or storage error becomes
``AdapterFailed`` (continue the call without recording); a channel gone, nothing (its hangup
event follows)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from callconsent._stasis_call import Call
from callconsent._stasis_exit import continue_call, set_result
from callconsent._stasis_prepare import prepare_recording
from callconsent.ari import AriError, AriNotFound
from callconsent.clock import Clock
from callconsent.consent import (
    Action,
    AdapterFailed,
    Answer,
    Answered,
    CancelTimer,
    ContinueDialplan,
    Event,
    LedgerWritten,
    PlaybackFailed,
    PlayPrompt,
    PrepareRecording,
    RecordingPrepared,
    SetResult,
    StartTimer,
    StopPlayback,
    WriteLedger,
)
from callconsent.hook_result import ResultVariables
from callconsent.ports import NOT_WATCHED, AriOps, Store

#: Actions Asterisk carries out in order on the channel: they wait for a prompt's stop in flight.
_CHANNEL_COMMANDS = (Answer, PlayPrompt, SetResult, ContinueDialplan)


@dataclass
class Actions:
    """Carries out the machine's actions for :class:`callconsent.stasis.StasisApp`, which
    passes its own dependencies (see its constructor) and feeds back the events returned."""

    ari: AriOps
    store: Store
    clock: Clock
    timer_fired: Callable[[Call, str], None]  # a StartTimer's expiry: (call, timer id)
    results: ResultVariables  # a result's extra variables (agent bridge, withdrawal, ...)
    can_record: Callable[[], bool]  # R36: the app can watch a recording
    ami_ends: Callable[[], bool]  # AMI reports a recorded call's end now

    async def _stop(self, playback_id: str) -> None:
        with contextlib.suppress(AriError):  # it may have finished already
            await self.ari.stop_playback(playback_id)

    async def do(self, call: Call, action: Action) -> Event | None:
        """Carry out ``action`` on ``call``; the event it leads to, if any."""
        channel_id = call.info.uniqueid
        if call.stopping is not None and isinstance(action, _CHANNEL_COMMANDS):
            stopping, call.stopping = call.stopping, None  # a prompt playing holds them back
            await stopping
        try:
            match action:
                case Answer():
                    if not call.up:  # the hook answers first; ARI when a dialplan did not
                        await self.ari.answer(channel_id)
                    return Answered(self.clock())
                case PlayPrompt(playback_id, prompt, then):
                    if not prompt.version:  # the audio file is missing (R4)
                        call.log.error("prompt_missing", prompt=prompt.prompt_id)
                        return PlaybackFailed(playback_id, self.clock())
                    call.marks.setdefault("play_sent", self.clock().timestamp())
                    # the last notice and the question as one playlist (the machine joins them
                    # only when both files are there)
                    media = prompt.media if then is None else [prompt.media, then.media]
                    await self.ari.play(channel_id, media, playback_id, prompt.language)
                case StopPlayback(playback_id):  # awaited by the next channel command
                    call.stopping = asyncio.create_task(self._stop(playback_id))
                case StartTimer(timer_id, seconds):
                    loop = asyncio.get_running_loop()
                    call.timers[timer_id] = loop.call_later(
                        seconds, self.timer_fired, call, timer_id
                    )
                case CancelTimer(timer_id):
                    handle = call.timers.pop(timer_id, None)
                    if handle is not None:
                        handle.cancel()
                case PrepareRecording(outcome):
                    if not self.can_record():  # e.g. AMI away: transfers would go unseen
                        call.log.error("recording_not_watched", reason=NOT_WATCHED)
                        return AdapterFailed(NOT_WATCHED, self.clock())
                    # the sidecar durable and, unless AMI reports the end, the channel subscribed
                    via_ami = call.stasis_at is not None and self.ami_ends()
                    path = await prepare_recording(
                        self.ari, self.store, outcome, call.info, self.clock, not via_ami
                    )
                    call.recording_path, call.ends_via_ami = path, via_ami
                    return RecordingPrepared(self.clock())
                case SetResult(status, reason, recording):
                    call.marks.setdefault("decided", time.time())
                    path = call.recording_path if recording and call.recording_path else ""
                    call.result_extra, extra = self.results.next(  # undoes a result before
                        call.machine.plan,
                        call.machine.outcome,
                        path,
                        call.info.uniqueid,
                        call.result_extra,
                    )
                    await set_result(self.ari, channel_id, status, reason, path, call.log, extra)
                    call.log.info("consent_result", status=status, reason=reason, recording=path)
                case ContinueDialplan():
                    call.stranded = not await continue_call(self.ari, channel_id, call.log)
                    call.marks.setdefault("continued", time.time())
                case WriteLedger(outcome, final):
                    call.marks.setdefault("decided", time.time())  # a recorded call's line first
                    try:  # a final line: unrecorded (the store discards what was prepared)
                        await self.store.write_call(outcome, call.info, final=final)
                    finally:
                        if final:
                            call.recording_path = None
                    return LedgerWritten(self.clock())
        except AriNotFound:
            call.log.info("channel_gone", action=type(action).__name__)
            return None  # the caller hung up; the hangup event follows
        except AriError as exc:
            call.log.error("ari_error", action=type(action).__name__, error=str(exc))
            return AdapterFailed("ari_error", self.clock())
        except (OSError, ValueError) as exc:  # storage: disk full, permissions, unsafe id
            call.log.error("storage_error", action=type(action).__name__, error=str(exc))
            return AdapterFailed("storage_error", self.clock())
        return None
