"""Data subjects by number for the lifecycle jobs: lookup digests, sealed callers, forgetting.

The index never holds a caller number: each call and recording row holds the *subject*, the
keyed lookup digest of the normalised number (:func:`callconsent.evidence.callers.lookup_digest`
with ``<ledger dir>/subject.key``). A lookup by number (``query``, ``export``, ``erase``,
``withdraw``, the withdrawal route) derives the same digest from the number asked for, so the
raw number a call signalled and the normalised one the route passes find the same calls.

Forgetting a call's caller (:meth:`Subjects.forget`) destroys its key in the caller key store
(:mod:`callconsent.evidence.caller_keys`) and drops the subject from the index: the ledger's
sealed number and name can no longer be read, nor tested against a guessed number.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from callconsent.evidence import callers
from callconsent.evidence.caller_keys import CallerKeys, subject_key, subject_key_path
from callconsent.lifecycle.errors import StorageError, storage_error


class Subjects:
    def __init__(self, ledger_path: Path) -> None:
        try:
            self._secret = subject_key(ledger_path)
        except OSError as exc:
            raise storage_error("read the subject key", subject_key_path(ledger_path), exc) from exc
        except ValueError as exc:  # a short key file
            raise StorageError(str(exc)) from exc
        self.keys = CallerKeys.beside(ledger_path)
        self._preloaded: dict[str, str | None] | None = None

    def digest(self, number: str | None) -> str | None:
        """The lookup digest of ``number`` (normalised); None for no usable number."""
        return callers.lookup_digest(self._secret, number)

    def subject_of(self, number: object, kid: object) -> str | None:
        """The subject of an index row: a sealed caller's stored digest (None once its key is
        destroyed), else the digest of a clear number (a sidecar, an old ledger entry)."""
        if isinstance(kid, str):
            if self._preloaded is not None:
                return self._preloaded.get(kid)
            return self.keys.lookup(kid)
        return self.digest(number) if isinstance(number, str) else None

    @contextlib.contextmanager
    def preloaded(self, gone: set[str]) -> Iterator[None]:
        """Answer :meth:`subject_of` from one read of the key store (a rebuild: a million rows
        without a million queries). Afterwards ``gone`` holds the key ids destroyed meanwhile
        (the app forgets a caller whose recording is withdrawn during the call)."""
        self._preloaded = self._lookups()
        try:
            yield
        finally:
            before, self._preloaded = self._preloaded, None
            gone.update(set(before) - set(self._lookups()))

    def _lookups(self) -> dict[str, str | None]:
        try:
            return self.keys.lookups()
        except OSError as exc:
            raise storage_error("read the caller keys", self.keys.path, exc) from exc

    def caller(self, call: Mapping[str, Any]) -> callers.Caller:
        """The caller of a ledger entry's (or sidecar's) ``call`` object, decrypted on the fly."""
        return callers.open_caller(call, self.keys.key)

    def forget(self, uniqueids: Iterable[str]) -> int:
        """Destroy the caller keys of calls ``uniqueids``; the number of keys destroyed."""
        try:
            return self.keys.destroy_calls(uniqueids)
        except OSError as exc:  # KeyStoreError: the store is not usable
            raise storage_error("destroy caller keys", self.keys.path, exc) from exc

    def close(self) -> None:
        self.keys.close()
