"""What ``serve`` needs to run as a service, beside the calls: ``/metrics`` and ``/health`` over
HTTP (aiohttp's server, already a dependency), the event-loop lag probe, and systemd's READY and
WATCHDOG pings (callconsent/sdnotify.py).

Fail safe: the endpoints are for the operator. A port that cannot be bound is logged and the app
serves calls without them; nothing here can stop a call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web

from callconsent import metrics
from callconsent.config import MetricsConfig
from callconsent.sdnotify import Notifier

log = structlog.get_logger("callconsent.service")

#: Prometheus' text exposition format.
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: How often the event loop is probed for lag (and, under systemd, the watchdog fed at most).
PROBE_SECONDS = 0.5


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: dict[str, Any]


def health(ami_configured: bool, calls_in_flow: int, config_sha256: str) -> Health:
    """Healthy when ARI's WebSocket is up and, when AMI is configured, the AMI login too: without
    them calls go on unrecorded (``unavailable``) or without the agent bridge."""
    ari = metrics.ARI_CONNECTED.value() == 1
    ami = metrics.AMI_CONNECTED.value() == 1 if ami_configured else None
    ok = ari and ami is not False
    return Health(
        ok,
        {
            "status": "ok" if ok else "degraded",
            "ari_connected": ari,
            "ami_connected": ami,
            "calls_in_flow": calls_in_flow,
            "event_loop_lag_seconds": round(metrics.LOOP_LAG.value(), 4),
            "config_sha256": config_sha256,
        },
    )


class Endpoints:
    """The HTTP side: ``GET /metrics`` and ``GET /health`` (200 healthy, 503 degraded)."""

    def __init__(self, settings: MetricsConfig, probe: Callable[[], Health]) -> None:
        self._settings = settings
        self._probe = probe
        self._runner: web.AppRunner | None = None
        self.port: int | None = None  # the bound port (settings.port, or the one 0 chose)

    async def start(self) -> bool:
        if not self._settings.enabled:
            log.info("metrics_disabled")
            return False
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/health", self._health)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self._settings.host, self._settings.port)
        try:
            await site.start()
        except OSError as exc:
            log.error(
                "metrics_unavailable",
                host=self._settings.host,
                port=self._settings.port,
                error=str(exc),
            )
            await runner.cleanup()
            return False
        self._runner = runner
        addresses = runner.addresses  # [(host, port, ...)]: the port 0 chose, in tests
        self.port = int(addresses[0][1]) if addresses else self._settings.port
        log.info("metrics_serving", host=self._settings.host, port=self.port)
        return True

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, _request: web.Request) -> web.Response:
        return web.Response(
            body=metrics.render().encode(), headers={"Content-Type": METRICS_CONTENT_TYPE}
        )

    async def _health(self, _request: web.Request) -> web.Response:
        state = self._probe()
        return web.Response(
            text=json.dumps(state.detail),
            status=200 if state.ok else 503,
            content_type="application/json",
        )


async def heartbeat(
    stop: asyncio.Event,
    notifier: Notifier,
    calls_in_flow: Callable[[], int],
    interval: float = PROBE_SECONDS,
) -> None:
    """Until ``stop``: measure how late the loop wakes (lag), publish the calls in flow, and feed
    systemd's watchdog from the loop itself, so a blocked loop is restarted by systemd."""
    loop = asyncio.get_running_loop()
    ping_every = notifier.watchdog_interval
    step = min(interval, ping_every) if ping_every else interval
    last_ping = loop.time()
    if ping_every:
        notifier.watchdog()
    while not stop.is_set():
        started = loop.time()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), step)
        now = loop.time()
        lag = max(0.0, now - started - step) if not stop.is_set() else 0.0
        metrics.LOOP_LAG.set(lag)
        if lag > metrics.LOOP_LAG_MAX.value():
            metrics.LOOP_LAG_MAX.set(lag)
        metrics.CALLS_IN_FLOW.set(calls_in_flow())
        if ping_every and now - last_ping >= ping_every:
            notifier.watchdog()
            last_ping = now
