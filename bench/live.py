"""Benchmark of the live path at call-centre load (not part of the test run).

    bench/live.py [--steps 10/100,20/200,30/300] [--seconds 30] [--climb] [--json FILE]
    bench/live.py --soak [--soak-seconds 600]

Run as root from the repository. It re-runs itself inside ``scripts/lab-isolated`` (its own
network namespace, Asterisk chroot overlay and lab folder: it never disturbs another lab), brings
the sandbox up there and drives two flows with sipp, one sipp process per run
(``-r RATE -l CONCURRENT -m CALLS``), every caller the same: waits until one second after the
consent question of route ``support`` (config/demo.yaml) has ended, presses 1, talks (sipp's
speech sample) for ``--talk`` seconds and hangs up.

* ``peer``: the same consent flow as a few lines of dialplan (extension ``peer`` of the lab
  dialplan, tests/harness/asterisk/extensions-lab.conf: the same notice and question audio,
  Read with a 5 s timeout and one retry, MixMonitor(...,b) after a 1, the same Local/echo
  destination), with no app running;
* ``app``: the hook and ``callconsent serve`` (started fresh for each run);
* ``floor`` (only when asked for: ``--flows floor,...``): the consent flow's ARI part and
  nothing else (``bench/floor_app.py`` on the product's ARI client, lab extension ``floor``:
  the notice and question as one playlist, the key, the continue; then as the peer). Its CPU per
  call is what any consent app on this client and Python pays, without rules or evidence;
* ``agi``: the FastAGI hook (``callconsent-agi``, lab extension ``agi-support``) and the same
  ``callconsent serve``: the same flow over FastAGI instead of ARI (its ``call_timing`` starts
  at the AGI request and takes the notice as started when STREAM FILE is sent).

Per run: calls placed and completed (sipp), outcomes right (every caller reaches the destination
with status ``given`` and a recording that holds audio at least half as long as what the
caller said after the 1; for the app also a final sidecar), recording length, Asterisk CPU ms per
call and the app's CPU ms per call (``/proc/<pid>/stat`` user+system, from sipp's start until
every call has ended and its evidence is final), the app's peak RSS (VmHWM), and the app's own
latencies from its ``call_timing`` log lines (p50/p99/max): StasisStart -> notice playback
started, the 1 -> MixMonitor running, decision -> channel continued (the floor logs the notice's
line too). The app's event loop thread: seconds running and seconds runnable but waiting for a
CPU (``/proc/<pid>/task/<pid>/schedstat``: a starved loop, not a busy one); the callers' (sipp's)
CPU per call, which this machine's Asterisk and app share their CPUs with. The load average is
recorded at the start and end of each run: on a shared machine the figures are noisy.

Output: a Markdown table on stdout, the ratios app/peer, the highest load each flow holds with no
wrong outcome; ``--json FILE`` writes every figure. ``--climb`` goes on after the listed steps in
steps of +10 calls/s, +100 concurrent until a run has a wrong outcome or a failed call (at most
``--max-rate``). ``--soak``: app only, ``--soak-seconds`` at 10 calls/s; the app's RSS is sampled
every 10 s and the slope per 1,000 calls reported. ``--profile DIR``: py-spy (``pip install
py-spy``; not a dependency) records the app's collapsed stacks (threads holding the GIL: Python's own CPU), one file
per run. ``--strace DIR``: the app's system calls by kind (``strace -f -c``; it slows the app
down, so read counts, not times), one file per run.
``--trace-dir DIR`` (with ``--soak``): run the app through ``bench/traced_app.py`` (tracemalloc,
``CALLCONSENT_BENCH_TRACE_FRAMES`` frames, 0 for none) and take a snapshot at the start, every
``--snapshot-every`` calls and 40 s after the last call: objects by type, the large containers
and who holds them, glibc malloc and SQLite totals; ``bench/memdiff.py DIR c0 end`` compares two.
``--app-src DIR``: run the app from another ``src/`` folder (``git archive <commit> src``), for
before/after figures on the same lab. ``--app-nice N``: run the app at niceness N (as a systemd
``Nice=`` would; Asterisk runs at 0).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from bench.cpu_groups import DEFAULT_WEIGHT, CpuGroups  # noqa: E402
from bench.live_app import (  # noqa: E402
    App,
    FloorApp,
    asterisk_pid,
    callconsent,
    cpu_seconds,
    cpu_split,
    loadavg,
    loop_sched,
    peak_rss_mib,
)
from bench.live_lab import (  # noqa: E402
    ROUTE,
    Caller,
    Run,
    app_latencies,
    app_problems,
    judge,
    make_caller,
    run_sipp,
    wait_settled,
)
from bench.live_soak import soak  # noqa: E402
from tests.e2e.lab_app import DEMO_CONFIG, LAB_ECHO_AGENT, LAB_ENV  # noqa: E402
from tests.harness.asterisk import AsteriskLab  # noqa: E402

INSIDE_ENV = "CALLCONSENT_BENCH_ISOLATED"
#: Each flow's sipp target (lab dialplan extension) and the flows the app serves.
TARGETS = {"peer": "peer", "floor": "floor", "app": ROUTE, "agi": f"agi-{ROUTE}"}
APP_FLOWS = ("app", "agi")
FLOWS = tuple(TARGETS)
DEFAULT_FLOWS = "peer,app,agi"


# --- runs --------------------------------------------------------------------------------------


def one_run(
    flow: str,
    rate: int,
    concurrent: int,
    calls: int,
    lab: AsteriskLab,
    caller: Caller,
    work: Path,
    app: App,
    perf_dir: Path | None = None,
) -> Run:
    run = Run(flow, rate, concurrent, calls, loadavg_start=loadavg())
    tag = f"b{uuid.uuid4().hex[:8]}"
    evidence = flow in APP_FLOWS  # the app's flows leave sidecars; peer and floor none
    app_pid = app.start() if evidence or flow == "floor" else None
    ast = asterisk_pid()
    mark = lab.log_offset()
    perf = None
    if perf_dir is not None:  # Asterisk's own profile: where its extra CPU per call goes
        out = perf_dir / f"asterisk-{flow}-{rate}-{concurrent}-{tag}.data"
        perf = subprocess.Popen(
            ["perf", "record", "-q", "-F", "99", "-g", "-p", str(ast), "-o", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ast0 = cpu_seconds(ast)
    app0 = cpu_split(app_pid) if app_pid else (0.0, 0.0)
    sched0 = loop_sched(app_pid) if app_pid else (0.0, 0.0)
    counters, run.seconds, callers_cpu = run_sipp(
        caller, TARGETS[flow], rate, concurrent, calls, work, tag
    )
    run.placed, run.completed, run.failed = counters["created"], counters["ok"], counters["failed"]
    wait_settled(lab, mark, tag, run.placed, evidence)
    if perf is not None:
        perf.send_signal(signal.SIGINT)
        perf.wait(timeout=120)
    per_call = max(1, run.placed)
    run.asterisk_cpu_ms_per_call = round((cpu_seconds(ast) - ast0) * 1000 / per_call, 1)
    run.callers_cpu_ms_per_call = round(callers_cpu * 1000 / per_call, 1)
    if app_pid:
        user, system = cpu_split(app_pid)
        run.app_cpu_ms_per_call = round((user + system - sum(app0)) * 1000 / per_call, 2)
        run.app_sys_ms_per_call = round((system - app0[1]) * 1000 / per_call, 2)
        run.app_peak_rss_mib = round(peak_rss_mib(app_pid), 1)
        running, waiting = loop_sched(app_pid)
        run.loop_run_s = round(running - sched0[0], 2)
        run.loop_wait_s = round(waiting - sched0[1], 2)
        run.latency_ms = app_latencies(app.new_log())
        run.app_problems = app_problems(app.new_log())
        app.stop()
    run.loadavg_end = loadavg()
    for path in judge(run, lab, mark, tag, caller, evidence):
        path.unlink(missing_ok=True)
    return run


# --- report ------------------------------------------------------------------------------------


def _lat(run: Run, key: str) -> str:
    got = run.latency_ms.get(key) or {}
    if not got:
        return "-"
    return f"{got['p50']:.0f}/{got['p99']:.0f}/{got['max']:.0f}"


def _app_cpu(run: Run) -> str:
    if run.app_cpu_ms_per_call is None:
        return "-"
    return f"{run.app_cpu_ms_per_call} ({run.app_sys_ms_per_call})"


def split(run: Run) -> str:
    """Where the 1 -> MixMonitor time goes (p50/p99 ms each)."""
    parts = (
        ("decide", "decide_ms"),
        ("continue", "continue_ms"),
        ("bridge", "bridge_ms"),
        ("of which agent decision", "agent_decide_ms"),
        ("(ledger line", "agent_ledger_ms"),
        ("sidecar)", "agent_sidecar_ms"),
        ("AMI MixMonitor", "agent_mixmonitor_ms"),
    )
    return ", ".join(f"{name} {_lat(run, key)}" for name, key in parts)


def notice_split(run: Run) -> str:
    """Where the StasisStart -> notice time goes (p50/p99 ms each): to the app's play request
    (the event's way to the app's reader, then the app's queue and work), then Asterisk
    starting the playback."""
    return (
        f"app {_lat(run, 'notice_app_ms')} (event to the reader {_lat(run, 'notice_event_ms')}, "
        f"queue and work {_lat(run, 'notice_queue_ms')}), Asterisk {_lat(run, 'notice_play_ms')}"
    )


def markdown(runs: list[Run]) -> str:
    head = (
        "| flow | calls/s / concurrent | placed / completed / failed | right | recording mean (min) s "
        "| Asterisk CPU ms/call | app CPU (kernel) ms/call | app peak RSS MiB | notice p50/p99/max ms "
        "| 1 -> MixMonitor p50/p99/max ms | decision -> continued p50/p99/max ms | load avg |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for r in runs:
        rec = f"{r.recording_mean_s} ({r.recording_min_s})" if r.recording_mean_s else "-"
        rows.append(
            f"| {r.flow} | {r.rate} / {r.concurrent} | {r.placed} / {r.completed} / {r.failed} "
            f"| {r.right}/{r.placed} | {rec} | {r.asterisk_cpu_ms_per_call} "
            f"| {_app_cpu(r)} "
            f"| {r.app_peak_rss_mib if r.app_peak_rss_mib is not None else '-'} "
            f"| {_lat(r, 'notice_ms')} | {_lat(r, 'record_ms')} | {_lat(r, 'continue_ms')} "
            f"| {r.loadavg_start} -> {r.loadavg_end} |"
        )
        if r.app_problems:
            rows.append(f"|  | app warnings/errors: {r.app_problems} |" + " |" * 10)
    return head + "\n".join(rows) + "\n"


def summary(runs: list[Run]) -> dict[str, Any]:
    out: dict[str, Any] = {"ratios": []}
    by_step: dict[tuple[int, int], dict[str, Run]] = {}
    for r in runs:
        by_step.setdefault((r.rate, r.concurrent), {})[r.flow] = r
    for (rate, conc), flows in sorted(by_step.items()):
        peer = flows.get("peer")
        for name in ("floor", *APP_FLOWS):
            app = flows.get(name)
            if not (peer and app and peer.asterisk_cpu_ms_per_call):
                continue
            total = app.asterisk_cpu_ms_per_call + (app.app_cpu_ms_per_call or 0.0)
            out["ratios"].append(
                {
                    "step": f"{rate}/{conc}",
                    "flow": name,
                    "asterisk_app_over_peer": round(
                        app.asterisk_cpu_ms_per_call / peer.asterisk_cpu_ms_per_call, 2
                    ),
                    "total_cpu_app_over_peer": round(total / peer.asterisk_cpu_ms_per_call, 2),
                    "recording_mean_diff_s": (
                        round(app.recording_mean_s - peer.recording_mean_s, 2)
                        if app.recording_mean_s and peer.recording_mean_s
                        else None
                    ),
                }
            )
    for flow in FLOWS:
        clean = [r for r in runs if r.flow == flow and r.clean]
        best = max(clean, key=lambda r: (r.rate, r.concurrent), default=None)
        out[f"highest_clean_{flow}"] = f"{best.rate}/{best.concurrent}" if best else None
    return out


# --- main --------------------------------------------------------------------------------------


def parse_steps(text: str) -> list[tuple[int, int]]:
    steps = []
    for part in text.split(","):
        rate, _, conc = part.strip().partition("/")
        if not (rate.isdigit() and conc.isdigit() and int(rate) > 0 and int(conc) > 0):
            raise argparse.ArgumentTypeError(f"a step is RATE/CONCURRENT, e.g. 10/100: {part!r}")
        steps.append((int(rate), int(conc)))
    return steps


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=parse_steps, default=parse_steps("10/100,20/200,30/300"))
    p.add_argument("--seconds", type=int, default=30, help="calls per run = rate x this")
    p.add_argument(
        "--flows", default=DEFAULT_FLOWS, help=f"peer,floor,app,agi (default {DEFAULT_FLOWS})"
    )
    p.add_argument("--climb", action="store_true", help="go on +10/+100 until a run fails")
    p.add_argument("--max-rate", type=int, default=60, help="--climb stops here")
    p.add_argument("--talk", type=float, default=7.0, help="seconds the caller talks after the 1")
    p.add_argument("--soak", action="store_true", help="10 calls/s for --soak-seconds, app only")
    p.add_argument("--soak-seconds", type=int, default=600)
    p.add_argument(
        "--trace-dir",
        type=Path,
        help="run the app under tracemalloc (bench/traced_app.py); snapshots here (bench/memdiff.py)",
    )
    p.add_argument("--snapshot-every", type=int, default=1000, help="with --trace-dir: calls")
    p.add_argument("--json", type=Path, help="write every figure here")
    p.add_argument("--keep-log", type=Path, help="copy the app's log (every run) here at the end")
    p.add_argument("--name", default="bench-live", help="lab-isolated NAME")
    p.add_argument("--profile", type=Path, help="py-spy profiles of the app (folder)")
    p.add_argument("--strace", type=Path, help="strace -f -c of the app, one file per run (folder)")
    p.add_argument(
        "--perf",
        type=Path,
        help="perf record -g of Asterisk, one file per run (folder); it slows Asterisk: no latency figures then",
    )
    p.add_argument(
        "--app-nice", type=int, default=0, help="the app's niceness (systemd Nice=); default 0"
    )
    p.add_argument(
        "--no-cgroups",
        action="store_true",
        help="no CPU groups: every thread competes alone (not how systemd runs the services)",
    )
    p.add_argument(
        "--app-weight",
        type=int,
        default=unit_cpu_weight(),
        help="the app's CPU group weight (Asterisk's and the callers' are 100); default: "
        "CPUWeight= of deploy/systemd/callconsent.service",
    )
    p.add_argument(
        "--app-src",
        type=Path,
        help="run the app from this src/ folder (e.g. an export of another commit: before/after)",
    )
    return p


def unit_cpu_weight() -> int:
    """``CPUWeight=`` of the shipped unit (systemd's default 100 if it sets none)."""
    unit = REPO / "deploy" / "systemd" / "callconsent.service"
    for line in unit.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "CPUWeight" and value.strip().isdigit():
            return int(value.strip())
    return DEFAULT_WEIGHT


def isolate(args: list[str], name: str) -> int:
    """Re-run this script inside scripts/lab-isolated NAME."""
    cmd = [
        str(REPO / "scripts" / "lab-isolated"),
        name,
        "--",
        "env",
        f"{INSIDE_ENV}=1",
        sys.executable,
        str(Path(__file__).resolve()),
        *args,
    ]
    return subprocess.run(cmd, check=False).returncode


def prepare(work: Path, talk: float) -> tuple[AsteriskLab, Caller, list[str]]:
    """The lab up, the peer's audio set; the caller, and the floor's playlist (notice, question)."""
    subprocess.run(
        [str(REPO / "scripts" / "asterisk-sandbox"), "up"], check=True, capture_output=True
    )
    lab = AsteriskLab.from_sandbox()
    for args in (
        ("prompts", "--config", str(DEMO_CONFIG)),
        ("agent", "set", LAB_ECHO_AGENT, "--consent", "given", "--actor", "lab:bench"),
    ):
        extra = () if args[0] == "prompts" else ("--config", str(DEMO_CONFIG))
        done = callconsent(*args, *extra)
        if done.returncode != 0:
            raise SystemExit(f"bench: callconsent {args[0]} failed:\n{done.stderr}")
    from callconsent.config import build_plan, load_config  # after the sys.path lines
    from tests.e2e.lab_app import route_timing

    config = load_config(DEMO_CONFIG, env={**os.environ, **LAB_ENV})
    plan = build_plan(config, ROUTE, sampled=lambda _rate: True)
    asked = next(p.consent for p in plan.purposes if p.consent is not None)
    media = {
        "LABPEER_NOTICE": [n.media for n in plan.notices],
        "LABPEER_QUESTION": [asked.question.media],
        "LABPEER_RETRY": [asked.retry.media],
    }
    for name, files in media.items():
        value = "&".join(m.removeprefix("sound:") for m in files)
        lab.cli(f"dialplan set global {name} {value}")
    timing = route_timing(config, ROUTE)
    playlist = [n.media for n in plan.notices] + [asked.question.media]
    return lab, make_caller(work, timing.question_end, talk), playlist


def main(argv: list[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(raw)
    if os.geteuid() != 0:
        print("bench: run as root (sipp's raw sockets, the isolated lab)", file=sys.stderr)
        return 2
    if (
        args.profile
        and not Path(shutil.which("py-spy") or Path(sys.executable).parent / "py-spy").exists()
    ):
        print("--profile needs py-spy: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    if os.environ.get(INSIDE_ENV) != "1":
        return isolate(raw, args.name)
    work = Path(tempfile.mkdtemp(prefix="callconsent-bench-"))
    groups: CpuGroups | None = None
    try:
        if not args.no_cgroups:  # as systemd runs the two services: a CPU group each
            weights = {"asterisk": DEFAULT_WEIGHT, "app": args.app_weight}
            groups = CpuGroups.open({**weights, "callers": DEFAULT_WEIGHT})
            groups.place("callers", os.getpid())  # sipp, started from here, with it
        lab, caller, playlist = prepare(work, args.talk)
        if groups is not None:
            groups.place("asterisk", asterisk_pid())
        for folder in (args.profile, args.perf, args.strace):
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)
        app = App(
            work / "app.log", args.profile, args.app_src, args.app_nice, args.trace_dir, args.strace
        )
        floor = FloorApp(work / "floor.log", playlist)
        if groups is not None:
            app.placed = floor.placed = lambda pid: groups.place("app", pid)
        result: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        result["cpus"] = os.cpu_count()
        result["cpu_groups"] = groups.describe() if groups is not None else None
        if groups is not None:
            print(f"CPU groups ({groups.describe()['cgroup']}), weights: {groups.weights}")
        if args.soak:
            result["soak"] = got = soak(
                lab, caller, work, app, args.soak_seconds, args.snapshot_every
            )
            print(json.dumps({k: v for k, v in got.items() if k != "samples"}, indent=2))
            print(
                f"soak: {got['calls_done']} calls in {got['seconds']} s; app RSS "
                f"{got['rss_kib_first']} -> {got['rss_kib_last']} KiB; slope "
                f"{got['rss_slope_kib_per_1000_calls']} KiB per 1,000 calls "
                f"({got['rss_slope_second_half_kib_per_1000_calls']} over the second half)"
            )
        else:
            flows = [f for f in FLOWS if f in args.flows.split(",")]
            steps = list(args.steps)
            runs: list[Run] = []
            i = 0
            while i < len(steps):
                rate, conc = steps[i]
                step_runs = []
                for flow in flows:
                    runner = floor if flow == "floor" else app
                    run = one_run(
                        flow, rate, conc, rate * args.seconds, lab, caller, work, runner, args.perf
                    )
                    step_runs.append(run)
                    runs.append(run)
                    print("\n".join(markdown([run]).splitlines()[2:]), flush=True)
                    if run.latency_ms:
                        if flow != "floor":  # the floor takes the key and leaves
                            print(f"  1 -> MixMonitor, split: {split(run)}", flush=True)
                        if flow in ("app", "floor"):
                            print(f"  notice, split: {notice_split(run)}", flush=True)
                    print(
                        f"  callers (sipp) CPU: {run.callers_cpu_ms_per_call} ms/call", flush=True
                    )
                    if run.loop_run_s is not None:
                        print(
                            f"  event loop: {run.loop_run_s} s running, {run.loop_wait_s} s"
                            " runnable but waiting for a CPU",
                            flush=True,
                        )
                i += 1
                last = i == len(steps)
                clean = all(r.clean for r in step_runs)
                if last and args.climb and clean and rate + 10 <= args.max_rate:
                    steps.append((rate + 10, conc + 100))
            result["runs"] = [asdict(r) | {"clean": r.clean} for r in runs]
            result["summary"] = summary(runs)
            print()
            print(markdown(runs))
            print(json.dumps(result["summary"], indent=2))
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
    finally:
        if args.keep_log is not None and (work / "app.log").exists():
            shutil.copyfile(work / "app.log", args.keep_log)
        if groups is not None:
            groups.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
