"""System calls per recorded call of the evidence work (bench/hotpath.py under strace; not a test).

    .venv/bin/python bench/hotpath_syscalls.py [--calls 600] [--concurrent 30] [--hotpath FILE]

Runs ``bench/hotpath.py`` under ``strace -f -c`` twice, with ``--calls`` calls and with a
sixth of them, and prints the difference per call by kind: the start-up, imports and warm-up
cancel out. strace slows every call down, so it changes how many calls coincide (and share a
group commit or a directory fsync): compare counts at equal ``--concurrent``, and
``--concurrent 1`` for counts that do not depend on timing. ``--hotpath``: another tree's
``bench/hotpath.py`` (it runs that tree's src/), for an A/B.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def counts(hotpath: Path, calls: int, concurrent: int) -> dict[str, int]:
    with tempfile.NamedTemporaryFile(prefix="callconsent-strace-", suffix=".txt") as out:
        subprocess.run(
            [
                "strace",
                "-f",
                "-c",
                "-o",
                out.name,
                sys.executable,
                str(hotpath),
                "--calls",
                str(calls),
                "--concurrent",
                str(concurrent),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        text = Path(out.name).read_text()
    result: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
            result[parts[-1]] = int(parts[3])
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=600)
    p.add_argument("--concurrent", type=int, default=30)
    p.add_argument("--hotpath", type=Path, default=REPO / "bench" / "hotpath.py")
    args = p.parse_args()
    few = max(args.calls // 6, 1)
    big, small = (
        counts(args.hotpath, args.calls, args.concurrent),
        counts(args.hotpath, few, args.concurrent),
    )
    n = args.calls - few
    per = {k: (big.get(k, 0) - small.get(k, 0)) / n for k in big.keys() | small.keys()}
    rows = sorted(((v, k) for k, v in per.items() if abs(v) >= 0.05), reverse=True)
    print(f"syscalls per call ({args.calls} - {few} calls, {args.concurrent} at a time):")
    for v, k in rows:
        print(f"  {k:16s} {v:8.1f}")
    print(f"  {'total':16s} {sum(v for v, _ in rows):8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
