"""Micro-benchmark of the waits between a caller's decisive "1" and the call's continue (not a
test): how much of a slow ARI and a slow disk a recorded call waits for one after another.

    .venv/bin/python bench/overlap.py [--calls 20] [--ari-ms 100] [--fsync-ms 20]
    PYTHONPATH=/tmp/base/src .venv/bin/python bench/overlap.py ...   # another src/ (an A/B)

Drives the real :class:`callconsent.stasis.StasisApp` (the demo config's route ``support``, the
real evidence store on a real folder under /var/tmp) over a fake ARI whose every request takes
``--ari-ms`` (Asterisk answering late under CPU saturation), with every ``os.fsync`` and
``os.fdatasync`` made ``--fsync-ms`` slower (a busy disk). One call at a time, so the figure is
the sum of what each call waits for in sequence. Two cases: the "1" pressed after the question
ended (no prompt to stop) and while it plays (its stop is one more ARI request). Prints the
p50/max of digit -> continue (ms) per case, and the ARI requests and fsyncs per call.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
if not os.environ.get("PYTHONPATH"):  # else the src/ it names (an A/B against another tree)
    sys.path.insert(0, str(REPO / "src"))

import callconsent  # noqa: E402
from callconsent import logs  # noqa: E402
from tests.support.stasis_fakes import FakeAri, Harness  # noqa: E402

FSYNCS = [0]


class SlowAri(FakeAri):
    """Every request the consent flow makes takes ``delay`` seconds to be answered."""

    delay = 0.1
    requests = 0

    async def _late(self) -> None:
        SlowAri.requests += 1
        await asyncio.sleep(self.delay)

    async def answer(self, channel_id: str) -> None:
        await self._late()
        await super().answer(channel_id)

    async def play(
        self, channel_id: str, media: str | list[str], playback_id: str, lang: str | None = None
    ) -> Any:
        await self._late()
        return await super().play(channel_id, media, playback_id, lang)

    async def stop_playback(self, playback_id: str) -> None:
        await self._late()
        await super().stop_playback(playback_id)

    async def set_variables(self, channel_id: str, pairs: Sequence[tuple[str, str]]) -> None:
        await self._late()
        await super().set_variables(channel_id, pairs)

    async def continue_in_dialplan(self, channel_id: str) -> None:
        await self._late()
        await super().continue_in_dialplan(channel_id)

    async def subscribe(self, event_source: str) -> None:
        await self._late()
        await super().subscribe(event_source)


def slow_disk(seconds: float) -> None:
    def slowed(real: Callable[[int], None]) -> Callable[[int], None]:
        def call(fd: int) -> None:
            FSYNCS[0] += 1
            time.sleep(seconds)  # in the store's worker threads, as a real slow fsync
            real(fd)

        return call

    os.fsync = slowed(os.fsync)
    os.fdatasync = slowed(os.fdatasync)


async def one_call(h: Harness, cid: str, during_question: bool) -> tuple[float, int, int]:
    """ms from the digit to the continue answered; ARI requests and fsyncs after the digit."""
    await h.start(cid)
    await h.play_through(cid)  # the notice
    if during_question:
        await h.play_started(cid)
    else:
        await h.play_through(cid)
    requests, fsyncs = SlowAri.requests, FSYNCS[0]
    started = time.perf_counter()
    await h.digit(cid, "1")
    took = (time.perf_counter() - started) * 1000
    assert h.ari.continues(cid) == 1 and h.ari.result(cid)["CALLCONSENT_STATUS"] == "given"
    return took, SlowAri.requests - requests, FSYNCS[0] - fsyncs


async def run(folder: Path, calls: int) -> dict[str, list[tuple[float, int, int]]]:
    h = Harness(folder)
    h.ari = SlowAri()
    h.app._ari = h.app._actions.ari = h.ari  # white-box: the harness's app over the slow ARI
    out: dict[str, list[tuple[float, int, int]]] = {"after": [], "during": []}
    for n in range(calls):
        for case in ("after", "during"):
            out[case].append(
                await one_call(h, f"1764000000.{2 * n + (case == 'during')}", case == "during")
            )
    await h.store.aclose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--ari-ms", type=float, default=100.0)
    parser.add_argument("--fsync-ms", type=float, default=20.0)
    args = parser.parse_args()
    SlowAri.delay = args.ari_ms / 1000
    slow_disk(args.fsync_ms / 1000)
    stderr, sys.stderr = sys.stderr, open(os.devnull, "w")  # noqa: SIM115
    logs.configure()  # the app's JSON log lines, to /dev/null
    sys.stderr = stderr
    folder = Path(tempfile.mkdtemp(prefix="callconsent-overlap-", dir="/var/tmp"))
    try:
        results = asyncio.run(run(folder, args.calls))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"src: {Path(callconsent.__file__).parent}")
    print(
        f"ARI {args.ari_ms:g} ms per request, fsync +{args.fsync_ms:g} ms, {args.calls} calls each"
    )
    print("| the 1 pressed | digit -> continue p50 ms | max ms | ARI requests | fsyncs |")
    print("|---|---|---|---|---|")
    for case, rows in results.items():
        took = [r[0] for r in rows]
        label = "after the question" if case == "after" else "during the question"
        print(
            f"| {label} | {statistics.median(took):.0f} | {max(took):.0f} "
            f"| {statistics.median(r[1] for r in rows):.0f} "
            f"| {statistics.median(r[2] for r in rows):.0f} |"
        )


if __name__ == "__main__":
    main()
