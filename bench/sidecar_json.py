"""Micro-benchmark: encoding and copying one recorded call's sidecars (not a test).

    .venv/bin/python bench/sidecar_json.py [--calls 3000] [--rounds 3]

Captures the three sidecar documents the evidence store writes for one call of
``bench/hotpath.py`` (created, the agent's decision, final) and encodes them ``--calls`` times
with ``fsio.dumps(doc, indent=2)`` (what every sidecar write does) and with ``json.dumps`` and
the same options (json's pure-Python indented encoder, what it did before); checks both give
the same bytes and prints the CPU µs per call, best of ``--rounds``. Also copies each
of the first two documents twice (the four copies of a call's store work: the remembered
sidecar read and the agent's decision applied, the remembered sidecar read and made final) with
``copy.deepcopy`` (before) and ``fsio.copy_document``.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "src")]

from bench import hotpath  # noqa: E402
from callconsent.evidence import fsio, sidecar  # noqa: E402


def call_sidecars() -> list[dict[str, Any]]:
    """The sidecar documents of one bench/hotpath.py call, as written."""
    docs: list[dict[str, Any]] = []
    real = sidecar.atomic_write_json

    def capture(path: Path, obj: Any, **options: Any) -> Any:
        docs.append(json.loads(json.dumps(obj)))
        return real(path, obj, **options)

    folder = Path(tempfile.mkdtemp(prefix="callconsent-sidecar-json-", dir="/var/tmp"))
    sidecar.atomic_write_json = capture  # type: ignore[assignment]  # a benchmark, never the app
    try:
        asyncio.run(hotpath.run(folder, 1, 1))
    finally:
        sidecar.atomic_write_json = real  # type: ignore[assignment]
        shutil.rmtree(folder, ignore_errors=True)
    return docs


def _json(doc: Any) -> str:
    return json.dumps(doc, ensure_ascii=True, allow_nan=False, indent=2, separators=(",", ": "))


def _fsio(doc: Any) -> str:
    return fsio.dumps(doc, indent=2)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=3000)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    docs = call_sidecars()
    assert all(_fsio(d) == _json(d) for d in docs), "fsio.dumps differs from json.dumps"
    twice = [d for d in docs[:2] for _ in range(2)]
    encoders: dict[str, tuple[Callable[[Any], object], list[dict[str, Any]]]] = {
        "json.dumps": (_json, docs),
        "fsio.dumps": (_fsio, docs),
        "copy.deepcopy (4 copies)": (copy.deepcopy, twice),
        "fsio.copy_document (4 copies)": (fsio.copy_document, twice),
    }
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        for name, (encode, inputs) in encoders.items():
            started = time.process_time()
            for _ in range(args.calls):
                for doc in inputs:
                    encode(doc)
            us = (time.process_time() - started) / args.calls * 1e6
            best[name] = min(best.get(name, us), us)
    sizes = ", ".join(str(len(_fsio(d))) for d in docs)
    print(f"one call's sidecars: {len(docs)} of {sizes} bytes")
    for name, us in best.items():
        print(f"{name}: {us:.0f} us CPU per call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
