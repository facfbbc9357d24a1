"""A hardened FastAGI server on asyncio streams.

- Only clients from the allowlist are served; any other is closed at once and logged.
- The request header has a size limit and a time limit; a client that sends half a header and
  goes (or sends nothing) costs one short-lived task: every read ends at EOF, never spins.
- Each connection is its own task: a slow or stuck session never blocks another.
- After the header, the first command re-synchronises the stream on a random token, so lines a
  caller smuggled into the header (caller ID with line breaks) can never be read as replies.
- ``HANGUP`` lines are noted, ``511`` (dead channel) and EOF raise :class:`AgiHungUp`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

import structlog

from callconsent.agi.wire import (
    HANGUP_LINE,
    AgiGone,
    AgiHungUp,
    AgiProtocolError,
    AgiReply,
    AgiRequest,
    command,
    continues,
    parse_header,
    parse_reply,
)

__all__ = ["AgiServer", "AgiSession"]

log = structlog.get_logger("callconsent.agi")

HEADER_TIMEOUT_SECONDS: Final = 5.0
MAX_HEADER_BYTES: Final = 8192
MAX_LINE_BYTES: Final = 8192
#: lines read while looking for the sync token before the session is given up
_MAX_SYNC_LINES: Final = 400  # caller number and name (<= 79 characters each) + the header
_MAX_REPLY_LINES: Final = 200
_LOG_EVERY: Final = 1.0


class AgiSession:
    """One FastAGI connection after its header: send commands, read their replies."""

    def __init__(
        self,
        request: AgiRequest,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        token: Callable[[], str] = lambda: secrets.token_hex(16),
    ) -> None:
        self.request = request
        self._reader = reader
        self._writer = writer
        self._token = token
        self._synced = False
        self.hung_up = False  # Asterisk sent HANGUP
        self.closed = False
        self._broken: str | None = None  # why we closed it after an error
        #: lines read before the sync token's reply (what caller text added to the header)
        self.stray_lines = 0

    async def send(self, name: str, *args: str, within: float = 10.0) -> AgiReply:
        """Send one command and return its reply (within ``within`` seconds). Raises :class:`AgiHungUp` (511, or the
        connection closed: :class:`AgiGone`), ``TimeoutError`` and :class:`AgiProtocolError`;
        after a timeout or a protocol error the session is closed (replies would be out of step).
        """
        if self._broken is not None:
            raise AgiProtocolError(f"session closed after an error: {self._broken}")
        if self.closed:
            raise AgiGone("session closed")
        try:
            async with asyncio.timeout(within):
                if not self._synced:
                    await self._sync()
                await self._write(command(name, *args))
                reply = parse_reply(await self._read_reply())
        except (TimeoutError, AgiProtocolError) as exc:
            self._broken = str(exc) or "timeout"
            self.close()
            raise
        if reply.dead_channel:
            self.hung_up = True
            raise AgiHungUp(reply.text)
        return reply

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._writer.close()

    async def _write(self, line: str) -> None:
        try:
            self._writer.write(line.encode())
            await self._writer.drain()
        except ConnectionError as exc:
            self.close()
            raise AgiGone(str(exc)) from None

    async def _readline(self) -> str:
        try:
            raw = await self._reader.readline()
        except ConnectionError as exc:
            self.close()
            raise AgiGone(str(exc)) from None
        except ValueError:  # a line over the stream limit
            self.close()
            raise AgiProtocolError("reply line too long") from None
        if not raw.endswith(b"\n"):  # EOF, maybe in the middle of a line
            self.close()
            raise AgiGone("connection closed")
        return raw.decode("utf-8", errors="replace").rstrip("\r\n")

    async def _read_reply(self) -> list[str]:
        """One reply's lines: ``HANGUP`` notices before it are noted and skipped; a ``NNN-``
        line opens a multi-line reply that ends at the line starting ``NNN ``."""
        line = await self._readline()
        while line == HANGUP_LINE:
            self.hung_up = True
            line = await self._readline()
        lines = [line]
        if not continues(line):
            return lines
        closing = line[:3] + " "
        while len(lines) < _MAX_REPLY_LINES:
            line = await self._readline()
            lines.append(line)
            if line.startswith(closing):
                return lines
        raise AgiProtocolError("reply too long")

    async def _sync(self) -> None:
        """Read up to the reply of a command only we can have the answer to: every line before
        it came from the header (caller text) and is skipped."""
        self._synced = True
        token = self._token()
        await self._write(command("GET FULL VARIABLE", token))
        expected = f"200 result=1 ({token})"
        for _ in range(_MAX_SYNC_LINES):
            line = await self._readline()
            if line == expected:
                return
            if line == HANGUP_LINE:
                self.hung_up = True
            elif line.startswith("511 "):
                self.hung_up = True
                raise AgiHungUp(line)
            else:
                self.stray_lines += 1
        self.close()
        raise AgiProtocolError("no reply to the sync command")


Handler = Callable[[AgiSession], Awaitable[None]]


class AgiServer:
    """Accepts FastAGI connections and runs ``handler(session)`` for each, concurrently."""

    def __init__(
        self,
        handler: Handler,
        *,
        bind: str,
        port: int,
        allow: Sequence[str],
        header_timeout: float = HEADER_TIMEOUT_SECONDS,
        max_header_bytes: int = MAX_HEADER_BYTES,
    ) -> None:
        self._handler = handler
        self._bind = bind
        self._port = port
        self._allow = tuple(ipaddress.ip_network(a, strict=False) for a in allow)
        self._header_timeout = header_timeout
        self._max_header = max_header_bytes
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self.refused = 0  # connections from outside the allowlist
        self._refusal_logged: dict[str, float] = {}
        self.dropped = 0  # connections that never sent a complete header in time

    @property
    def port(self) -> int:
        """The bound port (the configured one, or the one the OS chose for port 0)."""
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def connections(self) -> int:
        return len(self._connections)

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self._bind, self._port, limit=MAX_LINE_BYTES, reuse_address=True
        )
        log.info("agi_listening", bind=self._bind, port=self.port)

    async def close(self, grace: float = 10.0) -> None:
        """Stop accepting, then wait (up to ``grace`` seconds) for the sessions to end."""
        if self._server is None:
            return
        self._server.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self._server.wait_closed()
        for writer in list(self._connections):
            writer.close()
        self._server = None

    def _allowed(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if address.version == 6 and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self._allow)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        host = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if not self._allowed(host):
            self.refused += 1
            now = time.monotonic()
            if len(self._refusal_logged) > 1024:
                self._refusal_logged.clear()
            if now - self._refusal_logged.get(host, -_LOG_EVERY) >= _LOG_EVERY:
                self._refusal_logged[host] = now  # a flood is logged once a second per address
                log.warning(
                    "agi_refused", peer=host, reason="not in agi.allow", refused=self.refused
                )
            writer.transport.abort()
            return
        self._connections.add(writer)
        try:
            try:
                request = await self._read_header(reader)
            except (TimeoutError, AgiProtocolError, AgiGone) as exc:
                self.dropped += 1  # debug: a client that goes mid-header costs no log line
                log.debug("agi_header_dropped", peer=host, reason=str(exc) or type(exc).__name__)
                return
            session = AgiSession(request, reader, writer)
            try:
                await self._handler(session)
            finally:
                session.close()
        finally:
            self._connections.discard(writer)
            writer.close()

    async def _read_header(self, reader: asyncio.StreamReader) -> AgiRequest:
        lines: list[str] = []
        size = 0
        async with asyncio.timeout(self._header_timeout):
            while True:
                try:
                    raw = await reader.readline()
                except ValueError:
                    raise AgiProtocolError("header line too long") from None
                except ConnectionError as exc:
                    raise AgiGone(str(exc)) from None
                if not raw.endswith(b"\n"):
                    raise AgiGone("closed during the header")
                size += len(raw)
                if size > self._max_header:
                    raise AgiProtocolError("header too large")
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if not line:
                    return parse_header(lines)
                lines.append(line)
