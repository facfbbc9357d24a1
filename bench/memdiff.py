"""What grew between two snapshots of ``bench/traced_app.py`` (bench only).

    python bench/memdiff.py DIR LABEL_A LABEL_B [--top 25] [--by lineno|traceback|filename]

Prints the RSS, traced memory and garbage-collected object counts of both, the object types whose
count changed most, and the allocation sites (tracemalloc) whose memory grew most.
"""

from __future__ import annotations

import argparse
import json
import tracemalloc
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path)
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--by", default="lineno", choices=("lineno", "traceback", "filename"))
    args = p.parse_args()
    fa = json.loads((args.folder / f"{args.a}.types.json").read_text())
    fb = json.loads((args.folder / f"{args.b}.types.json").read_text())
    keys = ("rss_kib_before_gc", "rss_kib", "traced_kib", "gc_objects", "threads")
    native = ("malloc_in_use_kib", "malloc_free_held_kib", "malloc_heap_kib", "sqlite_kib")
    native += ("pymalloc_arenas", "pymalloc_arenas_highwater", "pymalloc_used_kib")
    native += ("pymalloc_free_kib",)
    for key in (*keys, *native):
        if key in fa and key in fb:
            print(f"{key:>20}: {fa[key]:>9} -> {fb[key]:>9}  ({fb[key] - fa[key]:+})")
    grown = {t: fb["types"].get(t, 0) - fa["types"].get(t, 0) for t in {*fa["types"], *fb["types"]}}
    print("\nobject types (count change):")
    for name, diff in sorted(grown.items(), key=lambda kv: -abs(kv[1]))[: args.top]:
        if diff:
            print(f"  {diff:+8}  {name}  (now {fb['types'].get(name, 0)})")
    print("\ncontainers of 20+ items (owner.attribute: items before -> after):")
    before = {(c["owner"], c["attr"]): c["len"] for c in fa.get("containers", [])}
    for c in fb.get("containers", []):
        key = (c["owner"], c["attr"])
        print(
            f"  {c['owner']}.{c['attr']} ({c['type']}): {before.get(key, '-')} -> {c['len']}"
            f"  e.g. {', '.join(c['sample'])[:120]}"
        )
    if not (args.folder / f"{args.a}.snap").exists():
        return  # taken without tracemalloc
    sa = tracemalloc.Snapshot.load(str(args.folder / f"{args.a}.snap"))
    sb = tracemalloc.Snapshot.load(str(args.folder / f"{args.b}.snap"))
    skip = (
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap*"),
    )
    sa, sb = sa.filter_traces(skip), sb.filter_traces(skip)
    print(f"\nallocation sites by {args.by} (size change, count change):")
    for stat in sb.compare_to(sa, args.by)[: args.top]:
        print(
            f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7} blocks"
            f"  (now {stat.size / 1024:.1f} KiB)"
        )
        frames = stat.traceback.format(limit=8 if args.by == "traceback" else 1)
        for line in frames:
            print(f"      {line.strip()}")


if __name__ == "__main__":
    main()
