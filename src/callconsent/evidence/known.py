"""The sidecars a live process wrote itself, remembered so a call's next change needs no read.

The live store (:mod:`callconsent.store`) changes a call's sidecar up to three times (created,
the agent's decision, final). Each change used to read the file back, parse and validate it.
:class:`KnownSidecars` keeps the document this process last wrote per call with the file's
identity (inode, mtime in ns, size): while the file on disk is still that one, the remembered
document is it. A file someone else replaced meanwhile (``callconsent withdraw`` writes a new
file atomically, so a new inode) is read from disk and validated, as before.

Writes skip the JSON-Schema check: only documents the store's own builders made come through
here (the unit tests check every builder against the schema; ``verify --deep`` checks files).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from callconsent.evidence import sidecar
from callconsent.evidence.fsio import copy_document
from callconsent.evidence.paths import RecordingPaths


class KnownSidecars:
    def __init__(self) -> None:
        self._docs: dict[str, tuple[dict[str, Any], tuple[int, int, int]]] = {}

    def write(
        self,
        key: str,
        where: RecordingPaths,
        doc: dict[str, Any],
        *,
        create: bool = False,
        dir_sync: Callable[[Path], None] | None = None,
    ) -> None:
        """Write ``doc`` atomically as the sidecar of ``where`` (``create``: only if there is
        none yet) and remember it under ``key``. ``dir_sync``: see :func:`sidecar.write`."""
        if create:
            st = sidecar.create(where, doc, schema_check=False, dir_sync=dir_sync)
        else:
            st = sidecar.write(where, doc, schema_check=False, dir_sync=dir_sync)
        self._docs[key] = (doc, (st.st_ino, st.st_mtime_ns, st.st_size))

    def read(self, key: str, where: RecordingPaths) -> dict[str, Any]:
        """The sidecar of ``where``: the remembered document while the file is still the one
        written, else the file, read and validated. A copy: the caller may change it."""
        known = self._docs.get(key)
        if known is not None:
            try:
                st = os.stat(where.sidecar)
            except FileNotFoundError:
                self._docs.pop(key, None)
                raise
            if (st.st_ino, st.st_mtime_ns, st.st_size) == known[1]:
                return copy_document(known[0])
            self._docs.pop(key, None)
        return sidecar.load(where)

    def forget(self, key: str) -> None:
        self._docs.pop(key, None)
