"""A fake ARI server on aiohttp.web for fast tests of the ARI client.

It binds 127.0.0.1 on an ephemeral port, checks the ``Authorization`` header, records every REST
call (decoded from the raw request line, so tests see exactly what was encoded), serves the
events websocket for one app, and lets a test push events or raw frames, drop the websocket,
refuse connections (listening socket closed, like Asterisk down), refuse the websocket handshake
(503), take the app over (``ApplicationReplaced``), and program errors or stalls for a path.

Channel operations on a channel not in :attr:`FakeAriServer.channels` answer 404
``Channel not found``, as Asterisk does.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from aiohttp import web


@dataclass(frozen=True)
class RecordedCall:
    method: str
    #: Path segments after ``/ari``, each percent-decoded: ("channels", "<id>", "answer").
    segments: tuple[str, ...]
    #: The path exactly as received (still encoded), without the query string.
    raw_path: str
    #: Query parameters, percent-decoded (last value wins for repeated names).
    query: dict[str, str]
    body: bytes


def channel_event(kind: str, channel_id: str, **fields: Any) -> dict[str, Any]:
    """A channel event as Asterisk sends it (only the fields the client cares about)."""
    return {"type": kind, "application": "callconsent", "channel": {"id": channel_id}, **fields}


def playback_event(kind: str, channel_id: str, playback_id: str) -> dict[str, Any]:
    return {
        "type": kind,
        "application": "callconsent",
        "playback": {"id": playback_id, "target_uri": f"channel:{channel_id}", "state": "done"},
    }


DEFAULT_PASSWORD = "secret"


async def eventually(predicate: Callable[[], bool], within: float = 2.0) -> None:
    """Poll ``predicate`` until it holds; fail with TimeoutError after ``within`` seconds."""
    async with asyncio.timeout(within):
        for _ in itertools.count():
            if predicate():
                return
            await asyncio.sleep(0.005)


class FakeAriServer:
    def __init__(
        self,
        *,
        username: str = "asterisk",
        password: str = DEFAULT_PASSWORD,
        app: str = "callconsent",
    ) -> None:
        self.app = app
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._expected_auth = f"Basic {token}"
        #: Known channels and their variables.
        self.channels: dict[str, dict[str, str]] = {}
        #: What GET /applications/{app} reports as ``channel_ids`` (None: the known channels).
        self.app_channel_ids: list[str] | None = None
        self.calls: list[RecordedCall] = []
        self.unauthorized = 0
        #: Websocket handshakes seen (accepted or refused) and accepted.
        self.ws_attempts = 0
        self.ws_connections = 0
        #: Query parameters of every events handshake.
        self.ws_queries: list[dict[str, str]] = []
        #: While true, the events handshake answers 503 (the attempt is still counted).
        self.refuse_websocket = False
        self.playbacks: set[str] = set()
        self._failures: dict[tuple[str, tuple[str, ...]], tuple[int, str]] = {}
        self._stalls: dict[tuple[str, tuple[str, ...]], float] = {}
        self._sockets: list[web.WebSocketResponse] = []
        self._connected = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self.port = 0

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        application = web.Application()
        application.router.add_route("*", r"/ari/{tail:[\s\S]*}", self._handle)
        self._runner = web.AppRunner(application, shutdown_timeout=0.1)
        await self._runner.setup()
        await self.start_listening()

    async def close(self) -> None:
        await self.drop_websockets()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeAriServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop_listening(self) -> None:
        """Simulate Asterisk going down: drop websockets and refuse new TCP connections."""
        await self.drop_websockets()
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def start_listening(self) -> None:
        """(Re)open the listening socket, on the same port once one was chosen."""
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await self._site.start()
        self.port = self._runner.addresses[-1][1]

    # --- programming -------------------------------------------------------------------------

    def add_channel(self, channel_id: str, **variables: str) -> None:
        self.channels[channel_id] = dict(variables)

    def fail(self, method: str, segments: tuple[str, ...], status: int, message: str) -> None:
        """Answer ``method /ari/<segments>`` with ``status`` and ``{"message": message}``."""
        self._failures[(method, segments)] = (status, message)

    def stall(self, method: str, segments: tuple[str, ...], seconds: float) -> None:
        """Wait ``seconds`` before answering ``method /ari/<segments>``."""
        self._stalls[(method, segments)] = seconds

    def calls_to(self, method: str, *segments: str) -> list[RecordedCall]:
        return [c for c in self.calls if c.method == method and c.segments == segments]

    # --- events ------------------------------------------------------------------------------

    async def wait_connected(self, count: int = 1, within: float = 3.0) -> None:
        """Wait until ``count`` websockets have been accepted in total."""
        async with asyncio.timeout(within), self._connected:
            await self._connected.wait_for(lambda: self.ws_connections >= count)

    async def send_event(self, event: dict[str, Any]) -> None:
        await self.send_raw(json.dumps(event))

    async def send_raw(self, text: str) -> None:
        assert self._sockets, "no events websocket connected"
        for ws in list(self._sockets):
            await ws.send_str(text)

    async def drop_websockets(self) -> None:
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"going away")
        self._sockets.clear()

    async def replace_application(self) -> None:
        """Another connection took the app over: send ApplicationReplaced, then silence."""
        for ws in list(self._sockets):
            await ws.send_str(json.dumps({"type": "ApplicationReplaced", "application": self.app}))
        self._sockets.clear()

    # --- HTTP --------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != self._expected_auth:
            self.unauthorized += 1
            return _json(401, {"message": "Authentication required"})
        raw_path, _, raw_query = request.raw_path.partition("?")
        segments = tuple(unquote(s) for s in raw_path.split("/")[2:])
        if segments == ("events",):
            return await self._events(request)
        body = await request.read()
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        self.calls.append(RecordedCall(request.method, segments, raw_path, query, body))
        stall = self._stalls.get((request.method, segments))
        if stall:
            await asyncio.sleep(stall)
        failure = self._failures.get((request.method, segments))
        if failure is not None:
            return _json(failure[0], {"message": failure[1]})
        return self._route(request.method, segments, query)

    def _route(self, method: str, seg: tuple[str, ...], query: dict[str, str]) -> web.Response:
        if seg == ("asterisk", "info") and method == "GET":
            return _json(200, {"system": {"version": "22.10.1"}, "status": {}})
        if seg[:2] == ("applications", self.app):
            info = {"name": self.app, "channel_ids": self._app_channel_ids(), "bridge_ids": []}
            if len(seg) == 2 and method == "GET":
                return _json(200, info)
            if seg[2:] == ("subscription",) and method in ("POST", "DELETE"):
                return _json(200, info)
            if seg[2:] == ("eventFilter",) and method == "PUT":
                return _json(200, info)
        if seg[:1] == ("playbacks",) and len(seg) == 2 and method == "DELETE":
            if seg[1] not in self.playbacks:
                return _json(404, {"message": "Playback not found"})
            self.playbacks.discard(seg[1])
            return web.Response(status=204)
        if seg[:1] == ("channels",) and len(seg) >= 2:
            return self._channel(method, seg[1], seg[2:], query)
        return _json(404, {"message": "Resource not found"})

    def _channel(
        self, method: str, channel_id: str, rest: tuple[str, ...], query: dict[str, str]
    ) -> web.Response:
        variables = self.channels.get(channel_id)
        if variables is None:
            return _json(404, {"message": "Channel not found"})
        match (method, rest):
            case ("GET", ()):
                return _json(200, {"id": channel_id, "name": f"PJSIP/{channel_id}", "state": "Up"})
            case ("DELETE", ()):
                del self.channels[channel_id]
                return web.Response(status=204)
            case ("POST", ("answer",)) | ("POST", ("continue",)):
                return web.Response(status=204)
            case ("POST", ("variable",)):
                variables[query["variable"]] = query.get("value", "")
                return web.Response(status=204)
            case ("GET", ("variable",)):
                if query["variable"] not in variables:
                    return _json(404, {"message": "Provided variable was not found"})
                return _json(200, {"value": variables[query["variable"]]})
            case ("POST", ("play", playback_id)):
                self.playbacks.add(playback_id)
                playback = {
                    "id": playback_id,
                    "media_uri": query["media"].split(",")[0],
                    "target_uri": f"channel:{channel_id}",
                    "state": "queued",
                }
                return _json(201, playback)
        return _json(404, {"message": "Resource not found"})

    def _app_channel_ids(self) -> list[str]:
        if self.app_channel_ids is not None:
            return list(self.app_channel_ids)
        return list(self.channels)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        self.ws_attempts += 1
        self.ws_queries.append(dict(request.query))
        if request.query.get("app") != self.app or self.refuse_websocket:
            return _json(503 if self.refuse_websocket else 400, {"message": "not available"})
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        async with self._connected:
            self.ws_connections += 1
            self._connected.notify_all()
        try:
            async for _msg in ws:
                pass
        finally:
            if ws in self._sockets:
                self._sockets.remove(ws)
        return ws


def _json(status: int, data: object) -> web.Response:
    return web.json_response(data, status=status)


class RecordingSink:
    """An :class:`callconsent.ari.EventSink` that records what it gets, in one ordered log.

    ``gates[channel_id]``: the first event of that channel waits for the gate (a slow handler).
    ``fail_types``: event types whose handling raises ``RuntimeError`` (after being recorded).
    """

    def __init__(self) -> None:
        self.log: list[tuple[str, str | None, dict[str, Any] | None]] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.fail_types: set[str] = set()
        self.fail_on_connected = False
        self.on_connected_delay = 0.0
        self._changed = asyncio.Condition()

    @property
    def connected(self) -> int:
        return sum(1 for entry in self.log if entry[0] == "connected")

    def events(self, channel_id: str | None = None) -> list[dict[str, Any]]:
        return [e for kind, cid, e in self.log if kind == "event" and cid == channel_id and e]

    def types(self, channel_id: str | None = None) -> list[str]:
        return [e["type"] for e in self.events(channel_id)]

    async def wait_for(self, predicate: Callable[[], bool], within: float = 2.0) -> None:
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(predicate)

    async def wait_connected(self, count: int) -> None:
        await self.wait_for(lambda: self.connected >= count)

    async def wait_events(self, channel_id: str | None, count: int) -> None:
        await self.wait_for(lambda: len(self.events(channel_id)) >= count)

    async def _record(self, entry: tuple[str, str | None, dict[str, Any] | None]) -> None:
        async with self._changed:
            self.log.append(entry)
            self._changed.notify_all()

    async def on_connected(self) -> None:
        await asyncio.sleep(self.on_connected_delay)
        await self._record(("connected", None, None))
        if self.fail_on_connected:
            raise RuntimeError("on_connected failed")

    async def on_channel_event(self, channel_id: str | None, event: dict[str, Any]) -> None:
        gate = self.gates.get(channel_id) if channel_id is not None else None
        if gate is not None and not any(cid == channel_id for _, cid, _ in self.log):
            await self._record(("blocked", channel_id, event))
            await gate.wait()
        await self._record(("event", channel_id, event))
        if event.get("type") in self.fail_types:
            raise RuntimeError(f"handler failed on {event.get('type')}")
