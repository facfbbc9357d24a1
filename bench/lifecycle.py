"""Benchmark of the recording lifecycle at scale (not part of the test run).

    /work/venv/bin/python bench/lifecycle.py --sizes 10000 100000 [1000000] [--keep DIR]

For each size N it generates N realistic calls into a temporary folder, then times each step in
a fresh Python process and prints wall time and peak memory (the process's ru_maxrss, which
includes the interpreter and imports: see the ``baseline`` row):

* ``index rebuild``: the SQLite index from every sidecar and ledger line;
* ``lookup``: a subject-access lookup by caller number (call ids and their recordings), cold
  (first query after opening the index) and the median of 200 more numbers;
* ``purge --dry-run``: the incremental index update plus the scan for expired recordings;
* ``verify``: every recording's sha256 against its sidecar and the ledger hash chain (the fast
  structural sidecar check); ``verify_deep``: the same with full schema validation of every
  sidecar and ledger entry (``verify --deep``);
* ``export``: one subject access archive for a number with several calls.

The generated data: calls spread over the 120 days before the benchmark's clock, caller numbers
drawn from N/3 Danish numbers (about three calls each), 200 agents; 70 % documentation only,
20 % documentation + training (half of them refused), 10 % training only (half refused: no
recording). Each recorded call has a final sidecar in the real schema (written without fsync,
which the app does, to keep generation fast) and a tiny real WAV: a 44-byte header plus 160
bytes of audio (10 ms at 8 kHz), unique per call so every sha256 differs. The ledger holds a
``call`` entry per call and a ``recording_final`` entry per recording, correctly hash-chained.
Disk: about 8 KiB per recorded call (two small files), so 1M calls need ~8 GB and many inodes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from callconsent.evidence import callers  # noqa: E402  # after the sys.path line
from callconsent.evidence.caller_keys import CallerKeys, subject_key  # noqa: E402
from callconsent.evidence.fsio import dumps, utc_stamp  # noqa: E402
from callconsent.evidence.wav import pcm_header  # noqa: E402

NOW = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)
SOFTWARE = {"name": "callconsent", "version": "0.1.0"}
CONFIG_SHA = "ab" * 32
AUDIO_BYTES = 160


def number_for(i: int) -> str:
    return f"+45{20000000 + i:08d}"


def generate(root: Path, ledger_path: Path, n: int, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)  # noqa: S311  # synthetic data, not security
    numbers = max(1, n // 3)
    ledger_path.parent.mkdir(parents=True, exist_ok=True)
    prev = "0" * 64
    seq = 0
    recorded = 0
    first_number = ""
    made_dirs: set[Path] = set()
    header = pcm_header(AUDIO_BYTES)
    secret = subject_key(ledger_path)  # the ledger's callers sealed, as the app writes them
    keys = CallerKeys.beside(ledger_path)
    rows: list[callers.KeyRow] = []
    with ledger_path.open("wb") as ledger:

        def append(record: dict[str, Any]) -> None:
            nonlocal prev, seq
            seq += 1
            line = dumps({"seq": seq, **record, "prev_sha256": prev}).encode("ascii")
            ledger.write(line + b"\n")
            prev = hashlib.sha256(line).hexdigest()

        for i in range(n):
            when = NOW - timedelta(seconds=rng.uniform(0, 120 * 86400))
            stamp = utc_stamp(when)
            uid = f"{int(when.timestamp())}.{i}"
            kind = rng.random()
            refused = rng.random() < 0.5
            names = (["documentation"] if kind < 0.9 else []) + (
                ["training"] if kind >= 0.7 else []
            )
            purposes: list[dict[str, Any]] = []
            for name in names:
                consent = None
                status = "not_required"
                if name == "training":
                    status = "refused" if refused else "given"
                    consent = {
                        "status": status,
                        "reason": "timeout" if refused else "digit",
                        "digit": None if refused else "1",
                        "question_id": "q",
                        "question_version": "cd" * 32,
                        "question_started_at": stamp,
                        "question_ended_at": stamp,
                        "digit_at": None if refused else stamp,
                        "attempts": 1,
                    }
                purposes.append(
                    {
                        "purpose": name,
                        "lawful_basis": "6(1)(a)" if name == "training" else "6(1)(f)",
                        "retention_days": 30 if name == "training" else 90,
                        "status": status,
                        "reason": consent["reason"] if consent else "not_required",
                        "consent": consent,
                    }
                )
            kept = [p for p in purposes if p["status"] in ("given", "not_required")]
            number = number_for(rng.randrange(numbers))
            if i == 0:
                first_number = number
            call = {
                "uniqueid": uid,
                "linkedid": uid,
                "channel": f"PJSIP/trunk-{i:08x}",
                "route": "mixed",
                "caller_number": number,
                "caller_name": None,
                "dialled_number": "+4570000000",
            }
            rel = f"{when:%Y/%m/%d}/{uid}.wav" if kept else None
            caller, key = callers.seal(uid, number, None, secret)
            if key is not None:
                rows.append(key)
            if len(rows) >= 10_000:
                keys.put(rows)
                rows.clear()
            append(
                {
                    "type": "call",
                    "at": stamp,
                    "call": callers.ledger_call(call, caller),
                    "started_at": stamp,
                    "status": "refused" if refused and "training" in names else "not_required",
                    "reason": None,
                    "language": "da",
                    "notices": [],
                    "purposes": purposes,
                    "recorded_purposes": [p["purpose"] for p in kept],
                    "recording": rel,
                    "software": SOFTWARE,
                    "config_sha256": CONFIG_SHA,
                }
            )
            if rel is None:
                continue
            recorded += 1
            directory = root / rel.rsplit("/", 1)[0]
            if directory not in made_dirs:
                directory.mkdir(parents=True, exist_ok=True)
                made_dirs.add(directory)
            audio = header + uid.encode().ljust(AUDIO_BYTES, b"\x01")
            (directory / f"{uid}.wav").write_bytes(audio)
            end = utc_stamp(when + timedelta(seconds=0.01))
            rec = {
                "file": rel,
                "format": "wav",
                "started_at": stamp,
                "ended_at": end,
                "duration_seconds": 0.01,
                "bytes": len(audio),
                "sha256": hashlib.sha256(audio).hexdigest(),
                "has_audio": True,
            }
            days = max(p["retention_days"] for p in kept)
            doc = {
                "schema_version": 1,
                "state": "final",
                "call": call,
                "started_at": stamp,
                "language": "da",
                "notices": [],
                "purposes": [
                    {k: p[k] for k in ("purpose", "lawful_basis", "retention_days", "consent")}
                    for p in kept
                ],
                "recording": rec,
                "delete_after": utc_stamp(when + timedelta(days=days)),
                "tags": [f"purpose:{p['purpose']}" for p in kept]
                + [f"agent:a{rng.randrange(200):03d}"],
                "software": SOFTWARE,
                "config_sha256": CONFIG_SHA,
                "updated_at": end,
            }
            (directory / f"{uid}.json").write_text(dumps(doc, indent=2) + "\n", "ascii")
            append(
                {
                    "type": "recording_final",
                    "at": end,
                    "call": {"uniqueid": uid},
                    "recording": rec,
                    "source": "app",
                }
            )
    keys.put(rows)
    keys.close()
    return {
        "calls": n,
        "recordings": recorded,
        "ledger_lines": seq,
        "numbers": numbers,
        "subject": first_number,
    }


# -- steps, each run in a fresh process ---------------------------------------------------


def _config(work: Path) -> Any:
    import yaml

    from callconsent.config import load_config

    data = yaml.safe_load((REPO / "config" / "demo.yaml").read_text("utf-8"))
    data["storage"] = {
        "recordings_dir": str(work / "recordings"),
        "ledger_path": str(work / "state" / "ledger.jsonl"),
        "notice_archive_dir": str(work / "state" / "notices"),
    }
    path = work / "callconsent.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    return load_config(path, env={"CALLCONSENT_ARI_PASSWORD": "bench"})


def step(name: str, work: Path, numbers: int, subject: str) -> dict[str, Any]:
    from callconsent.lifecycle import Context, query

    root, ledger_path = work / "recordings", work / "state" / "ledger.jsonl"
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    if name == "baseline":
        with Context.create(root, ledger_path, now=NOW, actor="bench"):
            pass
    elif name == "index_rebuild":
        with Context.create(root, ledger_path, now=NOW, actor="bench") as ctx:
            stats = ctx.index.rebuild()
        out["detail"] = stats.as_dict()
    elif name == "lookup":
        rng = random.Random(1)  # noqa: S311  # synthetic data, not security
        with Context.create(root, ledger_path, now=NOW, actor="bench") as ctx:
            t1 = time.perf_counter()
            ids = query.find_calls(ctx.index, query.Selector(number=subject))
            query.recordings(ctx.index, ids)
            cold = time.perf_counter() - t1
            times = []
            for _ in range(200):
                t1 = time.perf_counter()
                ids = query.find_calls(
                    ctx.index, query.Selector(number=number_for(rng.randrange(numbers)))
                )
                query.recordings(ctx.index, ids)
                times.append(time.perf_counter() - t1)
        out["detail"] = {
            "cold_ms": round(cold * 1000, 3),
            "median_ms": round(statistics.median(times) * 1000, 3),
            "max_ms": round(max(times) * 1000, 3),
            "calls_found": len(ids),
        }
    elif name == "purge_dry_run":
        from callconsent.lifecycle.purge import purge

        with Context.create(root, ledger_path, now=NOW, actor="bench") as ctx:
            report = purge(ctx, dry_run=True)
        out["detail"] = report.counts
    elif name in ("verify", "verify_deep"):
        from callconsent.lifecycle.verify import verify

        verified = verify(root, ledger_path, deep=name == "verify_deep")
        out["detail"] = {"ok": verified.ok, "hashed": verified.recordings_hashed}
    elif name == "export":
        from callconsent.lifecycle.export import export

        config = _config(work)
        with Context.create(root, ledger_path, now=NOW, actor="bench") as ctx:
            result = export(
                ctx,
                config,
                query.Selector(number=subject),
                reason="bench",
                out_dir=work / "exports",
            )
        out["detail"] = {
            "calls": len(result.call_ids),
            "audio": result.audio_files,
            "entries": result.ledger_entries,
        }
    out["seconds"] = round(time.perf_counter() - t0, 3)
    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if children:  # the rebuild's sidecar readers (worker processes): the largest one
        out["detail"] = {**out.get("detail", {}), "worker_peak_rss_mib": round(children / 1024, 1)}
    return out


STEPS = ("baseline", "index_rebuild", "lookup", "purge_dry_run", "verify", "verify_deep", "export")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--steps", nargs="+", default=list(STEPS), choices=STEPS)
    parser.add_argument("--keep", type=Path, help="generate here and keep it (else a temp dir)")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--numbers", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--subject", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:  # child process: one step
        print(json.dumps(step(args.step, args.work, args.numbers, args.subject)))
        return 0
    for n in args.sizes:
        work = (
            (args.keep / str(n)) if args.keep else Path(tempfile.mkdtemp(prefix=f"cc-bench-{n}-"))
        )
        try:
            t0 = time.perf_counter()
            info = generate(work / "recordings", work / "state" / "ledger.jsonl", n)
            print(
                f"\n== N = {n:,} calls: {info['recordings']:,} recordings, "
                f"{info['ledger_lines']:,} ledger lines (generated in "
                f"{time.perf_counter() - t0:.1f} s) in {work}",
                flush=True,
            )
            print(f"{'step':<16}{'seconds':>10}{'peak RSS MiB':>14}  detail", flush=True)
            for name in args.steps:
                done = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--step",
                        name,
                        "--work",
                        str(work),
                        "--numbers",
                        str(info["numbers"]),
                        "--subject",
                        info["subject"],
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                r = json.loads(done.stdout)
                print(
                    f"{name:<16}{r['seconds']:>10.3f}{r['peak_rss_mib']:>14.1f}  "
                    f"{json.dumps(r.get('detail', ''))}",
                    flush=True,
                )
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.nice(0)
    raise SystemExit(main())
