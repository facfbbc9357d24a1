"""The ledger's anchor: its head (seq and sha256 of the newest line) and the calls on legal hold,
kept outside the ledger so that a cut or edited tail is seen.

The hash chain shows any change to a line that has a successor; only a copy of the head kept
elsewhere shows the newest lines dropped or edited. :class:`~callconsent.evidence.ledger.Ledger`
updates the anchor after every append, under the ledger's lock, after the line is fsynced.
``storage.anchor_path`` names it (default: ``<ledger>.anchor`` beside the ledger); put it on
another volume or host mount, so whoever can cut the ledger cannot also rewrite the anchor.

Two files, so the hot path stays one small write:

* ``<anchor>``: the head, in two fixed 512-byte slots written in turn (slot ``seq % 2``) with
  one ``pwrite`` each, in place, no fsync. Each slot carries its own sha256, so a write torn by
  a crash is recognised and the other slot (one append older) is used. An anchor that lags the
  ledger (lost in a crash, or a failed write) is still checked: the line it names must be
  there with that hash. It is never ahead: the ledger line is fsynced first.
* ``<anchor>.holds``: the calls on hold, rewritten (temporary file, fsync, rename) only when a
  ``hold_set`` or ``hold_released`` line is appended. A hold thus survives a ledger cut back
  past its ``hold_set`` line: the purge refuses to delete a recording held per the anchor.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from callconsent.evidence.fsio import FILE_MODE

ANCHOR_SUFFIX: Final = ".anchor"
HOLDS_SUFFIX: Final = ".holds"
SLOT: Final = 512
_DIGEST: Final = 64
#: The ledger entry types that change the set of holds (written by ``lifecycle.hold``).
HOLD_SET: Final = "hold_set"
HOLD_RELEASED: Final = "hold_released"
_MAX_HOLDS_BYTES: Final = 64 * 1024 * 1024


class AnchorUnreadable(ValueError):
    """The anchor file exists but holds no valid head (or its holds file is not one)."""


@dataclass(frozen=True, slots=True)
class Head:
    seq: int
    sha256: str
    bytes: int  # the ledger's size after that line


@dataclass(frozen=True, slots=True)
class Anchor:
    seq: int
    sha256: str
    bytes: int
    holds: frozenset[str] = frozenset()


def default_anchor_path(ledger_path: Path) -> Path:
    return ledger_path.with_name(ledger_path.name + ANCHOR_SUFFIX)


def holds_path(anchor_path: Path) -> Path:
    return anchor_path.with_name(anchor_path.name + HOLDS_SUFFIX)


def _slot(head: Head) -> bytes:
    body = json.dumps(
        {"seq": head.seq, "sha256": head.sha256, "bytes": head.bytes}, separators=(",", ":")
    ).encode("ascii")
    digest = hashlib.sha256(body).hexdigest().encode("ascii")
    return body + b"\n" + b" " * (SLOT - len(body) - _DIGEST - 2) + digest + b"\n"


def _parse_slot(data: bytes) -> Head | None:
    if len(data) != SLOT or not data.endswith(b"\n"):
        return None
    body, _, _ = data.partition(b"\n")
    if hashlib.sha256(body).hexdigest().encode("ascii") != data[-_DIGEST - 1 : -1]:
        return None
    try:
        doc = json.loads(body)
        return Head(int(doc["seq"]), str(doc["sha256"]), int(doc["bytes"]))
    except (ValueError, KeyError, TypeError):
        return None


def read_head(path: Path) -> Head | None:
    """The newest valid head at ``path``; None when there is no anchor (or it is empty: a crash
    before its first write); :class:`AnchorUnreadable` when neither slot is valid."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    try:
        data = os.pread(fd, 2 * SLOT + 1, 0)
    finally:
        os.close(fd)
    if not data:
        return None
    heads = [h for i in (0, 1) if (h := _parse_slot(data[i * SLOT : (i + 1) * SLOT]))]
    if not heads or len(data) > 2 * SLOT:
        raise AnchorUnreadable(f"{path}: not a ledger anchor (no valid head)")
    return max(heads, key=lambda h: h.seq)


def write_head(path: Path, head: Head) -> None:
    """One ``pwrite`` of ``head`` into its slot (``seq % 2``), in place, no fsync."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        if os.pwrite(fd, _slot(head), (head.seq % 2) * SLOT) != SLOT:
            raise OSError(f"{path}: short write")
    finally:
        os.close(fd)


def read_holds(anchor_path: Path) -> frozenset[str]:
    """The calls on hold per the anchor (empty when there is no holds file)."""
    path = holds_path(anchor_path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return frozenset()
    try:
        data = os.read(fd, _MAX_HOLDS_BYTES)
    finally:
        os.close(fd)
    try:
        holds = json.loads(data)["holds"]
        if not isinstance(holds, list) or not all(isinstance(h, str) for h in holds):
            raise TypeError("holds is not a list of call ids")
    except (ValueError, KeyError, TypeError) as exc:
        raise AnchorUnreadable(f"{path}: not a holds file ({exc})") from None
    return frozenset(holds)


def write_holds(anchor_path: Path, holds: Iterable[str], *, seq: int) -> None:
    """Replace the holds file atomically (temporary file, fsync, rename): rare, so durable."""
    path = holds_path(anchor_path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    data = json.dumps({"seq": seq, "holds": sorted(holds)}, separators=(",", ":"))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    try:
        view = memoryview(data.encode("ascii"))
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def read_anchor(path: Path) -> Anchor | None:
    """Head and holds; None when there is no anchor (see :func:`read_head`)."""
    head = read_head(path)
    if head is None:
        return None
    return Anchor(head.seq, head.sha256, head.bytes, read_holds(path))


def holds_after(holds: Iterable[str], entry: Mapping[str, Any]) -> frozenset[str]:
    """The set of held calls after ledger entry ``entry``."""
    out = set(holds)
    call = entry.get("call")
    uniqueid = call.get("uniqueid") if isinstance(call, Mapping) else None
    if isinstance(uniqueid, str):
        if entry.get("type") == HOLD_SET:
            out.add(uniqueid)
        elif entry.get("type") == HOLD_RELEASED:
            out.discard(uniqueid)
    return frozenset(out)
