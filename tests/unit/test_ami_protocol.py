"""The AMI protocol under panoramisk's manager when a connection dies at once (as uvloop
reports it: lost before the manager attaches itself): the manager still hears of the loss, so it
reconnects, and an action sent on the dead connection is neither written nor logged."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from callconsent._ami_protocol import GuardedProtocol


class Transport:
    def __init__(self, *, closing: bool = False) -> None:
        self.closing = closing
        self.written: list[bytes] = []

    def is_closing(self) -> bool:
        return self.closing

    def write(self, data: bytes) -> None:
        if self.closing:
            raise RuntimeError("unable to perform operation on a closed transport")
        self.written.append(data)

    def close(self) -> None:
        self.closing = True


class Manager:
    forgetable_actions: tuple[str, ...] = ()
    awaiting_actions: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.lost: list[Exception | None] = []

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.append(exc)


def protocol(transport: Transport) -> GuardedProtocol:
    proto = GuardedProtocol(lambda message: None)
    proto.connection_made(transport)
    return proto


async def test_a_connection_lost_before_the_manager_attaches_reaches_it_when_it_does() -> None:
    proto = protocol(Transport())
    reset = ConnectionResetError(104, "Connection reset by peer")
    proto.connection_lost(reset)  # no AttributeError on factory None
    manager = Manager()
    proto.factory = manager
    await asyncio.sleep(0)
    assert manager.lost == [reset]


async def test_a_connection_lost_after_the_manager_attached_reaches_it_once() -> None:
    proto = protocol(Transport())
    manager = Manager()
    proto.factory = manager
    proto.connection_lost(None)
    await asyncio.sleep(0)
    assert manager.lost == [None]


async def test_an_action_on_a_dead_connection_is_not_written_nor_logged_with_its_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport = Transport()
    proto = protocol(transport)
    proto.connection_lost(ConnectionResetError(104, "reset"))
    proto.factory = Manager()
    transport.closing = True
    login: dict[str, Any] = {"Action": "Login", "Username": "callconsent", "Secret": "s3cret-x"}
    with caplog.at_level(logging.DEBUG):
        future = proto.send(login)
    assert transport.written == []
    assert not future.done()  # the manager reconnects and logs in anew
    assert "s3cret-x" not in caplog.text


async def test_an_action_on_a_live_connection_is_written() -> None:
    transport = Transport()
    proto = protocol(transport)
    proto.factory = Manager()
    proto.send({"Action": "Ping"})
    assert b"Action: Ping" in b"".join(transport.written)
