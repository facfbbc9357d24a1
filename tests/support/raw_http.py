"""A tiny HTTP server on raw asyncio for tests of the ARI REST connection pool.

It reads requests framed by ``Content-Length`` and answers each as its ``script`` says: an
Asterisk-like answer (the default), bytes of the test's choosing, a close without answer, or
nothing at all (a stall). It counts connections, requests and the most connections open at once.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

OK = b"HTTP/1.1 200 OK\r\nServer: Asterisk\r\nContent-Length: 2\r\n\r\n{}"
NO_CONTENT = b"HTTP/1.1 204 No Content\r\nServer: Asterisk\r\nContent-Length: 0\r\n\r\n"


@dataclass(frozen=True)
class Answer:
    """Send ``data`` (may be empty), then close the connection if ``close``; ``stall``: send
    nothing and keep the connection open."""

    data: bytes = OK
    close: bool = False
    stall: bool = False


CLOSE = Answer(b"", close=True)
STALL = Answer(b"", stall=True)


def take_request(buffer: bytes) -> tuple[bytes, bytes] | None:
    """The first whole request in ``buffer`` (head and ``Content-Length`` body) and what follows
    it, or None while it is incomplete."""
    head, found, rest = buffer.partition(b"\r\n\r\n")
    if not found:
        return None
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if len(rest) < length:
        return None
    return head + b"\r\n\r\n" + rest[:length], rest[length:]


class _Conn(asyncio.Protocol):
    def __init__(self, server: RawHttpServer) -> None:
        self.server = server
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are no subclasses
        self.server.connections += 1
        self.server.open_now += 1
        self.server.most_open = max(self.server.most_open, self.server.open_now)
        self.server.transports.append(self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.open_now -= 1

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        while (taken := take_request(self.buffer)) is not None:
            request, self.buffer = taken
            self.server.requests.append(request)
            answer = self.server.script(len(self.server.requests) - 1)
            if answer.stall:
                continue
            if answer.data:
                self.transport.write(answer.data)
            if answer.close:
                self.transport.close()
                return


class RawHttpServer:
    def __init__(
        self, script: Callable[[int], Answer] | None = None, *, tls: ssl.SSLContext | None = None
    ) -> None:
        self._tls = tls
        #: What to do with request number ``n`` (0-based, counted over all connections).
        self.script: Callable[[int], Answer] = script or (lambda n: Answer())
        self.requests: list[bytes] = []
        self.connections = 0
        self.open_now = 0
        self.most_open = 0
        self.transports: list[asyncio.Transport] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> RawHttpServer:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Conn(self), "127.0.0.1", 0, ssl=self._tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for transport in self.transports:
            transport.close()
        await self._server.wait_closed()

    def push(self, data: bytes) -> None:
        """Send ``data`` unasked on every open connection."""
        for transport in self.transports:
            if not transport.is_closing():
                transport.write(data)
