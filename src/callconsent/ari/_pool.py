"""Keep-alive HTTP/1.1 connections to Asterisk for the ARI REST calls, on asyncio Protocols.

One request in flight per connection (Asterisk's HTTP server keeps connections alive but does
not pipeline). A request takes an idle connection, or opens one while fewer than
``max_connections`` are open, or waits its turn. A connection the client has left idle longer
than ``idle_limit`` is closed instead of reused: Asterisk closes a connection that waits longer
than its ``session_keep_alive`` (15 s by default; 15.0 s measured on 22.10) for the next
request, and a request sent just as it does so would be lost. A request is never retried once
any byte of it may have been sent. Asterisk 22.10 keeps the connection after 401 and 404
answers too (measured); an answer with ``Connection: close`` retires it.
"""

from __future__ import annotations

import asyncio
import collections
import ssl as ssl_module
from typing import Final, cast

from ._http import HttpProtocolError, Response, ResponseParser

#: Seconds a connection may sit idle before it is retired (Asterisk's keep-alive is 15 s).
DEFAULT_IDLE_LIMIT: Final = 5.0
#: Open connections at most. Asterisk's ``sessionlimit`` (100 by default) counts each one and
#: the events websocket; a request Asterisk holds (a channel busy) holds its connection, so
#: enough are allowed that a few slow calls never queue the others' requests behind them.
DEFAULT_MAX_CONNECTIONS: Final = 32


class HttpTransportError(Exception):
    """No (complete, understood) answer arrived: refused, reset, closed early, garbage."""


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection: sends one request, collects one answer at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, generation: int) -> None:
        self.loop = loop
        self.generation = generation
        self._transport: asyncio.Transport | None = None
        self._parser: ResponseParser | None = None
        self._waiter: asyncio.Future[Response] | None = None
        self.closed = False
        #: Loop time when the connection last became idle.
        self.idle_since = loop.time()

    # --- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses (no isinstance check)
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        waiter, parser = self._waiter, self._parser
        if waiter is None or parser is None or waiter.done():
            self.close()  # the server spoke out of turn: nothing it says now can be trusted
            return
        try:
            response = parser.feed(data)
        except HttpProtocolError as exc:
            self.close()
            waiter.set_exception(HttpTransportError(str(exc)))
            return
        if response is not None:
            self._parser = None
            waiter.set_result(response)

    def eof_received(self) -> bool:
        self._fail("connection closed by Asterisk")
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(f"connection lost ({type(exc).__name__})" if exc else "connection closed")

    # --- use ---------------------------------------------------------------------------------

    def _fail(self, reason: str) -> None:
        waiter, parser = self._waiter, self._parser
        if waiter is not None and not waiter.done():
            early = parser is not None and parser.started
            detail = f"{reason} during the answer" if early else f"{reason} before any answer"
            waiter.set_exception(HttpTransportError(detail))

    async def exchange(self, request: bytes) -> Response:
        """Send ``request`` and wait for its answer."""
        transport = self._transport
        if transport is None or self.closed or transport.is_closing():
            raise HttpTransportError("connection closed before the request was sent")
        self._parser = ResponseParser()
        waiter: asyncio.Future[Response] = self.loop.create_future()
        self._waiter = waiter
        transport.write(request)
        try:
            return await waiter
        finally:
            self._waiter = None

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()


class HttpPool:
    """Connections to one ``host:port`` (TLS when ``ssl`` is given)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ssl: ssl_module.SSLContext | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        idle_limit: float = DEFAULT_IDLE_LIMIT,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be >= 1")
        if idle_limit <= 0:
            raise ValueError("idle_limit must be > 0")
        self._host = host
        self._port = port
        self._ssl = ssl
        self._max = max_connections
        self._idle_limit = idle_limit
        self._idle: collections.deque[_Connection] = collections.deque()
        #: Connections open or being opened (each holds one of the ``max_connections`` slots).
        self._open = 0
        #: Requests waiting for a connection, first come first served: each gets a connection,
        #: or ``None`` (the slot of one that was closed: open a new one).
        self._waiters: collections.deque[asyncio.Future[_Connection | None]] = collections.deque()
        #: Bumped by :meth:`close`: a connection of an older generation is not reused.
        self._generation = 0
        #: Connections opened in total (for tests and benchmarks).
        self.opened = 0

    @property
    def open_connections(self) -> int:
        return self._open

    async def request(self, request: bytes) -> Response:
        """Send one request on a pooled connection and return the answer.

        Raises :class:`HttpTransportError` when no understood answer arrived (or OSError from
        connecting). On any failure, timeout or cancellation the connection is closed, never
        reused: its state is unknown."""
        connection = await self._acquire()
        healthy = False
        try:
            response = await connection.exchange(request)
            healthy = not response.close
            return response
        finally:
            self._release(connection, healthy)

    async def close(self) -> None:
        """Close every idle connection; those in use close when their request ends. The pool
        can be used again afterwards (it opens new connections)."""
        self._generation += 1
        while self._idle:
            self._idle.pop().close()
            self._open -= 1

    # --- connections -------------------------------------------------------------------------

    async def _acquire(self) -> _Connection:
        loop = asyncio.get_running_loop()
        now = loop.time()
        while self._idle:
            connection = self._idle.pop()  # the most recently used one
            if not connection.closed and now - connection.idle_since <= self._idle_limit:
                return connection
            connection.close()  # closed by Asterisk, or idle too long to trust
            self._open -= 1
        if self._open < self._max:
            self._open += 1
            return await self._connect(loop)
        waiter: asyncio.Future[_Connection | None] = loop.create_future()
        self._waiters.append(waiter)
        try:
            handed = await waiter
        except asyncio.CancelledError:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            elif waiter.done() and not waiter.cancelled():
                self._pass_on(waiter.result())  # handed over just before the cancel
            raise
        return handed if handed is not None else await self._connect(loop)

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        """Open a connection in a slot already counted in ``_open``."""
        connection: _Connection | None = None
        try:
            _, connection = await loop.create_connection(
                lambda: _Connection(loop, self._generation),
                self._host,
                self._port,
                ssl=self._ssl,
                server_hostname=self._host if self._ssl is not None else None,
            )
        finally:
            if connection is None:  # refused, timed out or cancelled: the slot is free again
                self._pass_on(None)
        self.opened += 1
        return connection

    def _release(self, connection: _Connection, healthy: bool) -> None:
        if healthy and not connection.closed and connection.generation == self._generation:
            connection.idle_since = connection.loop.time()
            self._pass_on(connection)
        else:
            connection.close()
            self._pass_on(None)

    def _pass_on(self, connection: _Connection | None) -> None:
        """Give a connection, or (``None``) the slot of a closed one, to the first waiter;
        with nobody waiting the connection goes idle, the slot is freed."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        if connection is None:
            self._open -= 1
        else:
            self._idle.append(connection)
