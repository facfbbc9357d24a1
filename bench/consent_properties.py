"""Benchmark of the consent machine's properties (issue 11; not part of the test run).

    .venv/bin/python bench/consent_properties.py [--walks 100000] [--seed 11] [--max-steps 40]

Runs ``--walks`` random event sequences (tests/support/consent_walk.py: ten plans, up to
``--max-steps`` events drawn from prompt starts/ends/failures, stale events, digits, timeouts,
hangups, adapter errors and shutdowns), each ended by a hangup, and checks on every one that
nothing is recorded without an active consent digit or a purpose that needs none (after every
notice, no objection), that every call ends in a terminal state and that no live state is left
with nothing to move it on. Prints the walks per second, the outcomes seen and every violation
(exit 1 when there is one).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support without install

from tests.support.consent_walk import DIGITS, KINDS, PLANS, walk


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--walks", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--max-steps", type=int, default=40)
    args = parser.parse_args()
    rng = random.Random(args.seed)  # noqa: S311  # reproducible walks, not secrets
    states: Counter[str] = Counter()
    results: Counter[str] = Counter()
    recorded: Counter[str] = Counter()
    violations: Counter[str] = Counter()
    events = 0
    first_bad: tuple[int, list[str]] | None = None
    started = time.perf_counter()
    for i in range(args.walks):
        plan = rng.choice(PLANS)
        steps = [
            (rng.choice(KINDS), rng.choice(DIGITS)) for _ in range(rng.randint(0, args.max_steps))
        ]
        w = walk(plan, steps, playlists=i % 2 == 1)  # every other walk: the ARI adapter's
        events += len(w.fed)
        states[w.machine.state.value] += 1
        result = w.result
        results[f"{result.status}/{result.reason}" if result else "no result (hung up)"] += 1
        recorded["+".join(w.recorded) or "nothing"] += 1
        for v in w.violations:
            violations[v] += 1
        if w.violations and first_bad is None:
            first_bad = (i, w.violations)
    elapsed = time.perf_counter() - started
    print(f"walks: {args.walks}  events fed: {events}  seed: {args.seed}")
    print(
        f"time: {elapsed:.1f} s  ({args.walks / elapsed:,.0f} walks/s, "
        f"{events / elapsed:,.0f} events/s)"
    )
    print("terminal states:", dict(states.most_common()))
    print("results:", dict(results.most_common(12)))
    print("recorded:", dict(recorded.most_common()))
    print("violations:", dict(violations) or 0)
    if first_bad is not None:
        print(f"first violating walk: #{first_bad[0]} {first_bad[1]}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
