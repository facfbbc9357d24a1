"""Micro-benchmark of the evidence work one recorded call costs the live app (not a test).

    .venv/bin/python bench/hotpath.py [--calls 300] [--concurrent 30] [--dir DIR]

Runs ``--calls`` calls of route ``support`` (training, consent given, the agent consents at the
bridge) through the real :class:`callconsent.store.EvidenceStore` on a real folder
(``--dir``, default a temporary folder under /var/tmp: a real disk, fsync included), at most
``--concurrent`` at a time: recording sidecar, ledger ``call`` entry, the agent's decision, a
closed 8 s WAV, finalisation and ``recording_final``. Prints the process CPU (all threads) and
wall time per call, and the fsyncs per call (counted by wrapping ``os.fsync``); then the
p50/p99/max wall time of the two awaits a recorded call makes between its decision and its
continue: the sidecar created, and the ``call`` line durable (group-committed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from callconsent import logs  # noqa: E402
from callconsent.agents.evidence import AgentEvidence  # noqa: E402
from callconsent.consent import CallOutcome, NoticeEvidence, Prompt, PurposeOutcome  # noqa: E402
from callconsent.evidence.documents import CallInfo  # noqa: E402
from callconsent.evidence.ledger import verify_chain  # noqa: E402
from callconsent.store import EvidenceStore  # noqa: E402
from tests.support.stasis_fakes import pcm_wav  # noqa: E402

SHA = "c" * 64
NOTICE = Prompt("lab_training_v1.notice", "sound:/p/da/lab-training-v1", "da", SHA)
QUESTION = Prompt("lab_training_v1.question", "sound:/p/da/lab-training-v1-question", "da", SHA)
WAV = pcm_wav(8000 * 8)  # 8 s of audio, as MixMonitor leaves it


def outcome(at: datetime) -> CallOutcome:
    purpose = PurposeOutcome(
        "training", "6(1)(a)", 30, "given", "digit", "1", QUESTION, at, at, at, 1
    )
    return CallOutcome(
        route="support",
        language="da",
        status="given",
        reason="digit",
        notices=(NoticeEvidence(NOTICE, at, at, played=True),),
        purposes=(purpose,),
        recorded_purposes=("training",),
        entered_at=at,
    )


#: wall ms of the awaits between the decision and the continue: (sidecar created, call line)
WAITS: list[tuple[float, float]] = []


async def one_call(store: EvidenceStore, n: int, at: datetime) -> None:
    uniqueid = f"{int(at.timestamp())}.{n}"
    info = CallInfo(uniqueid, uniqueid, f"PJSIP/lab-{n:08x}", "support", "+4533000000", "B", None)
    done = outcome(at)
    t0 = time.perf_counter()
    audio = Path(await store.prepare_recording(done, info, at))
    t1 = time.perf_counter()
    await store.write_call(done, info)
    WAITS.append(((t1 - t0) * 1000, (time.perf_counter() - t1) * 1000))
    agent = AgentEvidence("echo", "given", at, at)
    await store.agent_decided(uniqueid, agent, given=True)
    audio.write_bytes(WAV)  # noqa: ASYNC240  # MixMonitor's closed file (the app does not time it)
    await store.recording_ended(info, at + timedelta(seconds=8))


async def run(folder: Path, calls: int, concurrent: int) -> None:
    (folder / "recordings").mkdir(parents=True)
    store = EvidenceStore(
        recordings_dir=folder / "recordings",
        ledger_path=folder / "ledger.jsonl",
        config_sha256="d" * 64,
    )
    at = datetime.now(UTC)
    gate = asyncio.Semaphore(concurrent)

    async def bounded(n: int) -> None:
        async with gate:
            await one_call(store, n, at)

    await asyncio.gather(*(bounded(n) for n in range(calls)))
    if hasattr(store, "aclose"):
        await store.aclose()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=300)
    p.add_argument("--concurrent", type=int, default=30)
    disk = Path("/var/tmp")  # noqa: S108  # a real disk (tmpfs would hide fsync), own mkdtemp
    p.add_argument("--dir", type=Path, default=disk)
    args = p.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="callconsent-hotpath-", dir=args.dir))
    fsyncs = [0]
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        fsyncs[0] += 1
        real_fsync(fd)

    os.fsync = counting_fsync  # type: ignore[assignment]  # a benchmark, never the app
    stderr, sys.stderr = sys.stderr, open(os.devnull, "w")  # noqa: SIM115
    logs.configure()  # the app's JSON log lines (their cost counts), to /dev/null
    sys.stderr = stderr
    try:
        asyncio.run(run(folder, 5, 5))  # warm-up: imports, schema registry
        shutil.rmtree(folder)
        fsyncs[0] = 0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        WAITS.clear()
        asyncio.run(run(folder, args.calls, args.concurrent))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        problems = verify_chain(folder / "ledger.jsonl")
        print(
            f"{args.calls} calls, {args.concurrent} at a time: "
            f"CPU {cpu * 1000 / args.calls:.2f} ms/call, wall {wall * 1000 / args.calls:.2f} "
            f"ms/call, fsyncs {fsyncs[0] / args.calls:.1f}/call, ledger chain "
            f"{'ok' if not problems else problems[:3]}"
        )
        for i, what in enumerate(("sidecar created", "call line durable")):
            ms = sorted(w[i] for w in WAITS)
            print(
                f"  await {what}: p50 {ms[len(ms) // 2]:.2f} ms, "
                f"p99 {ms[min(len(ms) - 1, int(len(ms) * 0.99))]:.2f} ms, max {ms[-1]:.2f} ms"
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
