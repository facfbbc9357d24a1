"""Before export or erase act on a recording: is it this call's own, and unchanged?

The index finds a call's recording from its sidecar or, when the sidecar is gone, from the
``recording`` pointer of the call's ledger entry. A chain-valid ledger line can still point
anywhere, and a file in the tree can be a symlink to another subject's audio, so nothing is
taken on trust:

* the call id must be in Asterisk's uniqueid format before it names a path or a zip member;
* the recording must be the call's own file (``<day>/<call id>.wav``); its sidecar must name
  the same call and file (:func:`callconsent.evidence.sidecar.load` checks that);
* the audio must be a regular file, never a symlink;
* its sha256 must match the sidecar's and the call's latest ``recording_final`` ledger entry.

Each check returns a problem (a sentence for the report) or None; the caller skips the item.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, BinaryIO

from callconsent.evidence.paths import RecordingPaths, is_asterisk_uniqueid
from callconsent.lifecycle import _scan, query
from callconsent.lifecycle._context import Context

_BLOCK = 1 << 20


def id_problem(call_id: object) -> str | None:
    """Why ``call_id`` may not name a path or an archive member, or None."""
    if is_asterisk_uniqueid(call_id):
        return None
    return f"call id {str(call_id)[:80]!r} is not an Asterisk uniqueid (skipped)"


def split_ids(call_ids: list[str]) -> tuple[list[str], list[str]]:
    """``(usable ids, a problem for each id not in Asterisk's format)``."""
    good = [c for c in call_ids if id_problem(c) is None]
    bad = [p for c in call_ids if (p := id_problem(c)) is not None]
    return good, bad


def of_subject(
    ctx: Context, call_ids: list[str], number: str | None
) -> tuple[list[str], list[str]]:
    """``(call ids all evidence agrees are ``number``'s, a problem for each contested one)``;
    everything when no number was asked for."""
    if number is None:
        return call_ids, []
    good: list[str] = []
    bad: list[str] = []
    for call_id in call_ids:
        problem = subject_problem(ctx, call_id, number)
        if problem is None:
            good.append(call_id)
        else:
            bad.append(problem)
    return good, bad


def pointer_problem(call_id: str, paths: RecordingPaths) -> str | None:
    """Why ``paths`` is not call ``call_id``'s own recording, or None."""
    problem = id_problem(call_id)
    if problem is not None:
        return problem
    if paths.uniqueid != call_id:
        return (
            f"{paths.relative}: the evidence points call {call_id} at another call's file "
            "(skipped, nothing exported or deleted)"
        )
    return None


def _ledger_entries(ctx: Context, call_id: str) -> Iterator[dict[str, Any]]:
    """Every readable ledger entry the index links to ``call_id``."""
    for _seq, offset, length in query.entry_positions(ctx.index, [call_id]):
        if offset is None or length is None:
            continue
        try:
            entry = json.loads(_scan.read_line(ctx.ledger_path, offset, length))
        except (OSError, ValueError):
            continue  # an unreadable line is the index's problem report
        if isinstance(entry, dict):
            yield entry


def subject_problem(ctx: Context, call_id: str, number: str) -> str | None:
    """Why call ``call_id`` may not be handed out or erased as caller ``number``'s: its sidecar
    or one of its ``call`` ledger entries names another caller (a forged or duplicated line
    claims someone else's call). None when every source agrees."""
    subjects = ctx.index.subjects
    digest = subjects.digest(number)
    row = ctx.index.db.execute(
        "SELECT subject, state FROM recordings WHERE uniqueid=?", (call_id,)
    ).fetchone()
    contested = row is not None and row[1] != "tombstone" and row[0] != digest
    anonymised = query.is_anonymised(ctx.index, call_id)
    for entry in _ledger_entries(ctx, call_id):
        call = entry.get("call")
        if entry.get("type") != "call" or not isinstance(call, dict):
            continue
        caller = subjects.caller(call)  # a forgotten caller (key destroyed) names nobody
        if (
            call.get("uniqueid") == call_id
            and not caller.erased
            and subjects.digest(caller.number) != digest
        ):
            contested = contested or not anonymised
    if contested:
        return (
            f"call {call_id}: its evidence names more than one caller (a forged or duplicated "
            "ledger line?); nothing of it exported or erased, check it by hand"
        )
    return None


def ledger_hashes(ctx: Context, call_id: str) -> list[str]:
    """The sha256 of every ``recording_final`` ledger entry about ``call_id``, oldest first."""
    out: list[str] = []
    for entry in _ledger_entries(ctx, call_id):
        try:
            if entry.get("type") != "recording_final" or entry["call"]["uniqueid"] != call_id:
                continue
            digest = entry["recording"]["sha256"]
        except (KeyError, TypeError):
            continue
        if isinstance(digest, str):
            out.append(digest)
    return out


def expected_hashes(ctx: Context, call_id: str, doc: Mapping[str, Any] | None) -> set[str]:
    """What the audio's sha256 must be: the sidecar's (if it has one) and the ledger's latest."""
    expected: set[str] = set()
    if doc is not None:
        digest = doc.get("recording", {}).get("sha256")
        if isinstance(digest, str):
            expected.add(digest)
    from_ledger = ledger_hashes(ctx, call_id)
    if from_ledger:
        expected.add(from_ledger[-1])
    return expected


@contextmanager
def open_audio(paths: RecordingPaths) -> Iterator[BinaryIO]:
    """The audio opened without following a symlink; ``OSError`` if it is one (ELOOP) or not a
    regular file."""
    fd = os.open(paths.audio, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    f = os.fdopen(fd, "rb")
    with f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{paths.audio}: not a regular file")
        yield f


def audio_problem(
    ctx: Context,
    call_id: str,
    paths: RecordingPaths,
    doc: Mapping[str, Any] | None,
    *,
    require_hash: bool,
) -> str | None:
    """Why the audio of ``paths`` must not be exported or deleted for ``call_id``, or None.
    No audio file is no problem. ``require_hash``: the evidence must hold a sha256 for it."""
    try:
        st = os.lstat(paths.audio)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{paths.relative}: audio unreadable: {exc.strerror or exc} (skipped)"
    if stat.S_ISLNK(st.st_mode):
        return f"{paths.relative}: the audio is a symlink (skipped, nothing exported or deleted)"
    if not stat.S_ISREG(st.st_mode):
        return f"{paths.relative}: the audio is not a regular file (skipped)"
    expected = expected_hashes(ctx, call_id, doc)
    if not expected:
        if require_hash:
            return (
                f"{paths.relative}: no sidecar or ledger sha256 proves whose audio this is "
                "(skipped; reconcile reports it)"
            )
        return None
    if len(expected) > 1:
        return (
            f"{paths.relative}: the sidecar's sha256 and the ledger's recording_final differ "
            "(skipped, nothing exported or deleted)"
        )
    encrypted = (doc or {}).get("recording", {}).get("encryption")
    if isinstance(encrypted, Mapping) and isinstance(encrypted.get("sha256"), str):
        # encrypted at rest (R33): the file on disk is the ciphertext the sidecar names; the
        # WAV's own sha256 (``expected``) is checked again when it is decrypted
        expected = {encrypted["sha256"]}
    try:
        digest = hash_audio(paths)
    except OSError as exc:
        return f"{paths.relative}: audio unreadable: {exc.strerror or exc} (skipped)"
    if digest not in expected:
        return (
            f"{paths.relative}: the audio's sha256 {digest[:16]}... is not the one in the "
            "evidence (skipped, nothing exported or deleted)"
        )
    return None


def hash_audio(paths: RecordingPaths) -> str:
    digest = hashlib.sha256()
    with open_audio(paths) as f:
        while block := f.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()
