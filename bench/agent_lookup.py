"""CPU per agent-consent lookup (the agent decision of every recorded call; not a test).

    .venv/bin/python bench/agent_lookup.py [--agents 300] [--lookups 2000]

A registry of ``--agents`` agents, settled (its last change older than the registry's racy
window); ``registry.lookup`` as the bridge handler and the party watch call it (a stat on the
event loop while the file is unchanged), ``AgentRegistry.get`` in a worker thread (how they
called it before) and a full ``load`` (what every lookup cost before the parse was reused).
All on uvloop, as ``serve`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import uvloop

from callconsent.agents.registry import SETTLED_NS, AgentRegistry, lookup


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--agents", type=int, default=300)
    p.add_argument("--lookups", type=int, default=2000)
    args = p.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="callconsent-agents-"))
    reg = AgentRegistry(
        folder / "agents.json",
        folder / "ledger.jsonl",
        clock_ns=lambda: time.time_ns() + SETTLED_NS,  # as if the last change was long ago
    )
    now = datetime.now(UTC)
    for i in range(args.agents):
        reg.set(f"agent{i}", "given", actor="lab:bench", now=now)

    async def threaded() -> None:
        for _ in range(args.lookups):
            await asyncio.to_thread(reg.get, "agent7")

    async def looked_up() -> None:
        for _ in range(args.lookups):
            await lookup(reg, "agent7")

    for name, run in (
        ("lookup (on the loop while unchanged)", lambda: uvloop.run(looked_up())),
        ("get (in a worker thread)", lambda: uvloop.run(threaded())),
        ("load (a full parse)", lambda: [reg.load() for _ in range(args.lookups)]),
    ):
        started = time.process_time()
        run()
        per = (time.process_time() - started) / args.lookups * 1e6
        print(f"{name}: {per:.1f} us CPU per lookup ({args.agents} agents)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
