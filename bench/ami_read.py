"""Micro-benchmark: reading one recorded call's AMI traffic (not a test).

    .venv/bin/python bench/ami_read.py [--calls 5000] [--rounds 5] [--app-src OTHER/src]

Feeds, ``--calls`` times, the bytes the app's AMI user receives for one recorded call of route
``support`` on the lab (``config/asterisk/manager.conf``'s event filter: 3 Hangup, 2 BridgeEnter,
2 BridgeLeave, 1 DialBegin, 1 UserEvent, and the answers to MixMonitor and Setvar; events shaped
as tests/support/ami_samples.py's captures) to the app's AMI reader
(:class:`callconsent._ami_protocol.GuardedProtocol` with ``ami_wire``, the events to
``Ami._on_message`` with the party watch's six handlers registered as no-ops, the answers to
panoramisk's action futures), in reads of 4 KiB. Prints the CPU µs per call, best of
``--rounds``. ``--app-src``: also run it on another tree's ``src/`` (before/after), alternating.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_SNAPSHOT = (
    "Channel: PJSIP/lab-caller-0000{n}\r\nChannelState: 6\r\nChannelStateDesc: Up\r\n"
    "CallerIDNum: +4520007101\r\nCallerIDName: sipp\r\nConnectedLineNum: support\r\n"
    "ConnectedLineName: <unknown>\r\nLanguage: da\r\nAccountCode: \r\n"
    "Context: callconsent-lab-inbound\r\nExten: support\r\nPriority: 7\r\n"
    "Uniqueid: 1796455236.{n}\r\nLinkedid: 1796455236.0\r\n"
)
_BRIDGE = (
    "BridgeUniqueid: a2867057-1a6a-4295-98be-320c9e0ac06e\r\nBridgeType: basic\r\n"
    "BridgeTechnology: simple_bridge\r\nBridgeCreator: <unknown>\r\nBridgeName: <unknown>\r\n"
    "BridgeNumChannels: 2\r\nBridgeVideoSourceMode: none\r\n"
)


def call_traffic() -> bytes:
    events = []
    for n in (1, 2):
        events.append("Event: BridgeEnter\r\nPrivilege: call,all\r\n" + _BRIDGE + _SNAPSHOT)
        events.append("Event: BridgeLeave\r\nPrivilege: call,all\r\n" + _BRIDGE + _SNAPSHOT)
        events[-2] = events[-2].format(n=n)
        events[-1] = events[-1].format(n=n)
    dest = _SNAPSHOT.format(n=3).replace("\r\n", "\r\nDest").removesuffix("Dest")
    events.append(
        "Event: DialBegin\r\nPrivilege: call,all\r\n"
        + _SNAPSHOT.format(n=0)
        + "Dest"
        + dest
        + "DialString: agent1\r\n"
    )
    events.append(
        "Event: UserEvent\r\nPrivilege: user,all\r\n"
        + _SNAPSHOT.format(n=3)
        + "UserEvent: CallconsentAgent\r\nCaller: 1796455236.0\r\nAgent: agent1\r\nFlag: 1\r\n"
    )
    for n in (0, 3, 4):
        events.append(
            "Event: Hangup\r\nPrivilege: call,all\r\n"
            + _SNAPSHOT.format(n=n)
            + "Cause: 16\r\nCause-txt: Normal Clearing\r\n"
        )
    answers = [
        "Response: Success\r\nActionID: a-1\r\nMessage: Started\r\n",
        "Response: Success\r\nActionID: a-2\r\nMessage: Variable Set\r\n",
    ]
    return "".join(m + "\r\n" for m in (*events, *answers)).encode()


def measure(calls: int) -> float:
    """CPU µs per call of the app's AMI reader on :func:`call_traffic` (this tree's src)."""
    from callconsent import ami

    async def run() -> float:
        client = ami.Ami(host="127.0.0.1", port=1, username="u", password="p")  # noqa: S106  # never connects
        for event in ("BridgeEnter", "BridgeLeave", "DialBegin", "Hangup", "Hold", "Unhold"):
            client.on_event(event, lambda _headers: None)
        protocol = client_protocol(client)
        data = call_traffic()
        chunks = [data[i : i + 4096] for i in range(0, len(data), 4096)]
        loop = asyncio.get_running_loop()
        start = time.process_time()
        for _ in range(calls):
            for action_id in ("a-1", "a-2"):
                protocol.responses[action_id] = _Answer(loop, action_id)
            for chunk in chunks:
                protocol.data_received(chunk)
        return (time.process_time() - start) / calls * 1e6

    return asyncio.run(run())


def client_protocol(client: object) -> object:
    """The protocol the app's AMI connection reads with (what ``Ami.connect`` gives panoramisk
    as its ``protocol_factory``)."""
    from callconsent import ami

    protocol = ami.GuardedProtocol(client._on_message)  # type: ignore[attr-defined]
    protocol.responses = {}
    protocol.data_received(b"Asterisk Call Manager/11.0.0\r\n")
    return protocol


class _Answer:
    """What panoramisk keeps for an action in flight: done at its one answer."""

    def __init__(self, loop: asyncio.AbstractEventLoop, action_id: str) -> None:
        self.id, self.action_id = action_id, None
        self.future = loop.create_future()

    def add_message(self, message: object) -> bool:
        self.future.set_result(message)
        return True


def _child(src: Path, calls: int) -> float:
    code = f"import sys; sys.path[:0] = [{str(src)!r}, {str(REPO)!r}]; "
    code += f"from bench.ami_read import measure; print(measure({calls}))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(src)},
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=5000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--app-src", type=Path, help="another tree's src/ (before/after)")
    args = p.parse_args()
    trees = {"this tree": REPO / "src"}
    if args.app_src is not None:
        trees = {"--app-src": args.app_src.resolve(), **trees}
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        for name, src in trees.items():
            us = _child(src, args.calls)
            best[name] = min(best.get(name, us), us)
    for name, us in best.items():
        print(f"{name}: {us:.1f} us CPU per call (best of {args.rounds})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
