"""The ARI client: REST calls plus the events websocket with reconnect and per-channel dispatch."""

from __future__ import annotations

import asyncio
import random
from typing import Final

import aiohttp
import orjson
import structlog

from callconsent import metrics

from ._dispatch import Dispatcher
from ._errors import AriError, AriNotFound
from ._events import APPLICATION_REPLACED, AriEvent, EventSink
from ._pool import DEFAULT_MAX_CONNECTIONS
from ._rest import AriRest, describe, encode_query

log = structlog.get_logger(__name__)

_CHANNEL_SOURCE: Final = "channel:"
#: Errors that end one connection attempt; anything else is a bug and propagates.
_TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)


class AriClient(AriRest):
    """A thin ARI client: REST over our own connection pool, the events websocket over aiohttp.

    ``base_url`` is Asterisk's HTTP root, e.g. ``http://127.0.0.1:8088`` (a trailing ``/ari``
    is accepted; a path before it is http.conf's ``prefix``; ``https://`` goes through asyncio's
    TLS with the system's CAs). The ``Authorization: Basic`` header is built once; the password
    is not kept. ``session`` (for the websocket) is used when given (and not closed by
    :meth:`close`); otherwise the client makes its own. ``request_timeout`` bounds every REST
    call (waiting for a connection included) and the websocket handshake; at most
    ``max_connections`` REST requests are in flight at once, the others wait their turn. Reconnect
    delays grow from ``backoff_initial`` doubling up to ``backoff_max``, each with jitter in
    [delay/2, delay].
    """

    #: Seconds between websocket pings (detects a half-open connection).
    heartbeat: float = 15.0
    #: A connection that lived at least this long ends a failure streak (backoff restarts).
    stable_after: float = 10.0

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        app: str,
        *,
        session: aiohttp.ClientSession | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        request_timeout: float = 5.0,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        super().__init__(
            base_url,
            username,
            password,
            app,
            session=session,
            request_timeout=request_timeout,
            max_connections=max_connections,
        )
        if not 0 < backoff_initial <= backoff_max:
            raise ValueError("need 0 < backoff_initial <= backoff_max")
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._dispatcher = Dispatcher()
        self._loop_task: asyncio.Task[None] | None = None
        self._done: asyncio.Event | None = None
        self._stopping = False
        self._rng = random.Random()  # jitter only, not security  # noqa: S311

    @property
    def events_url(self) -> str:
        scheme, rest = self._base.split("://", 1)
        ws_scheme = "wss" if scheme == "https" else "ws"
        query = encode_query([("app", self.app), ("subscribeAll", "false")])
        return f"{ws_scheme}://{rest}/ari/events?{query}"

    @property
    def active_channels(self) -> frozenset[str]:
        """Channel ids that currently have a dispatch queue (for tests and metrics)."""
        return self._dispatcher.active_channels

    # --- subscriptions keep a channel's queue after StasisEnd --------------------------------

    async def subscribe(self, event_source: str) -> None:
        channel_id = _channel_of_source(event_source)
        if channel_id is not None:
            self._dispatcher.hold(channel_id)
        try:
            await super().subscribe(event_source)
        except AriError:
            if channel_id is not None:
                self._dispatcher.release(channel_id)
            raise

    async def unsubscribe(self, event_source: str) -> None:
        channel_id = _channel_of_source(event_source)
        try:
            await super().unsubscribe(event_source)
        finally:
            if channel_id is not None:
                self._dispatcher.release(channel_id)

    # --- events ------------------------------------------------------------------------------

    async def run(self, sink: EventSink) -> None:
        """Read events forever, reconnecting with backoff; returns only after :meth:`stop`.

        ``ApplicationReplaced`` is handled here (logged, reconnect with backoff), not passed on.
        Cancelling the task running this propagates ``CancelledError`` after cleanup.
        """
        if self._loop_task is not None:
            raise RuntimeError("AriClient.run() is already running")
        if self._stopping:
            return  # stop() came first (e.g. shutdown before the task got to run)
        self._done = asyncio.Event()
        self._dispatcher.start(sink)
        loop_task = asyncio.create_task(self._run_forever(sink), name="ari-events")
        self._loop_task = loop_task
        try:
            await loop_task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not (self._stopping and current is not None and current.cancelling() == 0):
                raise
        finally:
            if not loop_task.done():
                loop_task.cancel()
                await asyncio.wait({loop_task})
            await self._dispatcher.aclose()
            self._loop_task = None
            self._done.set()
            log.info("ari_stopped", app=self.app)

    async def stop(self) -> None:
        """End :meth:`run` (handlers in flight are cancelled) and wait until it has returned.

        Final: a stopped client does not run again (a later :meth:`run` returns at once).
        """
        self._stopping = True
        task, done = self._loop_task, self._done
        if task is None or done is None:
            return
        task.cancel()
        await done.wait()

    async def close(self) -> None:
        """:meth:`stop`, then close the HTTP session the client created."""
        await self.stop()
        await super().close()

    def _backoff_delay(self, failures: int) -> float:
        ceiling = min(self._backoff_max, self._backoff_initial * 2.0 ** min(failures - 1, 32))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    async def _run_forever(self, sink: EventSink) -> None:
        loop = asyncio.get_running_loop()
        failures = 0  # consecutive failed attempts (the current failure streak)
        connections = 0
        while True:
            connected_at: float | None = None
            replaced = False
            try:
                ws = await self._connect()
            except _TRANSPORT_ERRORS as exc:
                reason = describe(exc)
            else:
                connected_at = loop.time()
                log.info("ari_connected", url=self.events_url, after_attempts=failures)
                connections += 1
                metrics.ARI_CONNECTED.set(1)
                if connections > 1:
                    metrics.ARI_RECONNECTS.inc()
                try:
                    await self._on_connected(sink)
                    replaced, reason = await self._read(ws)
                except _TRANSPORT_ERRORS as exc:
                    reason = describe(exc)
                finally:
                    metrics.ARI_CONNECTED.set(0)
                    await ws.close()
                lived = loop.time() - connected_at
                log.info("ari_disconnected", reason=reason, connected_s=round(lived, 3))
                if lived >= self.stable_after and not replaced:
                    failures = 0
            failures += 1
            delay = self._backoff_delay(failures)
            # One warning per failure streak; the rest of the streak is debug.
            emit = log.warning if failures == 1 else log.debug
            emit(
                "ari_reconnect_scheduled", attempt=failures, delay_s=round(delay, 3), reason=reason
            )
            await asyncio.sleep(delay)

    async def _connect(self) -> aiohttp.ClientWebSocketResponse:
        ws_timeout = aiohttp.ClientWSTimeout(
            ws_receive=None, ws_close=min(self._request_timeout, 2)
        )
        async with asyncio.timeout(self._request_timeout):
            return await self._session().ws_connect(
                self.events_url,
                headers=self._auth_headers(),
                heartbeat=self.heartbeat,
                timeout=ws_timeout,
            )

    async def _on_connected(self, sink: EventSink) -> None:
        try:
            await sink.on_connected()
        except Exception:
            log.exception("ari_on_connected_failed")
        await self._prune_lanes()

    async def _prune_lanes(self) -> None:
        """After a gap, close the queues of channels that left while we were not listening."""
        stale = self._dispatcher.active_channels
        if not stale:
            return
        try:
            in_app = set(await self.application_channel_ids())
        except AriError as exc:
            log.debug("ari_prune_skipped", error=str(exc))
            return
        held = self._dispatcher.held_channels()
        for channel_id in stale - in_app:
            if channel_id in held:
                try:
                    await self.get_channel(channel_id)
                except AriNotFound:
                    self._dispatcher.close_channel(channel_id)
                except AriError:
                    pass
            else:
                self._dispatcher.close_channel(channel_id)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> tuple[bool, str]:
        """Dispatch frames until the socket ends: (application replaced?, why it ended)."""
        malformed = 0
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.ERROR:
                return False, describe(ws.exception() or RuntimeError("websocket error"))
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            event = _decode(msg.data)
            if event is None:
                malformed += 1
                emit = log.warning if malformed == 1 else log.debug
                emit("ari_malformed_frame", size=len(msg.data), count=malformed)
                continue
            if event["type"] == APPLICATION_REPLACED:
                log.error("ari_application_replaced", app=self.app)
                return True, "application replaced by another connection"
            self._dispatcher.dispatch(event)
        return False, f"websocket closed (code {ws.close_code})"


def _decode(data: str) -> AriEvent | None:
    try:
        event = orjson.loads(data)  # 3x json.loads on ARI's events (bench/ari_json.py)
    except orjson.JSONDecodeError:  # also what nests too deep, and invalid UTF-8
        return None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return None
    return event


def _channel_of_source(event_source: str) -> str | None:
    if event_source.startswith(_CHANNEL_SOURCE):
        return event_source[len(_CHANNEL_SOURCE) :] or None
    return None
