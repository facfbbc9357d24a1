"""The events websocket: connect, on_connected, reconnect with backoff, stop, bad frames."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import structlog

from callconsent.ari import AriClient

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `tests.support` without a conftest
from tests.support import FakeAriServer, RecordingSink, channel_event


@pytest.fixture
async def server() -> AsyncIterator[FakeAriServer]:
    async with FakeAriServer() as fake:
        yield fake


@pytest.fixture
async def client(server: FakeAriServer) -> AsyncIterator[AriClient]:
    ari = AriClient(
        server.base_url,
        "asterisk",
        "secret",
        "callconsent",
        backoff_initial=0.02,
        backoff_max=0.2,
        request_timeout=1.0,
    )
    yield ari
    await ari.stop()
    await ari.close()


@asynccontextmanager
async def running(client: AriClient, sink: RecordingSink) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(client.run(sink))
    try:
        yield task
    finally:
        await client.stop()
        assert task.done() and task.exception() is None


def entries(
    logs: Sequence[Mapping[str, Any]], event: str, level: str | None = None
) -> list[Mapping[str, Any]]:
    return [e for e in logs if e["event"] == event and (level is None or e["log_level"] == level)]


async def test_connects_to_the_app_without_subscribe_all(
    server: FakeAriServer, client: AriClient
) -> None:
    sink = RecordingSink()
    async with running(client, sink):
        await server.wait_connected()
    assert server.ws_queries == [{"app": "callconsent", "subscribeAll": "false"}]
    assert server.unauthorized == 0


async def test_on_connected_called_before_first_event(
    server: FakeAriServer, client: AriClient
) -> None:
    sink = RecordingSink()
    sink.on_connected_delay = 0.05
    async with running(client, sink):
        await server.wait_connected()
        await server.send_event(channel_event("StasisStart", "c1"))
        await sink.wait_for(lambda: sink.types("c1") == ["StasisStart"])
    assert [kind for kind, _, _ in sink.log] == ["connected", "event"]


async def test_on_connected_called_after_each_reconnect(
    server: FakeAriServer, client: AriClient
) -> None:
    sink = RecordingSink()
    async with running(client, sink):
        for count in (1, 2, 3):
            await server.wait_connected(count)
            await sink.wait_connected(count)
            await server.send_event(channel_event("ChannelDtmfReceived", "c1", digit=str(count)))
            await sink.wait_events("c1", count)
            await server.drop_websockets()
    assert [e["digit"] for e in sink.events("c1")] == ["1", "2", "3"]
    kinds = [kind for kind, _, _ in sink.log]
    assert kinds == ["connected", "event"] * 3


async def test_reconnects_with_backoff_after_server_restart_without_spinning(
    server: FakeAriServer, client: AriClient
) -> None:
    sink = RecordingSink()
    with structlog.testing.capture_logs() as logs:
        async with running(client, sink):
            await server.wait_connected()
            await server.stop_listening()  # Asterisk down: connections refused
            cpu, wall = time.process_time(), time.monotonic()
            await asyncio.sleep(0.6)
            cpu, wall = time.process_time() - cpu, time.monotonic() - wall
            await server.start_listening()
            await server.wait_connected(2)
            await sink.wait_for(lambda: sink.connected == 2)
    # Delays 0.01-0.02, 0.02-0.04, ... capped at 0.1-0.2 s: about 8 attempts in 0.6 s at most.
    attempts = max(e["attempt"] for e in entries(logs, "ari_reconnect_scheduled"))
    assert 2 <= attempts <= 12
    assert cpu < 0.5 * wall  # a spinning client burns a whole core
    assert len(entries(logs, "ari_reconnect_scheduled", "warning")) == 1


async def test_refused_handshake_is_retried_with_growing_delays(
    server: FakeAriServer, client: AriClient
) -> None:
    server.refuse_websocket = True
    sink = RecordingSink()
    async with running(client, sink):
        await asyncio.sleep(0.6)
        refused = server.ws_attempts
        server.refuse_websocket = False
        await server.wait_connected()
        await sink.wait_for(lambda: sink.connected == 1)
    assert 2 <= refused <= 12


async def test_one_warning_per_failure_streak_and_one_info_on_recovery(
    server: FakeAriServer, client: AriClient
) -> None:
    server.refuse_websocket = True
    sink = RecordingSink()
    with structlog.testing.capture_logs() as logs:
        async with running(client, sink):
            await asyncio.sleep(0.3)
            server.refuse_websocket = False
            await server.wait_connected()
            await sink.wait_for(lambda: sink.connected == 1)
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert [e["event"] for e in warnings] == ["ari_reconnect_scheduled"]
    assert warnings[0]["attempt"] == 1 and "503" in warnings[0]["reason"]
    assert 0 < warnings[0]["delay_s"] <= 0.02
    (connected,) = entries(logs, "ari_connected", "info")
    assert connected["after_attempts"] >= 2


async def test_malformed_frame_is_skipped(server: FakeAriServer, client: AriClient) -> None:
    sink = RecordingSink()
    with structlog.testing.capture_logs() as logs:
        async with running(client, sink):
            await server.wait_connected()
            for frame in ["not json", "[1, 2]", '{"no": "type"}', '{"type": 3}', "{"]:
                await server.send_raw(frame)
            await server.send_event(channel_event("StasisStart", "c1"))
            await sink.wait_for(lambda: sink.types("c1") == ["StasisStart"])
    assert server.ws_connections == 1
    assert len(entries(logs, "ari_malformed_frame", "warning")) == 1
    assert not entries(logs, "ari_reconnect_scheduled")


async def test_application_replaced_logs_error_and_reconnects_with_growing_backoff(
    server: FakeAriServer, client: AriClient
) -> None:
    sink = RecordingSink()
    with structlog.testing.capture_logs() as logs:
        async with running(client, sink):
            for count in (1, 2, 3):
                await server.wait_connected(count)
                await sink.wait_connected(count)
                await server.replace_application()
            await sink.wait_for(lambda: sink.connected == 4)
    assert len(entries(logs, "ari_application_replaced", "error")) == 3
    # The streak is not reset by a takeover, so each reconnect waits longer than the last.
    assert [e["after_attempts"] for e in entries(logs, "ari_connected")] == [0, 1, 2, 3]


async def test_on_connected_failure_is_logged_and_events_still_flow(
    server: FakeAriServer, client: AriClient
) -> None:
    sink = RecordingSink()
    sink.fail_on_connected = True
    with structlog.testing.capture_logs() as logs:
        async with running(client, sink):
            await server.wait_connected()
            await server.send_event(channel_event("StasisStart", "c1"))
            await sink.wait_for(lambda: sink.types("c1") == ["StasisStart"])
    assert entries(logs, "ari_on_connected_failed", "error")
    assert server.ws_connections == 1


async def test_stop_during_backoff_returns_promptly(server: FakeAriServer) -> None:
    await server.stop_listening()
    ari = AriClient(server.base_url, "asterisk", "secret", "callconsent", backoff_initial=30.0)
    task = asyncio.create_task(ari.run(RecordingSink()))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await ari.stop()
    assert time.monotonic() - started < 0.5
    assert task.done() and task.exception() is None
    await ari.close()


async def test_stop_while_connected_ends_run_and_cancels_handlers(
    server: FakeAriServer, client: AriClient
) -> None:
    sink = RecordingSink()
    sink.gates["c1"] = asyncio.Event()  # never set: the handler is still awaiting at stop()
    task = asyncio.create_task(client.run(sink))
    await server.wait_connected()
    await server.send_event(channel_event("StasisStart", "c1"))
    await sink.wait_for(lambda: any(kind == "blocked" for kind, _, _ in sink.log))
    await client.stop()
    assert task.done() and task.exception() is None
    assert client.active_channels == frozenset()
    await asyncio.sleep(0.05)
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("ari-")]


async def test_cancelling_run_propagates_cancelled_error(
    server: FakeAriServer, client: AriClient
) -> None:
    task = asyncio.create_task(client.run(RecordingSink()))
    await server.wait_connected()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("ari-")]


async def test_run_twice_at_once_is_refused(server: FakeAriServer, client: AriClient) -> None:
    async with running(client, RecordingSink()):
        await server.wait_connected()
        with pytest.raises(RuntimeError, match="already running"):
            await client.run(RecordingSink())


async def test_rest_still_works_while_events_run(server: FakeAriServer, client: AriClient) -> None:
    server.add_channel("c1")
    async with running(client, RecordingSink()):
        await server.wait_connected()
        await client.answer("c1")
    assert server.calls_to("POST", "channels", "c1", "answer")


async def test_stop_before_run_starts_makes_run_return_at_once(server: FakeAriServer) -> None:
    ari = AriClient(server.base_url, "asterisk", "secret", "callconsent")
    task = asyncio.create_task(ari.run(RecordingSink()))
    await ari.stop()  # the task has not started yet
    async with asyncio.timeout(1):
        await task
    assert server.ws_attempts == 0
    await ari.close()


async def test_deeply_nested_frame_is_skipped_like_any_malformed_frame(
    server: FakeAriServer, client: AriClient
) -> None:
    sink = RecordingSink()
    async with running(client, sink):
        await server.wait_connected()
        await server.send_raw("[" * 100_000 + "]" * 100_000)
        await server.send_event(channel_event("StasisStart", "c1"))
        await sink.wait_events("c1", 1)
    assert server.ws_connections == 1
