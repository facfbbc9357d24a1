"""The caller key store's memory and cost per call against its page cache (bench only).

    python bench/keystore_cache.py [--prefill 50000] [--calls 2000] [--cache-kib 512|default]

Fills a fresh key store with ``--prefill`` rows (as months of calls would), reopens it, then
stores ``--calls`` keys one transaction each (as the live app's batches of one at 10 calls/s)
and prints the CPU per key, SQLite's heap (``sqlite3_memory_used``) after every 1,000 keys and
at the end. Run under ``strace -f -c -e trace=pread64,pwrite64,fdatasync`` for the syscalls.
"""

from __future__ import annotations

import _sqlite3
import argparse
import ctypes
import os
import tempfile
import time
from pathlib import Path

from callconsent.evidence.caller_keys import CallerKeys
from callconsent.evidence.callers import KeyRow, seal


def sqlite_kib() -> int:
    lib = ctypes.CDLL(_sqlite3.__file__)
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    return int(lib.sqlite3_memory_used()) // 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prefill", type=int, default=50000)
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--cache-kib", default="512", help="KiB, or 'default': SQLite's own (2 MiB)")
    args = p.parse_args()
    path = Path(tempfile.mkdtemp(prefix="keystore-bench-")) / "caller-keys.sqlite3"
    secret = os.urandom(32)
    rows: list[KeyRow] = []
    for n in range(args.prefill + args.calls):
        row = seal(f"1796474519.{n}", "+4533000000", "Bench Caller", secret)[1]
        assert row is not None
        rows.append(row)
    keys = CallerKeys(path)
    for i in range(0, args.prefill, 1000):
        keys.put(rows[i : min(i + 1000, args.prefill)])
    keys.close()
    keys = CallerKeys(path)
    db = keys._db()
    cache = "-2000" if args.cache_kib == "default" else f"-{int(args.cache_kib)}"
    db.execute(f"PRAGMA cache_size={cache}")
    cpu0 = time.process_time()
    for n, row in enumerate(rows[args.prefill :], 1):
        keys.put([row])
        if n % 1000 == 0:
            print(f"  {n} keys: SQLite heap {sqlite_kib()} KiB", flush=True)
    cpu = time.process_time() - cpu0
    print(
        f"cache {args.cache_kib} KiB, {args.prefill} rows before: {args.calls} keys, "
        f"{cpu / args.calls * 1e6:.0f} us CPU per key, SQLite heap {sqlite_kib()} KiB"
    )
    keys.close()


if __name__ == "__main__":
    main()
