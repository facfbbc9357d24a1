"""Benchmark of encryption at rest (R33): the cost per recorded minute (not part of the tests).

    .venv/bin/python bench/encrypt.py [--minutes 60] [--repeat 5]

Encrypts and decrypts a WAV of ``--minutes`` of 8 kHz 16-bit mono audio (960,000 bytes a
minute: what MixMonitor writes for a narrowband call) from memory to memory with
:func:`callconsent.evidence.crypto.encrypt_stream` / ``decrypt_stream`` (64 KiB AES-256-GCM
chunks), best of ``--repeat`` runs, and prints MB/s and milliseconds per recorded minute. File
I/O (the same bytes read and written once more) and fsync are not included: see the ``file``
row, which times :meth:`AtRest.encrypt` on a real file in a temporary folder (key store, fsync,
sidecar rewrite and rename included).
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from callconsent.evidence import sidecar
from callconsent.evidence.at_rest import AtRest
from callconsent.evidence.crypto import decrypt_stream, encrypt_stream, new_data_key
from callconsent.evidence.keystore import KeyStore
from callconsent.evidence.paths import ensure_directory, recording_paths

BYTES_PER_MINUTE = 8000 * 2 * 60


def _best(repeat: int, job: object) -> float:
    assert callable(job)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        job()
        times.append(time.perf_counter() - t0)
    return min(times)


def _file_run(minutes: int, audio: bytes) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = datetime(2026, 1, 5, 10, tzinfo=UTC)
        paths = recording_paths(root / "recordings", "1767607200.1", start)
        ensure_directory(paths)
        call = {
            "uniqueid": paths.uniqueid,
            "linkedid": paths.uniqueid,
            "channel": "PJSIP/trunk-00000001",
            "route": "support",
            "caller_number": "+4512345678",
            "caller_name": None,
            "dialled_number": "+4570000000",
        }
        doc = sidecar.recording_document(
            paths,
            call=call,
            started_at=start,
            language="da",
            notices=[],
            purposes=[
                {
                    "purpose": "documentation",
                    "lawful_basis": "6(1)(f)",
                    "retention_days": 90,
                    "consent": None,
                }
            ],
            delete_after=start + timedelta(days=90),
            tags=["purpose:documentation"],
            software={"name": "callconsent", "version": "bench"},
            config_sha256="0" * 64,
        )
        sidecar.create(paths, doc)
        paths.audio.write_bytes(audio)
        sidecar.finalise(paths, ended_at=start + timedelta(minutes=minutes))
        keys = KeyStore(root / "keys", {"k1": os.urandom(32)}, "k1")
        t0 = time.perf_counter()
        AtRest(keys).encrypt(paths)
        return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    pcm = os.urandom(BYTES_PER_MINUTE * args.minutes)
    header = (
        b"RIFF"
        + (36 + len(pcm)).to_bytes(4, "little")
        + b"WAVEfmt "
        + (16).to_bytes(4, "little")
        + (1).to_bytes(2, "little")
        + (1).to_bytes(2, "little")
        + (8000).to_bytes(4, "little")
        + (16000).to_bytes(4, "little")
        + (2).to_bytes(2, "little")
        + (16).to_bytes(2, "little")
        + b"data"
        + len(pcm).to_bytes(4, "little")
    )
    audio = header + pcm
    key = new_data_key()
    sealed = io.BytesIO()
    encrypt_stream(io.BytesIO(audio), sealed, key)
    enc = _best(args.repeat, lambda: encrypt_stream(io.BytesIO(audio), io.BytesIO(), key))
    dec = _best(
        args.repeat, lambda: decrypt_stream(io.BytesIO(sealed.getvalue()), io.BytesIO(), key)
    )
    whole = _best(max(1, args.repeat // 2), lambda: _file_run(args.minutes, audio))
    mb = len(audio) / 1e6
    print(f"{args.minutes} min of 8 kHz 16-bit mono = {mb:.1f} MB; best of {args.repeat}")
    for name, seconds in (("encrypt", enc), ("decrypt", dec), ("file", whole)):
        print(
            f"{name:8s} {mb / seconds:8.1f} MB/s  {seconds * 1000 / args.minutes:7.3f} ms per "
            f"recorded minute"
        )
    overhead = len(sealed.getvalue()) - len(audio)
    print(f"size overhead: {overhead} bytes ({overhead / len(audio):.4%})")


if __name__ == "__main__":
    main()
