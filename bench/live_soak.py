"""The soak of bench/live.py: the app alone at 10 calls/s, its RSS against calls done."""

from __future__ import annotations

import statistics
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from bench.live_app import App, loadavg, rss_kib
from bench.live_lab import ROUTE, Caller, sipp_command
from tests.harness.asterisk import AsteriskLab

SAMPLE_SECONDS = 10


def soak(
    lab: AsteriskLab,
    caller: Caller,
    work: Path,
    app: App,
    seconds: int,
    snapshot_every: int = 0,
) -> dict[str, Any]:
    """The app alone at 10 calls/s for ``seconds``: RSS sampled every 10 s against calls done.

    With ``snapshot_every`` N and the app under tracemalloc (``App.trace_dir``): a snapshot is
    asked for at the start (label ``c0``) and each time another N calls are done (``c1000``...).
    """
    rate, concurrent = 10, 300
    calls = rate * seconds
    tag = f"s{uuid.uuid4().hex[:8]}"
    pid = app.start()
    mark = lab.log_offset()
    trace = app.trace_dir if snapshot_every > 0 else None
    if trace is not None:
        _ask_snapshot(trace, "c0")
    cmd, _bound = sipp_command(caller, ROUTE, rate, concurrent, calls, work, tag)
    proc = subprocess.Popen(cmd, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples: list[tuple[int, int]] = []
    done, offset, next_snap = 0, mark, snapshot_every
    while proc.poll() is None:
        time.sleep(SAMPLE_SECONDS)
        with lab.log_path.open("rb") as log:  # only what is new: the log grows ~12 KB a call
            log.seek(offset)
            chunk = log.read()
        end = chunk.rfind(b"\n") + 1
        offset += end
        done += sum(  # the NOTICE line, not the VERBOSE "Executing ... Log(...)" before it
            1
            for line in chunk[:end].split(b"\n")
            if b"] NOTICE[" in line and b" LABEND " in line and f"callid={tag}-".encode() in line
        )
        samples.append((done, rss_kib(pid)))
        if trace is not None and done >= next_snap:
            _ask_snapshot(trace, f"c{next_snap}")
            next_snap += snapshot_every
    if trace is not None:
        time.sleep(40)  # every call's evidence final, the per-call state gone
        _ask_snapshot(trace, "end")
    app.stop()
    xs = [float(d) for d, _ in samples if d > 0]
    ys = [float(r) for d, r in samples if d > 0]
    half = len(xs) // 2  # the first half includes the warm-up (caches, pools, the allocator)
    return {
        "seconds": seconds,
        "calls_done": samples[-1][0] if samples else 0,
        "rss_kib_first": ys[0] if ys else None,
        "rss_kib_last": ys[-1] if ys else None,
        "rss_slope_kib_per_1000_calls": slope(xs, ys),
        "rss_slope_second_half_kib_per_1000_calls": slope(xs[half:], ys[half:]),
        "samples": samples,
        "loadavg_end": loadavg(),
    }


def _ask_snapshot(folder: Path, label: str, wait: float = 60.0) -> None:
    """Ask the traced app for snapshot ``label`` and wait until it is written."""
    (folder / f"{label}.req").touch()
    deadline = time.monotonic() + wait
    while (folder / f"{label}.req").exists() and time.monotonic() < deadline:
        time.sleep(0.2)


def slope(xs: list[float], ys: list[float]) -> float | None:
    """KiB per 1,000 calls: the least-squares slope of RSS against calls done."""
    if len(xs) < 3 or len(set(xs)) < 2:
        return None
    return round(statistics.linear_regression(xs, ys).slope * 1000, 1)
