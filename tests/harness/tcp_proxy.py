"""A TCP proxy a test controls, between the app and ARI on loopback (fault tests, issue 11).

    with TcpProxy(listen_port=8089, target_port=8088) as proxy:
        ...                                   # the app's ari.url is http://127.0.0.1:8089
        proxy.drop_websockets(refuse_for=1.5) # cut the events websocket (and refuse it 1.5 s)
        proxy.delay_requests("1764.12", 8.0)  # answers to requests whose line holds "1764.12"
                                              # come 8 s late (until clear_delays())

    with TcpProxy(5039, 5038, drop_events={"DTMFEnd"}):  # AMI without its DTMFEnd events
        ...
    with TcpProxy(5039, 5038, ami=True) as proxy:
        proxy.delay_user_event("CallconsentAgent", 2.6)  # the next such UserEvent (and all
        ...                                             # that follows it) 2.6 s late
        proxy.delay_user_event("CallconsentAgent", 2.6, skip=1)  # the one after the next

It runs its own asyncio loop in a thread. It understands just enough HTTP to know, per
connection, whether it carries a websocket (the first request asks for ``Upgrade: websocket``)
and which request line the answer now flowing belongs to (HTTP/1.1 without pipelining, as
aiohttp sends it).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

_METHODS = (b"GET ", b"POST ", b"PUT ", b"DELETE ", b"HEAD ", b"OPTIONS ", b"PATCH ")


@dataclass(eq=False)  # hashed by identity: kept in a set
class _Conn:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    websocket: bool = False
    request_line: bytes = b""
    request_no: int = 0
    delayed_no: int = -1
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class TcpProxy:
    def __init__(
        self,
        listen_port: int,
        target_port: int,
        host: str = "127.0.0.1",
        *,
        drop_events: frozenset[str] | set[str] = frozenset(),
        ami: bool = False,
    ) -> None:
        """``drop_events``: AMI events (by ``Event:`` name) never passed on to the client, as
        for an AMI user whose classes or filters leave them out; ``ami``: the stream is AMI
        even without them (for :meth:`delay_user_event`)."""
        self._ami = ami or bool(drop_events)
        self.host = host
        self._drop_events = {f"Event: {name}".encode() for name in drop_events}
        self.events_dropped = 0
        # ``UserEvent: <name>`` line -> (seconds, how many such events pass first), once
        self._user_delays: dict[bytes, tuple[float, int]] = {}
        self.listen_port = listen_port
        self.target_port = target_port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="tcp-proxy", daemon=True)
        self._ready = threading.Event()
        self._server: asyncio.Server | None = None
        self._conns: set[_Conn] = set()
        self._refuse_ws_until = 0.0
        self._refuse_all_until = 0.0
        self._delays: dict[bytes, tuple[float, int | None]] = {}  # needle: seconds, times left
        self.delayed: list[bytes] = []  # request lines whose answers were held back
        self.websockets_dropped = 0

    # -- control (from the test's thread) -----------------------------------------------------
    def __enter__(self) -> TcpProxy:
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("the TCP proxy did not start")
        return self

    def __exit__(self, *_exc: object) -> None:
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def drop_websockets(self, refuse_for: float = 0.0) -> int:
        """Close every websocket connection at once (both sides); refuse new ones for
        ``refuse_for`` seconds. Returns how many were dropped."""
        self._refuse_ws_until = time.monotonic() + refuse_for
        return int(self._call(self._drop(websockets_only=True)))

    def drop_all(self, refuse_for: float = 0.0) -> int:
        """Close every connection (any protocol, e.g. AMI) and refuse new ones for
        ``refuse_for`` seconds. Returns how many were dropped."""
        self._refuse_all_until = time.monotonic() + refuse_for
        return int(self._call(self._drop(websockets_only=False)))

    def delay_requests(self, needle: str, seconds: float, times: int | None = None) -> None:
        """Hold back the answers to requests whose request line contains ``needle`` (only to
        the first ``times`` of them, when given)."""
        self._delays[needle.encode()] = (seconds, times)

    def delay_user_event(self, name: str, seconds: float, *, skip: int = 0) -> None:
        """Hold back the next AMI ``UserEvent`` named ``name`` (exactly) ``seconds`` before it
        reaches the client, and with it everything after it (the stream keeps its order): an
        app that reads its events late, as on a loaded machine. ``skip``: let that many such
        events pass on time first (e.g. 1: only the second agent's event of a call is late);
        counted over all the proxy's connections."""
        self._user_delays[f"UserEvent: {name}".encode()] = (seconds, skip)

    def clear_delays(self) -> None:
        self._delays.clear()
        self._user_delays.clear()

    # -- the loop ----------------------------------------------------------------------------
    def _call(self, coro: object) -> object:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)  # type: ignore[arg-type]
        return future.result(timeout=10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._accept, self.host, self.listen_port, reuse_address=True)
        )
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._conns):
            self._close(conn)

    async def _drop(self, *, websockets_only: bool) -> int:
        dropped = [c for c in self._conns if c.websocket or not websockets_only]
        for conn in dropped:
            self._close(conn)
        self.websockets_dropped += len(dropped)
        return len(dropped)

    def _close(self, conn: _Conn) -> None:
        for writer in (conn.client, conn.upstream):
            if writer is not None:
                with contextlib.suppress(OSError, RuntimeError):  # closed already
                    writer.transport.abort()
        self._conns.discard(conn)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Conn(writer)
        self._conns.add(conn)
        if time.monotonic() < self._refuse_all_until:
            self._close(conn)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            self._close(conn)
            return
        conn.upstream = up_writer
        client_to_server = asyncio.create_task(self._pump_requests(conn, reader, up_writer))
        server_to_client = asyncio.create_task(self._pump_answers(conn, up_reader, writer))
        conn.tasks = [client_to_server, server_to_client]
        await asyncio.wait(conn.tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in conn.tasks:
            task.cancel()
        self._close(conn)

    async def _pump_requests(
        self, conn: _Conn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while data := await reader.read(65536):
            if not conn.websocket and data.startswith(_METHODS):
                conn.request_line = data.split(b"\r\n", 1)[0]
                conn.request_no += 1
                if b"upgrade: websocket" in data.lower():
                    if time.monotonic() < self._refuse_ws_until:
                        return  # refused: the connection closes
                    conn.websocket = True
            writer.write(data)
            await writer.drain()

    async def _pump_answers(
        self, conn: _Conn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if self._ami:
            await self._pump_ami(reader, writer)
            return
        while data := await reader.read(65536):
            if not conn.websocket and conn.delayed_no != conn.request_no:
                for needle, (seconds, times) in list(self._delays.items()):
                    if needle in conn.request_line:
                        if times is not None:
                            if times <= 1:
                                del self._delays[needle]
                            else:
                                self._delays[needle] = (seconds, times - 1)
                        conn.delayed_no = conn.request_no
                        self.delayed.append(conn.request_line)
                        await asyncio.sleep(seconds)
                        break
            writer.write(data)
            await writer.drain()

    async def _pump_ami(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """AMI's stream line by line, without the messages whose first line names a dropped
        event (a message ends at an empty line)."""
        first, dropping = True, False
        held: list[bytes] | None = None  # a UserEvent's lines, until its end says its name
        while line := await reader.readline():
            if first and line.rstrip(b"\r\n") in self._drop_events:
                dropping = True
                self.events_dropped += 1
            if first and line.rstrip(b"\r\n") == b"Event: UserEvent" and self._user_delays:
                held = []
            first = line in (b"\r\n", b"\n")
            if held is not None:
                held.append(line)
                if first:
                    names = {x.rstrip(b"\r\n") for x in held}
                    delay = next((k for k in self._user_delays if k in names), None)
                    if delay is not None:
                        seconds, skip = self._user_delays[delay]
                        if skip > 0:
                            self._user_delays[delay] = (seconds, skip - 1)
                        else:
                            del self._user_delays[delay]
                            await asyncio.sleep(seconds)
                    writer.writelines(held)
                    await writer.drain()
                    held = None
            elif not dropping:
                writer.write(line)
                await writer.drain()
            if first:
                dropping = False


@contextlib.contextmanager
def ari_proxy(listen_port: int = 8089, target_port: int = 8088) -> Iterator[TcpProxy]:
    with TcpProxy(listen_port, target_port) as proxy:
        yield proxy
