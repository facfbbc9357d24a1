"""Micro-benchmark of the ARI REST client's CPU per request (not a test).

    .venv/bin/python bench/ari_rest.py [--requests 6000] [--concurrent 10] [--rounds 3]
                                       [--app-src DIR] [--ari URL --user U --password P]

A server process that answers as Asterisk's HTTP server does (HTTP/1.1 keep-alive,
``Content-Length`` bodies: 204 for POST/DELETE, 201 + a Playback for play, 200 + JSON for GET)
listens on 127.0.0.1; a client process runs the real :class:`callconsent.ari.AriClient` on
uvloop (as ``serve`` does) and sends ``--requests`` requests, ``--concurrent`` at a time, in the
mix of one recorded call (answer, play, set_variables, subscribe, continue, unsubscribe). The
client's process CPU time (user + system, all threads) is divided by the requests sent; the
server's CPU is not counted. With ``--app-src DIR`` (a ``src/`` folder, e.g. from
``git archive main src``) each round runs that tree's client too, alternating, for an A/B.
``--ari URL``: against a real Asterisk instead (``GET /ari/asterisk/info``, a 439-byte JSON
answer, six per "call").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.raw_http import take_request  # noqa: E402

_PLAYBACK = json.dumps(
    {
        "id": "pb-1764000000.42-notice",
        "media_uri": "sound:/var/lib/callconsent/prompts/da/lab-training-v1",
        "target_uri": "channel:1764000000.42",
        "language": "da",
        "state": "queued",
    }
).encode()
_APP = json.dumps({"name": "callconsent", "channel_ids": [], "bridge_ids": []}).encode()


def _answer(status: int, reason: str, body: bytes = b"") -> bytes:
    head = (
        f"HTTP/1.1 {status} {reason}\r\nServer: Asterisk\r\n"
        "Date: Sat, 05 Dec 2026 12:00:00 GMT\r\nCache-Control: no-cache, no-store\r\n"
        f"Content-Length: {len(body)}\r\n"
    )
    if body:
        head += "Content-type: application/json\r\n"
    return head.encode() + b"\r\n" + body


class _Server(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        while (taken := take_request(self.buffer)) is not None:
            request, self.buffer = taken
            method, target, _ = request.split(b"\r\n", 1)[0].split(b" ")
            if b"/play/" in target:
                self.transport.write(_answer(201, "Created", _PLAYBACK))
            elif b"/subscription" in target:
                self.transport.write(_answer(200, "OK", _APP))
            elif method == b"GET":
                self.transport.write(_answer(200, "OK", b'{"value":"x"}'))
            else:
                self.transport.write(_answer(204, "No Content"))


async def _serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Server, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


async def _client(
    url: str, user: str, password: str, requests: int, concurrent: int, real: bool
) -> dict[str, float]:
    from callconsent.ari import AriClient

    ari = AriClient(url, user, password, "callconsent")
    calls = requests // 6
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(calls):
        queue.put_nowait(i)

    async def one_call(i: int) -> None:
        if real:  # a real Asterisk has no such channel: a read-only request that answers 200
            for _ in range(6):
                await ari.asterisk_info()
            return
        cid = f"1764000000.{i}"
        await ari.answer(cid)
        await ari.play(cid, "sound:/var/lib/callconsent/prompts/da/lab", f"pb-{cid}", lang="da")
        await ari.set_variables(cid, [("CC_RESULT", "recorded"), ("CC_REF", "2026/12/05/x")])
        await ari.subscribe(f"channel:{cid}")
        await ari.continue_in_dialplan(cid)
        await ari.unsubscribe(f"channel:{cid}")

    async def worker() -> None:
        while not queue.empty():
            await one_call(queue.get_nowait())

    await one_call(-1)  # warm up: imports, first connection
    started_cpu, started = time.process_time(), time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.gather(*(worker() for _ in range(concurrent)))
    cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    await ari.close()
    sent = calls * 6
    return {
        "requests": sent,
        "cpu_us_per_request": cpu / sent * 1e6,
        "user_us_per_request": (after.ru_utime - usage.ru_utime) / sent * 1e6,
        "sys_us_per_request": (after.ru_stime - usage.ru_stime) / sent * 1e6,
        "wall_s": wall,
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_client(src: Path, url: str, args: argparse.Namespace) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = [sys.executable, __file__, "--client", url, "--user", args.user]
    command += ["--password", args.password, *(["--real"] if args.ari else [])]
    command += ["--requests", str(args.requests), "--concurrent", str(args.concurrent)]
    done = subprocess.run(command, env=env, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"client from {src} failed:\n{done.stderr[-2000:]}")
    return dict(json.loads(done.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--concurrent", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--app-src", type=Path, help="a src/ folder to compare against")
    parser.add_argument(
        "--ari",
        help="a real Asterisk's ARI URL (e.g. in scripts/lab-isolated): no server is started, "
        "and the requests are read-only ones that answer 200 (asterisk/info, the application)",
    )
    parser.add_argument("--user", default="asterisk")
    parser.add_argument("--password", default="secret")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--real", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve))
        return
    if args.client:
        import uvloop

        result = uvloop.run(
            _client(
                args.client, args.user, args.password, args.requests, args.concurrent, args.real
            )
        )
        print(json.dumps(result))
        return
    server = None
    url = args.ari
    if url is None:
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
        time.sleep(0.5)
    try:
        trees = {"branch": REPO / "src"}
        if args.app_src is not None:
            trees = {"base": args.app_src.resolve(), **trees}
        results: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
        for _ in range(args.rounds):
            for name, src in trees.items():
                results[name].append(_run_client(src, url, args))
    finally:
        if server is not None:
            server.terminate()
            server.wait()
    print(f"{args.requests} requests, {args.concurrent} at a time, {args.rounds} rounds")
    print("| tree | CPU µs/request (median) | user | sys | each round |")
    print("|---|---|---|---|---|")
    for name, runs in results.items():
        cpu = [r["cpu_us_per_request"] for r in runs]
        user = statistics.median(r["user_us_per_request"] for r in runs)
        system = statistics.median(r["sys_us_per_request"] for r in runs)
        each = ", ".join(f"{c:.0f}" for c in cpu)
        print(f"| {name} | {statistics.median(cpu):.0f} | {user:.0f} | {system:.0f} | {each} |")


if __name__ == "__main__":
    main()
