"""Shared pieces of the fault tests (tests/e2e/test_faults_*.py): placing calls at chosen
moments, checking the evidence each call left against what its caller did, and one result row per
fault case for ``bench/faults.py``.

The invariants every fault case must keep (R36, issue 11):

- every call reaches its destination (the lab dialplan's LABDEST line);
- nothing is recorded without a basis: a recording with audio lists only purposes the call may
  have (documentation on a documentation route; training only when the caller pressed the
  accept digit after the question started and, at the bridge, the agent consented);
- after ``callconsent reconcile`` every audio file of the call has a final sidecar (or a
  tombstone), never a ``recording`` one or none.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callconsent.config import Config
from callconsent.evidence.wav import WavError, inspect
from tests.e2e.lab_app import DEMO_CONFIG, LAB_ENV, LabApp, lab_config_variant
from tests.harness.asterisk import AsteriskLab, LabLine
from tests.harness.sipp import Call, CallResult, run_call
from tests.harness.tcp_proxy import TcpProxy

#: Where the fault tests append their result rows (JSON lines); bench/faults.py sets it.
REPORT_ENV = "CALLCONSENT_FAULTS_REPORT"


@dataclass(frozen=True)
class Expect:
    """What one call may leave: the purposes it may be recorded for."""

    may_record: frozenset[str] = frozenset()
    reaches: bool = True  # False: the caller hangs up before the destination on purpose


@dataclass
class Placed:
    case: str
    call: Call
    expect: Expect
    future: Future[CallResult]
    result: CallResult | None = None
    dest: LabLine | None = None
    end: LabLine | None = None


@dataclass
class CaseResult:
    case: str
    placed: int = 0
    reached: int = 0
    recorded: int = 0
    violations: list[str] = field(default_factory=list)
    note: str = ""

    def row(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "placed": self.placed,
            "reached": self.reached,
            "recorded": self.recorded,
            "violations": len(self.violations),
            "details": self.violations,
            "note": self.note,
        }


class Caller:
    """Places calls in threads at chosen moments (time.monotonic())."""

    def __init__(self, workers: int = 32) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fault-call")
        self.placed: list[Placed] = []

    def place(self, case: str, call: Call, expect: Expect, at: float | None = None) -> Placed:
        def run() -> CallResult:
            if at is not None:
                time.sleep(max(0.0, at - time.monotonic()))
            return run_call(call)

        placed = Placed(case, call, expect, self._pool.submit(run))
        self.placed.append(placed)
        return placed

    def wait(self, timeout: float = 120.0) -> list[Placed]:
        for p in self.placed:
            p.result = p.future.result(timeout=timeout)
        return self.placed

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def settle(asterisk: AsteriskLab, placed: Iterable[Placed], since: int) -> None:
    """Fill in each call's LABDEST (None when it never reached its destination) and LABEND."""
    for p in placed:
        assert p.result is not None
        p.end = asterisk.wait_labend(p.result.call_id, since=since, timeout=30)
        dests = [
            line
            for line in asterisk.lab_lines(since=since)
            if line.kind == "LABDEST" and line.callid == p.result.call_id
        ]
        p.dest = dests[0] if dests else None


def reconcile(config: Config) -> subprocess.CompletedProcess[str]:
    """``callconsent reconcile`` as an admin runs it after a crash (nothing is in progress)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "callconsent.cli.main",
            "reconcile",
            "--config",
            str(DEMO_CONFIG),
            "--stale-after-minutes",
            "0",
        ],
        env={**os.environ, **LAB_ENV},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _files_of(config: Config, uniqueid: str) -> list[Path]:
    return sorted(config.storage.recordings_dir.rglob(f"{uniqueid}.*"))


def _has_audio(path: Path) -> bool:
    try:
        info = inspect(path)
    except WavError:
        return path.stat().st_size > 44  # unreadable: count as audio, never as nothing
    return not info.header_only


def check_call(config: Config, p: Placed) -> tuple[bool, list[str]]:
    """(recorded?, violations) for one call, after reconcile."""
    assert p.end is not None
    label = f"{p.case} {p.end.uniqueid}"
    problems: list[str] = []
    if p.dest is None and p.expect.reaches:
        problems.append(f"{label}: never reached its destination")
    recorded = False
    files = _files_of(config, p.end.uniqueid)
    audio = [f for f in files if f.suffix == ".wav"]
    sidecars = {f.with_suffix(".wav"): f for f in files if f.suffix == ".json"}
    for wav in audio:
        doc_path = sidecars.get(wav)
        with_audio = _has_audio(wav)
        if doc_path is None:
            if with_audio:
                problems.append(f"{label}: {wav.name} has audio and no sidecar")
            continue
        doc = json.loads(doc_path.read_text())
        if doc["state"] == "tombstone":
            problems.append(f"{label}: {wav.name} still present beside a tombstone")
            continue
        if doc["state"] != "final":
            problems.append(f"{label}: sidecar still {doc['state']} after reconcile")
            continue
        if not (with_audio and doc["recording"]["has_audio"]):
            continue
        recorded = True
        purposes = {purpose["purpose"] for purpose in doc["purposes"]}
        extra = purposes - p.expect.may_record
        if extra:
            problems.append(f"{label}: recorded for {sorted(extra)} without a basis")
    for doc_path in (f for f in files if f.suffix == ".json"):
        doc = json.loads(doc_path.read_text())
        if doc["state"] == "recording":
            problems.append(f"{label}: {doc_path.name} still recording after reconcile")
    return recorded, problems


def check_case(config: Config, case: str, placed: Sequence[Placed], note: str = "") -> CaseResult:
    """The case's row; ``note`` defaults to how its calls left the hook (status/reason: count)."""
    out = CaseResult(case, note=note)
    outcomes: Counter[str] = Counter()
    for p in placed:
        if p.case != case:
            continue
        outcomes[f"{p.dest.status}/{p.dest.reason}" if p.dest else "no destination"] += 1
        out.placed += 1
        out.reached += p.dest is not None or not p.expect.reaches
        recorded, problems = check_call(config, p)
        out.recorded += recorded
        out.violations.extend(problems)
    if not note:
        out.note = ", ".join(f"{k} x{n}" for k, n in sorted(outcomes.items()))
        tombs = sum(1 for p in placed if p.case == case and p.end and tombstoned(config, p))
        if tombs:
            out.note += f"; {tombs} sidecar(s) tombstoned (no audio)"
    return out


def tombstoned(config: Config, p: Placed) -> bool:
    assert p.end is not None
    return any(
        json.loads(f.read_text()).get("state") == "tombstone"
        for f in _files_of(config, p.end.uniqueid)
        if f.suffix == ".json"
    )


def report(result: CaseResult) -> None:
    """Append the case's row for bench/faults.py (when it asked for them)."""
    target = os.environ.get(REPORT_ENV)
    if target:
        with open(target, "a", encoding="utf-8") as f:
            f.write(json.dumps(result.row()) + "\n")


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, poll: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(poll)


def app_events(log_path: Path, since: int) -> list[dict[str, Any]]:
    """The app's structured log lines (JSON) written after byte ``since``."""
    with log_path.open("rb") as f:
        f.seek(since)
        data = f.read()
    out = []
    for line in data.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            out.append(event)
    return out


@contextlib.contextmanager
def app_reading_late(
    lab_app: LabApp,
    folder: Path,
    user_event: str,
    seconds: float,
    port: int = 5039,
    *,
    skip: int = 0,
) -> Iterator[LabApp]:
    """``callconsent serve`` behind an AMI proxy (``port``) that holds the next UserEvent
    ``user_event`` back ``seconds`` (and all that follows it): an app that reads it late, as on
    a loaded machine (the dialplan's wait for its answer ends first). ``skip``: that many such
    events pass on time before the one held back."""
    with (
        TcpProxy(port, 5038, ami=True) as proxy,
        app_behind_ami_proxy(lab_app, folder, proxy) as app,
    ):
        proxy.delay_user_event(user_event, seconds, skip=skip)
        yield app


@contextlib.contextmanager
def app_behind_ami_proxy(lab_app: LabApp, folder: Path, proxy: TcpProxy) -> Iterator[LabApp]:
    """``callconsent serve`` reaching AMI through ``proxy`` (its config in ``folder``), logged
    in to AMI, in place of the session's app (stopped meanwhile, started again afterwards)."""
    config = lab_config_variant(folder / "callconsent.yaml", ami_port=proxy.listen_port)
    lab_app.stop()
    try:
        app = LabApp(folder / "serve.log", config)
        app.start()
        try:
            wait_until(
                lambda: any(e.get("event") == "ami_connected" for e in app_events(app.log_path, 0)),
                timeout=10,
                what="the app's AMI login",
            )
            yield app
        finally:
            app.stop()
    finally:
        lab_app.start()
