"""Per-channel ordered dispatch: one queue and one consumer task per channel.

A slow handler on one channel never delays another channel, and events that arrive while a
handler awaits wait in that channel's queue (unbounded: none is dropped). A channel's queue and
task are torn down once drained after ``StasisEnd`` (unless the app subscribed to the channel,
which keeps events flowing after Stasis) or ``ChannelDestroyed``. Only ``StasisStart`` (or a
subscription) opens a lane that stays: any other event for a channel with no lane (a late one,
after the teardown) opens one that closes again once drained. Nothing is kept of a channel
after its lane is gone, so memory stays flat however many calls come and go.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from ._events import (
    CHANNEL_DESTROYED,
    READ_AT,
    STASIS_END,
    STASIS_START,
    AriEvent,
    EventSink,
    channel_id_of,
)

log = structlog.get_logger(__name__)


class _Lane:
    __slots__ = ("closing", "queue", "stasis_ended", "task")

    def __init__(self, closing: bool) -> None:
        # ``None`` is a wake-up marker (re-check ``closing``), never passed to the sink.
        self.queue: asyncio.Queue[AriEvent | None] = asyncio.Queue()
        self.closing = closing
        self.stasis_ended = False
        self.task: asyncio.Task[None] | None = None


class Dispatcher:
    """Routes events to per-channel lanes (``None`` is the global lane for channel-less events)."""

    def __init__(self) -> None:
        self._sink: EventSink | None = None
        self._lanes: dict[str | None, _Lane] = {}
        self._held: set[str] = set()

    @property
    def active_channels(self) -> frozenset[str]:
        return frozenset(cid for cid in self._lanes if cid is not None)

    def start(self, sink: EventSink) -> None:
        self._sink = sink

    def dispatch(self, event: AriEvent) -> None:
        """Queue one event on its channel's lane (synchronous: order is arrival order)."""
        cid = channel_id_of(event)
        kind = event.get("type")
        if kind == STASIS_START:
            event[READ_AT] = time.time()
        lane = self._lanes.get(cid)
        if lane is None:  # a channel's lane stays open only from StasisStart or a subscription
            lane = self._open(cid, closing=cid is not None and not self._stays(cid, kind))
            lane.stasis_ended = cid is not None and kind != STASIS_START  # not in Stasis now
        lane.queue.put_nowait(event)
        if cid is None:
            return
        if kind == CHANNEL_DESTROYED:
            self._held.discard(cid)
            lane.closing = True
        elif kind == STASIS_END:
            lane.stasis_ended = True
            if cid not in self._held:
                lane.closing = True

    def hold(self, channel_id: str) -> None:
        """Keep the channel's lane after StasisEnd (the app subscribed to the channel)."""
        self._held.add(channel_id)
        lane = self._lanes.get(channel_id)
        if lane is not None and lane.closing and lane.stasis_ended:
            lane.closing = False

    def release(self, channel_id: str) -> None:
        """Undo :meth:`hold`: the lane closes when drained if the channel already left Stasis."""
        self._held.discard(channel_id)
        lane = self._lanes.get(channel_id)
        if lane is not None and lane.stasis_ended:
            self._close(lane)

    def close_channel(self, channel_id: str) -> None:
        """Tear the channel's lane down once drained (the channel is known to be gone)."""
        self._held.discard(channel_id)
        lane = self._lanes.get(channel_id)
        if lane is not None:
            self._close(lane)

    def held_channels(self) -> frozenset[str]:
        return frozenset(self._held)

    async def aclose(self) -> None:
        """Cancel every consumer (handlers in flight see CancelledError) and wait for them."""
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        self._lanes.clear()

    def _stays(self, cid: str, kind: object) -> bool:
        """A lane opened now for ``cid`` by an event of type ``kind`` stays open when drained."""
        return kind == STASIS_START or cid in self._held

    def _open(self, cid: str | None, *, closing: bool) -> _Lane:
        lane = _Lane(closing=closing)
        self._lanes[cid] = lane
        lane.task = asyncio.create_task(self._consume(cid, lane), name=f"ari-lane-{cid}")
        return lane

    @staticmethod
    def _close(lane: _Lane) -> None:
        lane.closing = True
        lane.queue.put_nowait(None)

    async def _consume(self, cid: str | None, lane: _Lane) -> None:
        sink = self._sink
        assert sink is not None, "Dispatcher.start() not called"
        try:
            while True:
                event = await lane.queue.get()
                if event is not None:
                    try:
                        await sink.on_channel_event(cid, event)
                    except Exception:
                        log.exception(
                            "ari_handler_failed", channel_id=cid, event_type=event.get("type")
                        )
                if lane.closing and lane.queue.empty():
                    return
        finally:
            if self._lanes.get(cid) is lane:
                del self._lanes[cid]
