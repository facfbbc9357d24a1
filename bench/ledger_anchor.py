"""Micro-benchmark: what the ledger anchor costs per append (not part of the test run).

    .venv/bin/python bench/ledger_anchor.py [--appends 2000] [--dir DIR]

Appends the same realistic ``call``-sized entry ``--appends`` times to a fresh ledger, once with
the anchor (read its two head slots, compare, one 512-byte ``pwrite`` in place, no fsync) and
once with the anchor step switched off, alternating in rounds of 100 so both see the same
disk conditions. Prints the median and mean microseconds per append and the difference. The
ledger append itself fsyncs, so both columns include one fsync of the ledger.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from callconsent.evidence.ledger import Ledger

RECORD: dict[str, Any] = {
    "type": "note",
    "at": "2026-01-05T10:00:00.000Z",
    "call": {"uniqueid": "1767607200.123", "caller_number": "+4512345678"},
    "detail": "x" * 900,  # about the size of a call entry
}


class _NoAnchor(Ledger):
    def _anchor(self, *args: object, **kwargs: object) -> None:
        return None


def _round(ledger: Ledger, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        ledger.append(RECORD)
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: /tmp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        with_anchor = Ledger(Path(tmp) / "a.jsonl", validate=False)
        without = _NoAnchor(Path(tmp) / "b.jsonl", validate=False)
        timings: dict[str, list[float]] = {"with anchor": [], "without anchor": []}
        for _ in range(max(1, args.appends // 100)):
            timings["with anchor"] += _round(with_anchor, 100)
            timings["without anchor"] += _round(without, 100)
        for name, values in timings.items():
            print(
                f"{name:>15}: median {statistics.median(values) * 1e6:8.1f} us, "
                f"mean {statistics.fmean(values) * 1e6:8.1f} us per append ({len(values)} appends)"
            )
        delta = statistics.median(timings["with anchor"]) - statistics.median(
            timings["without anchor"]
        )
        print(f"anchor cost: {delta * 1e6:.1f} us per append (median difference)")


if __name__ == "__main__":
    main()
