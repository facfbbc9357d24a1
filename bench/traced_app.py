"""``callconsent`` under ``tracemalloc``, for memory soaks (bench only, never shipped).

    python bench/traced_app.py DIR [callconsent arguments...]

Runs ``callconsent.cli.main`` with the given arguments exactly as ``python -m`` would, with
``tracemalloc`` started first (``CALLCONSENT_BENCH_TRACE_FRAMES`` frames a trace, default 6; 0:
no tracemalloc, only the figures below, at no cost between snapshots) and a daemon thread that
answers snapshot requests: whoever wants one creates ``DIR/<label>.req``; the thread runs a full
garbage collection, writes the tracemalloc snapshot to ``DIR/<label>.snap``, the live objects
counted by type, the large containers and the memory figures (RSS, glibc malloc's ``mallinfo2``
over all arenas, SQLite's own allocations) to ``DIR/<label>.types.json``, then removes the
request. ``bench/memdiff.py`` compares two labels. The app itself is not changed:
this file is the only place that knows about tracing.
"""

from __future__ import annotations

import collections
import ctypes
import gc
import json
import os
import runpy
import sys
import threading
import time
import tracemalloc
from pathlib import Path

POLL_SECONDS = 0.5


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",  # bytes glibc took with brk/sbrk (all arenas' heaps)
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",  # bytes in mmap'd blocks (large allocations)
            "usmblks",
            "fsmblks",
            "uordblks",  # bytes in use
            "fordblks",  # bytes free, held by the allocator
            "keepcost",
        )
    ]


def native_figures() -> dict[str, int]:
    """glibc malloc's totals over every arena and SQLite's own heap, in KiB (0 if unknown)."""
    out = {}
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        info = libc.mallinfo2()
        out["malloc_in_use_kib"] = (info.uordblks + info.hblkhd) // 1024
        out["malloc_free_held_kib"] = info.fordblks // 1024
        out["malloc_heap_kib"] = info.arena // 1024
    except (OSError, AttributeError):
        pass
    try:
        import _sqlite3

        lib = ctypes.CDLL(_sqlite3.__file__)  # its libsqlite3's symbols
        lib.sqlite3_memory_used.restype = ctypes.c_int64
        out["sqlite_kib"] = lib.sqlite3_memory_used() // 1024
    except (OSError, AttributeError, ImportError):
        pass
    return out


def pymalloc_figures(folder: Path) -> dict[str, int]:
    """Python's own allocator (pymalloc): its arenas now and at most, the bytes in live blocks,
    in KiB. ``sys._debugmallocstats`` writes to the C stderr: fd 2 goes to a file meanwhile
    (it runs holding the GIL, so no log line of the app lands there)."""
    out_path = folder / ".mallocstats"
    with out_path.open("w") as out:
        saved = os.dup(2)
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    names = {
        "# arenas allocated current": "pymalloc_arenas",
        "# arenas highwater mark": "pymalloc_arenas_highwater",
        "# bytes in allocated blocks": "pymalloc_used_kib",
        "# bytes in available blocks": "pymalloc_free_kib",
    }
    found: dict[str, int] = {}
    for line in out_path.read_text().splitlines():
        name, _, value = line.partition("=")
        key = names.get(name.strip())
        if key is not None:
            number = int(value.strip().replace(",", ""))
            found[key] = number // 1024 if key.endswith("_kib") else number
    out_path.unlink()
    return found


def snapshot(folder: Path, label: str) -> None:
    """Collect, then write the snapshot, the object counts by type and the figures of ``label``."""
    before = _rss_kib()
    gc.collect()
    types = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
    traced = peak = 0
    if tracemalloc.is_tracing():
        tracemalloc.take_snapshot().dump(str(folder / f"{label}.snap"))
        traced, peak = tracemalloc.get_traced_memory()
    figures = {
        "label": label,
        "at": time.time(),
        "rss_kib_before_gc": before,
        "rss_kib": _rss_kib(),
        "traced_kib": traced // 1024,
        "traced_peak_kib": peak // 1024,
        "gc_objects": sum(types.values()),
        "threads": threading.active_count(),
        **native_figures(),
        **pymalloc_figures(folder),
        "types": dict(types.most_common()),
        "containers": big_containers(),
    }
    (folder / f"{label}.types.json").write_text(json.dumps(figures, indent=1) + "\n")


def big_containers(least: int = 20) -> list[dict[str, object]]:
    """Every dict, list, set or deque of at least ``least`` items that is an attribute of an
    object (or a module global): who owns it, under which name, how many items, a few keys."""
    kinds = (dict, list, set, frozenset, collections.deque)
    found: list[dict[str, object]] = []
    for obj in gc.get_objects():
        if not isinstance(obj, kinds) or len(obj) < least or obj is found:
            continue
        for owner in gc.get_referrers(obj):
            if owner is found or isinstance(owner, list):
                continue
            attrs = getattr(owner, "__dict__", None) if not isinstance(owner, dict) else owner
            slots = [(n, getattr(owner, n, None)) for n in getattr(type(owner), "__slots__", ())]
            pairs = list(attrs.items()) if isinstance(attrs, dict) else []
            name = next((str(k) for k, v in [*pairs, *slots] if v is obj), None)
            if name is None:
                continue
            where = (
                owner.get("__name__", "?") if isinstance(owner, dict) else type(owner).__qualname__
            )
            sample = list(obj)[:3]
            found.append(
                {
                    "owner": where,
                    "attr": name,
                    "type": type(obj).__qualname__,
                    "len": len(obj),
                    "sample": [repr(x)[:80] for x in sample],
                }
            )
            break
    found.sort(key=lambda c: -int(str(c["len"])))
    return found


def _watch(folder: Path) -> None:
    while True:
        for req in sorted(folder.glob("*.req")):
            label = req.name.removesuffix(".req")
            try:
                snapshot(folder, label)
            except Exception as exc:  # noqa: BLE001 - a bench helper: report, keep watching
                (folder / f"{label}.error").write_text(f"{type(exc).__name__}: {exc}\n")
            req.unlink(missing_ok=True)
        time.sleep(POLL_SECONDS)


def main() -> None:
    folder = Path(sys.argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    frames = int(os.environ.get("CALLCONSENT_BENCH_TRACE_FRAMES", "6"))
    if frames > 0:
        tracemalloc.start(frames)
    threading.Thread(target=_watch, args=(folder,), name="bench-tracemalloc", daemon=True).start()
    sys.argv = ["callconsent", *sys.argv[2:]]
    runpy.run_module("callconsent.cli.main", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
