"""serve's service side: /metrics and /health over HTTP, the event-loop lag probe, and systemd's
notify protocol (READY, WATCHDOG) over a real datagram socket."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from callconsent import metrics, service
from callconsent.config import MetricsConfig
from callconsent.sdnotify import Notifier


@pytest.fixture
def connected() -> Iterator[None]:
    ari, ami = metrics.ARI_CONNECTED.value(), metrics.AMI_CONNECTED.value()
    yield
    metrics.ARI_CONNECTED.set(ari)
    metrics.AMI_CONNECTED.set(ami)


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    yield sock, path
    sock.close()


def received(sock: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except BlockingIOError:
            return out


async def get(port: int, path: str) -> tuple[int, str, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}{path}") as r,
    ):
        return r.status, r.headers["Content-Type"], await r.text()


async def test_metrics_endpoint_serves_prometheus_text_on_loopback(connected: None) -> None:
    endpoints = service.Endpoints(MetricsConfig(port=0), lambda: service.health(False, 0, "abc"))
    assert await endpoints.start()
    try:
        assert endpoints.port
        status, ctype, body = await get(endpoints.port, "/metrics")
    finally:
        await endpoints.stop()
    assert status == 200
    assert ctype.startswith("text/plain; version=0.0.4")
    assert "# TYPE callconsent_calls_total counter" in body


async def test_health_is_503_while_ari_is_down_and_200_once_connected(connected: None) -> None:
    endpoints = service.Endpoints(MetricsConfig(port=0), lambda: service.health(True, 2, "abc"))
    assert await endpoints.start()
    assert endpoints.port
    try:
        metrics.ARI_CONNECTED.set(0)
        metrics.AMI_CONNECTED.set(1)
        status, _, body = await get(endpoints.port, "/health")
        assert status == 503
        assert json.loads(body)["status"] == "degraded"
        metrics.ARI_CONNECTED.set(1)
        status, ctype, body = await get(endpoints.port, "/health")
        assert status == 200 and ctype.startswith("application/json")
        doc = json.loads(body)
        assert doc["ari_connected"] is True and doc["ami_connected"] is True
        assert doc["calls_in_flow"] == 2 and doc["config_sha256"] == "abc"
        metrics.AMI_CONNECTED.set(0)  # AMI configured but logged out: the agent bridge is off
        status, _, _ = await get(endpoints.port, "/health")
        assert status == 503
    finally:
        await endpoints.stop()


def test_health_without_ami_configured_needs_only_ari(connected: None) -> None:
    metrics.ARI_CONNECTED.set(1)
    metrics.AMI_CONNECTED.set(0)
    state = service.health(False, 0, "x")
    assert state.ok and state.detail["ami_connected"] is None


async def test_disabled_endpoints_bind_nothing() -> None:
    endpoints = service.Endpoints(
        MetricsConfig(enabled=False, port=0), lambda: service.health(False, 0, "")
    )
    assert await endpoints.start() is False
    assert endpoints.port is None


async def test_a_port_in_use_is_logged_and_the_app_goes_on_without_endpoints() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        port = holder.getsockname()[1]
        endpoints = service.Endpoints(
            MetricsConfig(port=port), lambda: service.health(False, 0, "")
        )
        assert await endpoints.start() is False  # no exception: calls must not depend on it
    finally:
        holder.close()


async def test_heartbeat_measures_a_blocked_event_loop_as_lag() -> None:
    stop = asyncio.Event()
    metrics.LOOP_LAG_MAX.set(0)
    task = asyncio.create_task(service.heartbeat(stop, Notifier({}), lambda: 3, interval=0.05))
    await asyncio.sleep(0.01)
    time.sleep(0.3)  # noqa: ASYNC251  # on purpose: a blocked loop makes every timer late
    await asyncio.sleep(0.12)
    stop.set()
    await task
    assert metrics.LOOP_LAG_MAX.value() >= 0.2
    assert metrics.CALLS_IN_FLOW.value() == 3


async def test_heartbeat_feeds_systemds_watchdog_at_half_its_interval(
    notify_socket: tuple[socket.socket, str],
) -> None:
    sock, path = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"})  # 0.2 s
    assert notifier.watchdog_interval == pytest.approx(0.1)
    stop = asyncio.Event()
    task = asyncio.create_task(service.heartbeat(stop, notifier, lambda: 0))
    await asyncio.sleep(0.45)
    stop.set()
    await task
    pings = [m for m in received(sock) if m == "WATCHDOG=1"]
    assert 2 <= len(pings) <= 7  # ~5: at start, then every 0.1 s (fewer on a loaded machine)


def test_ready_sends_ready_and_status_to_the_notify_socket(
    notify_socket: tuple[socket.socket, str],
) -> None:
    sock, path = notify_socket
    assert Notifier({"NOTIFY_SOCKET": path}).ready("serving")
    assert received(sock) == ["READY=1\nSTATUS=serving"]


def test_reloading_carries_the_monotonic_time(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    Notifier({"NOTIFY_SOCKET": path}).reloading()
    (message,) = received(sock)
    head, stamp = message.split("\n")
    assert head == "RELOADING=1" and int(stamp.removeprefix("MONOTONIC_USEC=")) > 0


def test_abstract_namespace_socket_is_reached_by_its_at_sign_name() -> None:
    name = f"callconsent-test-{time.monotonic_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.setblocking(False)
    try:
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).watchdog()
        assert received(sock) == ["WATCHDOG=1"]
    finally:
        sock.close()


def test_outside_systemd_notify_does_nothing() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.ready("serving") is False
    assert notifier.watchdog_interval is None


def test_a_notify_socket_that_is_gone_is_logged_not_raised(tmp_path: Path) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert notifier.ready("serving") is False
    assert notifier.watchdog() is False


def test_watchdog_meant_for_another_process_is_ignored() -> None:
    notifier = Notifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"})
    assert notifier.watchdog_interval is None
