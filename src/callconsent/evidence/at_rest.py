"""A finished recording encrypted in place, and read back (R33). Format: :mod:`.crypto`; keys:
:mod:`.keystore`.

:meth:`AtRest.encrypt` runs when a recording is final (the app after the hangup, ``reconcile``
for what a crash left): a data key is made and stored wrapped (or the one an interrupted run
made is reused), the WAV is encrypted chunk by chunk into a temporary file beside it, the
sidecar gains ``recording.encryption`` (scheme, key id, size and sha256 of the encrypted file;
``recording.bytes``/``sha256`` stay those of the WAV, so an exported or decrypted copy still
matches the evidence), and then the encrypted file replaces the WAV. A crash before the replace
leaves the WAV in clear, which the next run encrypts again (the sidecar is rewritten to match).
The audio file keeps its name (``<uniqueid>.wav``): paths, deletion, holds and the index are
unchanged; only what reads the audio (verify, export, decrypt) looks at the sidecar.
"""

from __future__ import annotations

import copy
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Final

from callconsent.evidence import sidecar
from callconsent.evidence.crypto import (
    HEADER_SIZE,
    SCHEME,
    DecryptionError,
    decrypt_chunks,
    encrypt_stream,
    is_encrypted,
)
from callconsent.evidence.fsio import FILE_MODE, fsync_dir
from callconsent.evidence.keystore import KeyStore
from callconsent.evidence.paths import RecordingPaths

_READ: Final = 1 << 20


def file_is_encrypted(path: Path) -> bool:
    with path.open("rb") as f:
        return is_encrypted(f.read(HEADER_SIZE))


def encryption_of(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The sidecar's ``recording.encryption`` (None: the audio is in clear)."""
    found = doc.get("recording", {}).get("encryption")
    return found if isinstance(found, dict) else None


class _Hashing:
    """A writable file that also counts and hashes what goes through it."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.raw.write(data)


class AtRest:
    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys

    def encrypt(
        self, paths: RecordingPaths, *, source: Path | None = None
    ) -> dict[str, Any] | None:
        """Encrypt the final recording of ``paths`` in place, or from ``source`` (the clear WAV
        in the private spool) into ``paths.audio``, deleting ``source`` once the encrypted file
        is in place; the new sidecar, or None when there is nothing to do (already encrypted,
        no audio, not final). A leftover ``source`` beside an encrypted file (a crash after the
        replace) is deleted."""
        doc = sidecar.load(paths)
        if doc["state"] != sidecar.State.FINAL or not doc["recording"]["has_audio"]:
            return None
        clear = paths.audio if source is None else source
        if source is not None and paths.audio.exists() and file_is_encrypted(paths.audio):
            if encryption_of(doc) is not None:  # done before a crash: only the spool is left
                source.unlink(missing_ok=True)
            return None
        if not clear.exists() or file_is_encrypted(clear):
            return None
        try:
            key = self.keys.create(paths.uniqueid)
        except FileExistsError:  # an interrupted run made it: the same key
            key = self.keys.open(paths.uniqueid)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{paths.audio.name}.", suffix=".enc.tmp", dir=paths.directory
        )
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as raw, clear.open("rb") as src:
                os.fchmod(raw.fileno(), FILE_MODE)
                out = _Hashing(raw)
                encrypt_stream(src, out, key)
                raw.flush()
                os.fsync(raw.fileno())
            new = copy.deepcopy(doc)
            new["recording"]["encryption"] = {
                "scheme": SCHEME,
                "key_id": self.keys.kek_id_of(paths.uniqueid),
                "bytes": out.size,
                "sha256": out.digest.hexdigest(),
            }
            sidecar.write(paths, new)
            os.replace(tmp, paths.audio)
            fsync_dir(paths.directory)
        finally:  # gone after the replace; left over only when something failed
            tmp.unlink(missing_ok=True)
        if source is not None:
            source.unlink(missing_ok=True)
            fsync_dir(source.parent)
        return new

    def plain_chunks(self, paths: RecordingPaths, doc: dict[str, Any]) -> Iterator[bytes]:
        """The recording's WAV bytes, decrypted when the sidecar says it is encrypted."""
        with paths.audio.open("rb") as src:
            if encryption_of(doc) is None or not is_encrypted(src.read(HEADER_SIZE)):
                src.seek(0)
                while block := src.read(_READ):
                    yield block
                return
            src.seek(0)
            yield from decrypt_chunks(src, self.keys.open(paths.uniqueid))


def plain_chunks(
    at_rest: AtRest | None, paths: RecordingPaths, doc: dict[str, Any]
) -> Iterator[bytes]:
    """As :meth:`AtRest.plain_chunks`; without keys (encryption not configured) a file in clear
    is read as it is and an encrypted one raises ``DecryptionError``."""
    if at_rest is not None:
        yield from at_rest.plain_chunks(paths, doc)
        return
    if encryption_of(doc) is not None and file_is_encrypted(paths.audio):
        raise DecryptionError("the recording is encrypted and no encryption keys are configured")
    with paths.audio.open("rb") as src:
        while block := src.read(_READ):
            yield block
