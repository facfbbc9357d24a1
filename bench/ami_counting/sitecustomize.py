"""Counts what ``callconsent serve`` reads from and sends to AMI (bench/ami_cost.py only).

Put this folder first on PYTHONPATH with ``CALLCONSENT_BENCH_AMI_COUNTS=FILE``: every message the
app's AMI reader gets (by event name, ``Response`` for an action's answer) and every action it
sends (by name) is counted, and the counts are written to FILE as JSON when the process exits.
Nothing of the app changes otherwise.
"""

from __future__ import annotations

import atexit
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

_OUT = os.environ.get("CALLCONSENT_BENCH_AMI_COUNTS")

if _OUT:
    from callconsent import ami

    received: Counter[str] = Counter()
    actions: Counter[str] = Counter()
    read_bytes = [0]

    original_data = ami.GuardedProtocol.data_received
    original_one = ami.GuardedProtocol._one
    original_send = ami.Ami._send

    def data_received(self: Any, data: bytes) -> None:
        read_bytes[0] += len(data)
        original_data(self, data)

    def one(self: Any, text: str) -> None:
        name = "?"
        for line in text.split("\r\n"):
            key, _, value = line.partition(":")
            if key.strip().lower() == "event":
                name = value.strip()
                break
            if key.strip().lower() == "response":
                name = "Response"
                break
        received[name] += 1
        original_one(self, text)

    async def send(self: Any, action: str, headers: Any) -> Any:
        actions[action] += 1
        return await original_send(self, action, headers)

    ami.GuardedProtocol.data_received = data_received  # type: ignore[method-assign]
    ami.GuardedProtocol._one = one  # type: ignore[method-assign]
    ami.Ami._send = send  # type: ignore[method-assign]

    def _dump() -> None:
        Path(_OUT).write_text(
            json.dumps(
                {"received": received, "actions": actions, "bytes_read": read_bytes[0]},
                indent=1,
            )
        )

    atexit.register(_dump)
