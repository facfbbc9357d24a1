"""Tampering with evidence the way a careful tester (or an attacker with write access) would:
chain-valid but lying ledger lines, swapped and symlinked audio. Shared by the tamper suite."""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from callconsent.evidence import caller_keys, callers
from callconsent.evidence.fsio import dumps
from callconsent.evidence.ledger import GENESIS, iter_entries, line_sha256


def first_entry(ledger_path: Path, kind: str) -> dict[str, Any]:
    for line in iter_entries(ledger_path):
        if line.entry is not None and line.entry["type"] == kind:
            return line.entry
    raise LookupError(kind)


def append_chained(ledger_path: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Write ``record`` at the end of the ledger as someone with write access to the file would:
    with the next seq and a valid hash link, but without the ledger's schema check, so the chain
    holds whatever the record says."""
    record = {k: v for k, v in record.items() if k not in ("seq", "prev_sha256")}
    seq, prev = 0, GENESIS
    for line in iter_entries(ledger_path):
        prev = line_sha256(line.raw)
        if line.entry is not None:
            seq = line.entry["seq"]
    entry = {"seq": seq + 1, **record, "prev_sha256": prev}
    with ledger_path.open("ab") as f:
        f.write(dumps(entry).encode("ascii") + b"\n")
    return entry


def forged_call(
    ledger_path: Path,
    uniqueid: Any,
    *,
    number: str,
    recording: Any,
    edit: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """A chain-valid ``call`` line for ``uniqueid`` (caller ``number``) whose ``recording``
    pointer is ``recording``, shaped like the ledger's first call line."""
    entry = copy.deepcopy(first_entry(ledger_path, "call"))
    entry["call"].update(uniqueid=uniqueid, linkedid=uniqueid)
    if "caller" in entry["call"]:  # sealed, as the app writes it: the forger has the keys too
        secret = caller_keys.subject_key(ledger_path)
        caller, key = callers.seal(str(uniqueid), number, "Forged", secret)
        keys = caller_keys.CallerKeys.beside(ledger_path)
        keys.put([key] if key else [])
        keys.close()
        entry["call"]["caller"] = caller
    else:
        entry["call"]["caller_number"] = number
    entry["recording"] = recording
    if edit is not None:
        edit(entry)
    return append_chained(ledger_path, entry)


def symlink_audio(link: Path, target: Path) -> None:
    """Replace the audio file ``link`` by a symlink to ``target`` (another subject's audio)."""
    link.unlink()
    link.symlink_to(target)


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str = "256k") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where`` for the test (root only: skips otherwise), so a
    write can really fail with ENOSPC. Always unmounted afterwards."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace')}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(folder: Path) -> Path:
    """Fill the file system holding ``folder`` to the last byte; returns the filler file."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 16, 4096, 512, 64, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)
    return filler
