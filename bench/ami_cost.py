"""What AMI costs per call: events and actions, and Asterisk's CPU (not part of the test run).

    bench/ami_cost.py --name NAME [--rate 5 --concurrent 50 --calls 100]
                      [--runs peer,peer-ami,app,count] [--repeat 2] [--disabledevents LIST]

Run as root from the repository; it re-runs itself inside ``scripts/lab-isolated NAME`` and uses
bench/live.py's lab and callers (route ``support``, every caller presses 1 and talks). Runs:

* ``peer``: the pure-dialplan peer flow, no AMI session (as bench/live.py's peer);
* ``peer-ami``: the same peer flow with one idle AMI session logged in as the app's user with the
  app's event mask (``call,user``): what Asterisk spends on AMI without the app;
* ``app``: route ``support`` with ``callconsent serve``;
* ``count``: as ``app``, plus a tap session (user ``benchtap``, every event, no filter, added to
  the private lab's manager.conf) that counts every event Asterisk formats, and the app run with
  bench/ami_counting/sitecustomize.py: every message its AMI reader gets and every action it
  sends. Its Asterisk CPU includes the tap and is not comparable;
* ``count-peer``: the tap on the peer flow (what the same call formats without the app);
* ``loop-none``, ``loop-ami``, ``loop-ami-disabled``, ``loop-ari``, ``loop-ari-filtered``: no
  calls; a Local channel runs ``--loops`` iterations of a two-step dialplan loop with one Set
  (Asterisk's CPU per iteration) with no AMI session, with the app's AMI session, with that
  session and ``--disabledevents``, with an ARI app subscribed to the channel, and with that
  app's event filter set to the events callconsent reads;
* ``rest``: ``--loops`` ARI requests (a channel variable read) over one connection: Asterisk's
  CPU per REST request.

``--disabledevents LIST`` writes ``disabledevents = LIST`` into the private lab's manager.conf
(Asterisk 21+: those events are never formatted, for any AMI user) before the runs.
Per run: Asterisk CPU ms per call (``/proc/<pid>/stat``), app CPU ms per call, and (count) the
per-call counts by event name. ``--repeat`` runs the list that many times (alternating).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from bench.live import prepare  # noqa: E402
from bench.live_app import App, asterisk_pid, cpu_seconds, cpu_split  # noqa: E402
from bench.live_lab import ROUTE, run_sipp, wait_settled  # noqa: E402

INSIDE_ENV = "CALLCONSENT_BENCH_ISOLATED"
CHROOT_ETC = Path("/var/cache/callconsent-sandbox/rootfs/etc/asterisk")
TAP_USER = "benchtap"
TAP_SECRET = "benchtap-lab"  # noqa: S105  # the private lab only
COUNTING = REPO / "bench" / "ami_counting"


class Tap:
    """An AMI session in a thread, counting events by name (``events`` decides its mask)."""

    def __init__(self, user: str, secret: str, events: str) -> None:
        self.counts: Counter[str] = Counter()
        self.detail: Counter[str] = Counter()  # VarSet by variable, Newexten by context
        self.bytes = 0
        self._sock = socket.create_connection(("127.0.0.1", 5038), timeout=5)
        self._sock.sendall(
            f"Action: Login\r\nUsername: {user}\r\nSecret: {secret}\r\nEvents: {events}\r\n\r\n".encode()
        )
        self._stop = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        buf = b""
        self._sock.settimeout(0.5)
        while not self._stop:
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                return
            self.bytes += len(data)
            buf += data
            *parts, buf = buf.split(b"\r\n\r\n")
            for raw in parts:
                self._count(raw.split(b"\r\n"))

    def _count(self, lines: list[bytes]) -> None:
        name = next((ln[6:].strip() for ln in lines if ln.startswith(b"Event:")), None)
        if name is None:
            return
        self.counts[name.decode("utf-8", "replace")] += 1
        key = {b"VarSet": b"Variable:", b"Newexten": b"Context:"}.get(name)
        if key is not None:
            value = next((ln[len(key) :].strip() for ln in lines if ln.startswith(key)), b"")
            self.detail[f"{name.decode()} {value.decode('utf-8', 'replace')}"] += 1

    def close(self) -> Counter[str]:
        time.sleep(1.0)
        self._stop = True
        self._thread.join(timeout=5)
        self._sock.close()
        return self.counts


_ORIGINAL: dict[str, str] = {}


def configure_manager(lab: Any, disabled: str | None) -> None:
    conf = CHROOT_ETC / "manager.conf"
    text = _ORIGINAL.setdefault("manager", conf.read_text())
    if disabled:
        text = text.replace("[general]\n", f"[general]\ndisabledevents = {disabled}\n", 1)
    text += (
        f"\n[{TAP_USER}]\nsecret = {TAP_SECRET}\ndeny = 0.0.0.0/0.0.0.0\n"
        "permit = 127.0.0.1/255.255.255.255\nread = all\nwrite = system\n"
    )
    conf.write_text(text)
    lab.cli("module reload manager")


#: A dialplan loop of known size: LOOP_PRIORITIES priorities and one VarSet per iteration.
LOOP_CONTEXT = """
[benchloop]
exten => s,1,Set(i=0)
 same => n(top),Set(i=$[${i} + 1])
 same => n,GotoIf($[${i} < ${LOOPS}]?top)
 same => n,Hangup()
[benchnull]
exten => s,1,Wait(600)
[benchanswer]
exten => s,1,Answer()
 same => n,Wait(600)
[benchloopwait]
exten => s,1,Wait(1)
 same => n,Goto(benchloop,s,1)
"""


async def _ari_loop(*, filtered: bool) -> int:
    """An ARI app (its websocket open, with the app's event filter when ``filtered``) subscribed
    to a channel that runs the loop; returns the events it received."""
    import aiohttp  # the app's own dependency

    from callconsent.stasis import USED_EVENTS

    base, app = "http://127.0.0.1:8088/ari", "benchari"
    auth = aiohttp.BasicAuth("callconsent", "callconsent-lab")
    received = 0
    async with aiohttp.ClientSession(auth=auth) as http:
        ws = await http.ws_connect(f"ws://127.0.0.1:8088/ari/events?app={app}&subscribeAll=false")
        if filtered:
            body = {"allowed": [{"type": t} for t in USED_EVENTS]}
            async with http.put(f"{base}/applications/{app}/eventFilter", json=body) as r:
                r.raise_for_status()
        params = {
            "endpoint": "Local/s@benchanswer",
            "context": "benchloopwait",
            "extension": "s",
            "priority": "1",
        }
        async with http.post(f"{base}/channels", params=params) as r:
            got = await r.json()
            if "id" not in got:
                raise SystemExit(f"bench: ARI originate failed: {got}")
            channel = got["id"]
        async with http.post(
            f"{base}/applications/{app}/subscription", params={"eventSource": f"channel:{channel}"}
        ) as r:
            r.raise_for_status()
        while True:
            msg = await ws.receive(timeout=120)
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            received += 1
            if '"ChannelDestroyed"' in msg.data and channel in msg.data:
                break
        await ws.close()
    return received


async def _rest_requests(requests: int) -> None:
    """``requests`` ARI requests as the app makes them (one HTTP connection kept open): a
    channel variable read on a waiting channel."""
    import aiohttp

    base = "http://127.0.0.1:8088/ari"
    auth = aiohttp.BasicAuth("callconsent", "callconsent-lab")
    async with aiohttp.ClientSession(auth=auth) as http:
        params = {"endpoint": "Local/s@benchanswer", "context": "benchnull", "extension": "s"}
        async with http.post(f"{base}/channels", params=params) as r:
            channel = (await r.json())["id"]
        for _ in range(requests):
            async with http.get(
                f"{base}/channels/{channel}/variable", params={"variable": "CHANNEL(state)"}
            ) as r:
                await r.read()
        async with http.delete(f"{base}/channels/{channel}") as r:
            await r.read()


def rest_run(args: argparse.Namespace, lab: Any) -> dict[str, Any]:
    """Asterisk's CPU per ARI REST request (``--loops`` requests)."""
    conf = CHROOT_ETC / "extensions.conf"
    if "[benchloop]" not in conf.read_text():
        conf.write_text(conf.read_text() + LOOP_CONTEXT)
        lab.cli("dialplan reload")
    ast = asterisk_pid()
    ast0 = cpu_seconds(ast)
    started = time.monotonic()
    asyncio.run(_rest_requests(args.loops))
    cpu = cpu_seconds(ast) - ast0
    return {
        "kind": "rest",
        "requests": args.loops,
        "seconds": round(time.monotonic() - started, 2),
        "asterisk_cpu_us_per_request": round(cpu * 1e6 / args.loops, 1),
    }


def loop_run(kind: str, args: argparse.Namespace, lab: Any) -> dict[str, Any]:
    """Asterisk's CPU for ``--loops`` iterations of a two-priority dialplan loop (one Set each):
    the cost of a dialplan step and its VarSet, with or without an AMI session."""
    conf = CHROOT_ETC / "extensions.conf"
    if "[benchloop]" not in conf.read_text():
        conf.write_text(conf.read_text() + LOOP_CONTEXT)
        lab.cli("dialplan reload")
    configure_manager(lab, args.disabledevents if kind.endswith("-disabled") else None)
    session = None
    if kind.startswith("loop-ami"):
        session = Tap("callconsent", "callconsent-lab", "call,user")
    time.sleep(0.5)
    ast = asterisk_pid()
    lab.cli(f"dialplan set global LOOPS {args.loops}")
    ast0 = cpu_seconds(ast)
    started = time.monotonic()
    if kind.startswith("loop-ari"):  # the loop's channel subscribed by an ARI app
        events = asyncio.run(_ari_loop(filtered=kind == "loop-ari-filtered"))
        cpu = cpu_seconds(ast) - ast0
        return {
            "kind": kind,
            "loops": args.loops,
            "seconds": round(time.monotonic() - started, 2),
            "asterisk_cpu_us_per_iteration": round(cpu * 1e6 / args.loops, 2),
            "ari_events_received": events,
        }
    lab.cli("channel originate Local/s@benchloop extension s@benchnull")
    time.sleep(0.2)
    while not re.search(r"(?m)^0 active channel", lab.cli("core show channels count")):
        time.sleep(0.5)
    cpu = cpu_seconds(ast) - ast0
    out = {
        "kind": kind,
        "loops": args.loops,
        "seconds": round(time.monotonic() - started, 2),
        "asterisk_cpu_us_per_iteration": round(cpu * 1e6 / args.loops, 2),
    }
    if session is not None:
        out["events_to_session"] = sum(session.close().values())
    return out


class CountingApp(App):
    """The app run with bench/ami_counting on its path: writes its AMI counts at exit."""

    def __init__(self, *args: Any, counts: Path, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.counts = counts

    def _env(self) -> dict[str, str]:
        env = super()._env()
        path = [str(COUNTING), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
        env["PYTHONPATH"] = os.pathsep.join(path)
        env["CALLCONSENT_BENCH_AMI_COUNTS"] = str(self.counts)
        return env


def one(kind: str, args: argparse.Namespace, lab: Any, caller: Any, work: Path) -> dict[str, Any]:
    tag = f"c{uuid.uuid4().hex[:8]}"
    counts_file = work / f"{tag}-app-ami.json"
    app: App | None = None
    if kind in ("app", "count"):
        app = CountingApp(work / f"{tag}-app.log", None, args.app_src, counts=counts_file)
    tap = idle = None
    app_pid = app.start() if app else None
    if kind in ("count", "count-peer"):
        tap = Tap(TAP_USER, TAP_SECRET, "on")
    if kind == "peer-ami":
        idle = Tap("callconsent", "callconsent-lab", "call,user")
    time.sleep(0.5)
    ast = asterisk_pid()
    mark = lab.log_offset()
    perf = None
    if args.perf:  # Asterisk's own stacks (software clock: no hardware counters in the VM)
        args.perf.mkdir(parents=True, exist_ok=True)
        perf = subprocess.Popen(
            [
                *("perf", "record", "-e", "cpu-clock", "-F", "499", "-g", "-p", str(ast)),
                *("-o", str(args.perf / f"{kind}-{tag}.data")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ast0 = cpu_seconds(ast)
    app0 = sum(cpu_split(app_pid)) if app_pid else 0.0
    target = "peer" if kind in ("peer", "peer-ami", "count-peer") else ROUTE
    counters, seconds, _ = run_sipp(
        caller, target, args.rate, args.concurrent, args.calls, work, tag
    )
    placed = max(1, counters["created"])
    wait_settled(lab, mark, tag, counters["created"], app_pid is not None)
    if perf is not None:
        perf.send_signal(signal.SIGINT)
        perf.wait(timeout=60)
    out: dict[str, Any] = {
        "kind": kind,
        "placed": counters["created"],
        "ok": counters["ok"],
        "failed": counters["failed"],
        "asterisk_cpu_ms_per_call": round((cpu_seconds(ast) - ast0) * 1000 / placed, 1),
    }
    if app_pid and app:
        out["app_cpu_ms_per_call"] = round((sum(cpu_split(app_pid)) - app0) * 1000 / placed, 2)
        app.stop()
    if idle is not None:
        out["idle_session_events_per_call"] = round(sum(idle.close().values()) / placed, 2)
    if tap is not None:
        every = tap.close()
        out["asterisk_events_per_call"] = round(sum(every.values()) / placed, 1)
        out["asterisk_event_bytes_per_call"] = round(tap.bytes / placed)
        out["asterisk_events_by_name"] = {k: round(v / placed, 2) for k, v in every.most_common()}
        out["asterisk_varset_newexten_detail"] = {
            k: round(v / placed, 2) for k, v in tap.detail.most_common(60)
        }
    if counts_file.exists():
        got = json.loads(counts_file.read_text())
        # the counts include the login's resync (agent sync, markers): reported per call as is
        out["app_received_per_call"] = {
            k: round(v / placed, 2) for k, v in Counter(got["received"]).most_common()
        }
        out["app_actions_per_call"] = {
            k: round(v / placed, 2) for k, v in Counter(got["actions"]).most_common()
        }
        out["app_received_total"] = sum(got["received"].values())
        out["app_actions_total"] = sum(got["actions"].values())
        out["app_bytes_read_per_call"] = round(got["bytes_read"] / placed)
    out["seconds"] = round(seconds, 1)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--name", required=True)
    p.add_argument("--rate", type=int, default=5)
    p.add_argument("--concurrent", type=int, default=50)
    p.add_argument("--calls", type=int, default=100)
    p.add_argument("--runs", default="count")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--talk", type=float, default=7.0)
    p.add_argument("--disabledevents")
    p.add_argument("--app-src", type=Path)
    p.add_argument("--json", type=Path)
    p.add_argument("--loops", type=int, default=100000, help="iterations of a loop run")
    p.add_argument("--perf", type=Path, help="perf record Asterisk per run into this folder")
    args = p.parse_args()
    if os.environ.get(INSIDE_ENV) != "1":
        cmd = [str(REPO / "scripts" / "lab-isolated"), args.name, "--", "env", f"{INSIDE_ENV}=1"]
        return subprocess.run([*cmd, sys.executable, *sys.argv], check=False).returncode
    work = Path(tempfile.mkdtemp(prefix="callconsent-amicost-"))
    lab, caller, _playlist = prepare(work, args.talk)
    configure_manager(lab, args.disabledevents)
    results = []
    for _ in range(args.repeat):
        for kind in args.runs.split(","):
            if kind == "rest":
                got = rest_run(args, lab)
            elif kind.startswith("loop"):
                got = loop_run(kind, args, lab)
                configure_manager(lab, args.disabledevents)
            else:
                got = one(kind, args, lab, caller, work)
            results.append(got)
            print(json.dumps(got), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
