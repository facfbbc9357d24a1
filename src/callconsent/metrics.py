"""The live app's counters, in Prometheus' text exposition format (version 0.0.4).

A small registry of our own rather than prometheus_client: a handful of counters, gauges and one
histogram, no process collectors, no second HTTP server and no extra dependency. The adapters
count (``CALLS.inc(status=..., reason=...)``); ``serve`` exposes ``render()`` on ``/metrics``
(callconsent/service.py). Nothing here does I/O.

Label values come from the app (statuses, reasons, purposes), never from a caller; they are
escaped as the format requires all the same.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Iterable, Sequence
from typing import Final

#: Seconds from the call entering the app to its first prompt playing (notice-start latency).
NOTICE_START_BUCKETS: Final = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class _Metric:
    kind: str = ""

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.label_names = tuple(labels)
        self._lock = threading.Lock()  # the ledger's worker threads may count too

    def _key(self, labels: dict[str, str]) -> tuple[str, ...]:
        if set(labels) != set(self.label_names):
            raise ValueError(f"{self.name} takes labels {self.label_names}, got {sorted(labels)}")
        return tuple(str(labels[n]) for n in self.label_names)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def lines(self) -> list[str]:
        raise NotImplementedError


class Counter(_Metric):
    """Only goes up. Without labels it is shown as 0 from the start."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labels)
        self._values: dict[tuple[str, ...], float] = {} if labels else {(): 0.0}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(self._key(labels), 0.0)

    def lines(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return [f"{self.name}{_labels(self.label_names, k)} {_number(v)}" for k, v in items]


class Gauge(_Metric):
    """A value that goes up and down (set by the adapters)."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str) -> None:
        super().__init__(name, help_text)
        self._value = 0.0

    def set(self, value: float) -> None:
        with self._lock:
            self._value = float(value)

    def value(self) -> float:
        with self._lock:
            return self._value

    def lines(self) -> list[str]:
        return [f"{self.name} {_number(self.value())}"]


class Histogram(_Metric):
    """Cumulative buckets, ``_sum`` and ``_count``, as Prometheus expects."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Iterable[float]) -> None:
        super().__init__(name, help_text)
        self.buckets = tuple(sorted(buckets))
        self._counts = [0] * (len(self.buckets) + 1)  # the last one: above every bound
        self._sum = 0.0

    def observe(self, value: float) -> None:
        with self._lock:
            self._counts[bisect.bisect_left(self.buckets, value)] += 1
            self._sum += value

    @property
    def count(self) -> int:
        with self._lock:
            return sum(self._counts)

    def lines(self) -> list[str]:
        with self._lock:
            counts, total = list(self._counts), self._sum
        out, running = [], 0
        for bound, count in zip((*self.buckets, math.inf), counts, strict=True):
            running += count
            out.append(f'{self.name}_bucket{{le="{_number(bound)}"}} {running}')
        out.append(f"{self.name}_sum {_number(total)}")
        out.append(f"{self.name}_count {running}")
        return out


class Registry:
    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}

    def add(self, metric: _Metric) -> None:
        if metric.name in self._metrics:
            raise ValueError(f"metric {metric.name} registered twice")
        self._metrics[metric.name] = metric

    def render(self) -> str:
        lines: list[str] = []
        for metric in self._metrics.values():
            lines += metric.header() + metric.lines()
        return "\n".join(lines) + "\n"


REGISTRY: Final = Registry()


def _counter(name: str, help_text: str, labels: Sequence[str] = ()) -> Counter:
    metric = Counter(name, help_text, labels)
    REGISTRY.add(metric)
    return metric


def _gauge(name: str, help_text: str) -> Gauge:
    metric = Gauge(name, help_text)
    REGISTRY.add(metric)
    return metric


CALLS: Final = _counter(
    "callconsent_calls_total",
    "Calls the app let go back to the dialplan, by outcome (CALLCONSENT_STATUS and _REASON).",
    ("status", "reason"),
)
RECORDINGS_STARTED: Final = _counter(
    "callconsent_recordings_started_total",
    "Recordings started: MixMonitor in the hook (the app set CALLCONSENT_RECORDING) or over AMI "
    "after the agent's consent.",
)
RECORDINGS_STOPPED: Final = _counter(
    "callconsent_recordings_stopped_total",
    "Recordings finalised after the caller's channel ended (also those stopped earlier in the "
    "call, by a withdrawal or a transfer).",
)
RECORDINGS_FAILED: Final = _counter(
    "callconsent_recordings_failed_total",
    "Recordings that could not be started or finalised (the call went on unrecorded or the "
    "sidecar waits for reconcile).",
)
ARI_RECONNECTS: Final = _counter(
    "callconsent_ari_reconnects_total", "ARI WebSocket connections made after the first one."
)
AMI_RECONNECTS: Final = _counter(
    "callconsent_ami_reconnects_total", "AMI logins made after the first one."
)
ARI_CONNECTED: Final = _gauge("callconsent_ari_connected", "1 while the ARI WebSocket is up.")
AMI_CONNECTED: Final = _gauge("callconsent_ami_connected", "1 while logged in to AMI.")
CALLS_IN_FLOW: Final = _gauge(
    "callconsent_calls_in_flow", "Calls in the consent flow now (notice, question)."
)
LOOP_LAG: Final = _gauge(
    "callconsent_event_loop_lag_seconds",
    "How late the event loop ran a timer at the last check (a blocked loop delays every call).",
)
LOOP_LAG_MAX: Final = _gauge(
    "callconsent_event_loop_lag_max_seconds", "The largest event-loop lag seen since start."
)
NOTICE_START: Final = Histogram(
    "callconsent_notice_start_seconds",
    "Seconds from a call entering the app to its first prompt starting to play.",
    NOTICE_START_BUCKETS,
)
REGISTRY.add(NOTICE_START)
RELOADS: Final = _counter(
    "callconsent_config_reloads_total", "Config reloads on SIGHUP, by result.", ("result",)
)


def render() -> str:
    return REGISTRY.render()
