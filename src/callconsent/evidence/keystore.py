"""The recordings' data keys, each wrapped by a key-encryption key (R33; crypto-shredding).

One small JSON file per encrypted recording, ``<ledger dir>/keys/<uniqueid>.key`` (folder 0700,
files 0600), kept apart from the recordings tree so that a copy of the recordings (a backup, an
export folder) holds no key::

    {"kek_id": "2026-01", "wrapped": "<base64: nonce | AES-GCM(KEK, data key)>"}

The key-encryption keys (KEKs) are the admin's (config ``encryption``): the current one wraps
new keys, older ones still open the keys they wrapped, and :meth:`KeyStore.rewrap` moves every
key to the current KEK (rotation). :func:`destroy_key` needs no KEK: erasure and purge delete
the key file, and the recording can never be read again, whatever copies of it exist.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from callconsent.evidence.crypto import DecryptionError, new_data_key, unwrap_key, wrap_key
from callconsent.evidence.fsio import MalformedDocument, atomic_write_json, fsync_dir, read_json
from callconsent.evidence.paths import check_uniqueid

KEYS_FOLDER: Final = "keys"
KEY_SUFFIX: Final = ".key"


def keys_dir(ledger_path: Path) -> Path:
    return ledger_path.parent / KEYS_FOLDER


def key_path(folder: Path, uniqueid: str) -> Path:
    return folder / f"{check_uniqueid(uniqueid)}{KEY_SUFFIX}"


def destroy_key(folder: Path, uniqueid: str) -> bool:
    """Delete a recording's wrapped data key (crypto-shredding); True if there was one."""
    path = key_path(folder, uniqueid)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    fsync_dir(folder)
    return True


class KeyStore:
    def __init__(self, folder: Path, keks: Mapping[str, bytes], current: str) -> None:
        if current not in keks:
            raise ValueError(f"the current key-encryption key {current!r} is not among the keys")
        self.folder = folder
        self._keks = dict(keks)
        self.current = current

    def create(self, uniqueid: str) -> bytes:
        """A new data key for ``uniqueid``, stored wrapped under the current KEK (never
        overwriting one already there: ``FileExistsError``)."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = new_data_key()
        self._write(uniqueid, key, overwrite=False)
        return key

    def open(self, uniqueid: str) -> bytes:
        """The data key of ``uniqueid`` (``FileNotFoundError``: destroyed or never made;
        ``DecryptionError``: its KEK is not configured, or it does not open)."""
        doc = read_json(key_path(self.folder, uniqueid))
        kek_id, wrapped = _fields(doc, key_path(self.folder, uniqueid))
        kek = self._keks.get(kek_id)
        if kek is None:
            raise DecryptionError(
                f"the data key of {uniqueid} is wrapped by key-encryption key {kek_id!r}, "
                "which is not configured (encryption.previous_keys)"
            )
        return unwrap_key(kek, wrapped, kek_id=kek_id, uniqueid=uniqueid)

    def kek_id_of(self, uniqueid: str) -> str:
        path = key_path(self.folder, uniqueid)
        return _fields(read_json(path), path)[0]

    def rewrap(self) -> int:
        """Wrap every data key under the current KEK (after a rotation); return how many moved."""
        moved = 0
        for path in sorted(self.folder.glob(f"*{KEY_SUFFIX}")):
            uniqueid = path.name.removesuffix(KEY_SUFFIX)
            if self.kek_id_of(uniqueid) == self.current:
                continue
            self._write(uniqueid, self.open(uniqueid), overwrite=True)
            moved += 1
        return moved

    def _write(self, uniqueid: str, key: bytes, *, overwrite: bool) -> None:
        wrapped = wrap_key(self._keks[self.current], key, kek_id=self.current, uniqueid=uniqueid)
        doc = {"kek_id": self.current, "wrapped": base64.b64encode(wrapped).decode("ascii")}
        atomic_write_json(key_path(self.folder, uniqueid), doc, mode=0o600, overwrite=overwrite)


def _fields(doc: Mapping[str, object], path: Path) -> tuple[str, bytes]:
    kek_id, wrapped = doc.get("kek_id"), doc.get("wrapped")
    if not isinstance(kek_id, str) or not isinstance(wrapped, str):
        raise MalformedDocument(path, "a key file needs kek_id and wrapped (strings)")
    try:
        return kek_id, base64.b64decode(wrapped, validate=True)
    except ValueError:
        raise MalformedDocument(path, "wrapped is not base64") from None


__all__ = ["KeyStore", "destroy_key", "key_path", "keys_dir"]
