"""Faults on the live path, on the real Asterisk with real SIP callers: one table (issue 11).

    sudo .venv/bin/python bench/faults.py                 # a private lab (scripts/lab-isolated)
    sudo .venv/bin/python bench/faults.py --shared        # the running shared sandbox
    sudo .venv/bin/python bench/faults.py -k kill         # only the cases whose module matches

It runs the fault tests (``tests/e2e/test_faults_*.py``) with pytest; each test module appends
one row per fault case to a report file (``CALLCONSENT_FAULTS_REPORT``), and this prints them as
a table: the case, calls placed, calls that reached their destination, calls recorded (a final
sidecar with audio), violations (a call that never reached its destination, a recording for a
purpose the call had no basis for, audio left without a final sidecar after ``reconcile``) and
what the calls' outcomes or the measurements were. Exit status: pytest's (0 when every fault test
passed). Needs root and a built sandbox (``scripts/asterisk-sandbox build``), like the e2e tests.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MODULES = sorted(
    str(p.relative_to(REPO)) for p in (REPO / "tests" / "e2e").glob("test_faults_*.py")
)
COLUMNS = ("case", "placed", "reached", "recorded", "violations", "note")


def _command(report: Path, modules: list[str], shared: bool, name: str) -> list[str]:
    python = sys.executable
    pytest = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *modules]
    if shared:
        return pytest
    inner = (
        "scripts/asterisk-sandbox up >/dev/null && "
        f"CALLCONSENT_FAULTS_REPORT={report} {' '.join(pytest)}"
    )
    return [str(REPO / "scripts" / "lab-isolated"), name, "--", "bash", "-c", inner]


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = [str(row.get(c, "")).replace("|", "/") for c in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", action="store_true", help="use the running shared sandbox")
    parser.add_argument("--name", default="faults", help="lab-isolated NAME (default: faults)")
    parser.add_argument("-k", dest="only", help="run only modules whose name contains this")
    args = parser.parse_args(argv)
    modules = [m for m in MODULES if not args.only or args.only in m]
    if not modules:
        parser.error(f"no fault test module matches {args.only!r}")
    with tempfile.TemporaryDirectory(prefix="callconsent-faults-") as tmp:
        report = Path(tmp) / "report.jsonl"
        env = {**os.environ, "CALLCONSENT_FAULTS_REPORT": str(report)}
        proc = subprocess.run(
            _command(report, modules, args.shared, args.name), cwd=REPO, env=env, check=False
        )
        rows = (
            [json.loads(line) for line in report.read_text().splitlines() if line.strip()]
            if report.exists()
            else []
        )
    print()
    print(table(rows))
    details = [d for row in rows for d in row.get("details", [])]
    if details:
        print("\nviolations:")
        print("\n".join(f"- {d}" for d in details))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
