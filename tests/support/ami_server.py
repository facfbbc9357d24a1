"""A fake Asterisk AMI server on 127.0.0.1 for unit tests: greets, answers Login, Ping, DBGet,
Getvar and StopMixMonitor as Asterisk 22 does, records every action, and sends whatever raw
bytes a test pushes (captured events, forged ones, split at any byte)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class FakeAmiServer:
    astdb: dict[tuple[str, str], str] = field(default_factory=dict)
    actions: list[dict[str, str]] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)
    logged_in: asyncio.Event = field(default_factory=asyncio.Event)
    #: CoreShowChannels' items, each the raw header lines of one CoreShowChannel event (a test
    #: may put caller text with line breaks in them, as Asterisk does)
    channels: list[list[str]] = field(default_factory=list)
    #: Getvar's answers: channel (name or uniqueid) -> variable -> value; any other channel
    #: gets Asterisk 22's "No such channel"
    channel_vars: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)

    async def close(self) -> None:
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def push(self, data: bytes) -> None:
        """Send ``data`` as is to every connected client."""
        for writer in self._writers:
            writer.write(data)
            await writer.drain()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        try:
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                action = dict(
                    line.split(": ", 1)
                    for line in raw.decode().strip().split("\r\n")
                    if ": " in line
                )
                self.actions.append(action)
                writer.write(self._answer(action))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return

    def _answer(self, action: dict[str, str]) -> bytes:
        name, aid = action.get("Action", "").lower(), action.get("ActionID", "")
        if name == "login":
            self.logged_in.set()
            return _msg("Response: Success", f"ActionID: {aid}", "Message: Authentication accepted")
        if name == "dbget":
            value = self.astdb.get((action["Family"], action["Key"]))
            if value is None:
                return _msg(
                    "Response: Error", f"ActionID: {aid}", "Message: Database entry not found"
                )
            return (
                _msg(
                    "Response: Success",
                    f"ActionID: {aid}",
                    "EventList: start",
                    "Message: Result will follow",
                )
                + _msg(
                    "Event: DBGetResponse",
                    f"Family: {action['Family']}",
                    f"Key: {action['Key']}",
                    f"Val: {value}",
                    f"ActionID: {aid}",
                )
                + _msg(
                    "Event: DBGetComplete",
                    f"ActionID: {aid}",
                    "EventList: Complete",
                    "ListItems: 1",
                )
            )
        if name == "getvar":  # as Asterisk 22 answers (measured in the lab)
            found = self.channel_vars.get(action.get("Channel", ""))
            if found is None:
                return _msg("Response: Error", f"ActionID: {aid}", "Message: No such channel")
            variable = action.get("Variable", "")
            return _msg(
                "Response: Success",
                f"ActionID: {aid}",
                f"Variable: {variable}",
                f"Value: {found.get(variable, '')}",
            )
        if name == "coreshowchannels":
            items = b"".join(
                _msg("Event: CoreShowChannel", f"ActionID: {aid}", *lines)
                for lines in self.channels
            )
            return (
                _msg(
                    "Response: Success",
                    f"ActionID: {aid}",
                    "EventList: start",
                    "Message: Channels will follow",
                )
                + items
                + _msg(
                    "Event: CoreShowChannelsComplete",
                    f"ActionID: {aid}",
                    "EventList: Complete",
                    f"ListItems: {len(self.channels)}",
                )
            )
        return _msg("Response: Success", f"ActionID: {aid}", "Message: done")


def _msg(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
