"""Group commit: ledger appends from many calls at once share one write and one fsync.

The live app's evidence store appends through :class:`GroupCommit`; offline commands append
with :meth:`callconsent.evidence.ledger.Ledger.append` directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import structlog

from callconsent.evidence.callers import KeyRow
from callconsent.evidence.ledger import Ledger

if TYPE_CHECKING:
    from callconsent.evidence.caller_keys import CallerKeys

log = structlog.get_logger("callconsent.ledger")

#: The group-commit writer thread ends after this long with nothing to write.
_IDLE_SECONDS: Final = 1.0


class GroupCommit:
    """Ledger appends from many calls at once share one write and one fsync.

    One writer thread takes every record queued while the previous batch was being written and
    fsynced, appends them with :meth:`Ledger.append_many`, and only then acknowledges each: a
    line is never reported written before it is durable. Under load a batch holds the lines that
    arrived during one fsync (a few ms); alone, a line waits for nothing but its own fsync.
    From asyncio, :meth:`append_async` awaits without a worker-thread hop, and a batch wakes
    each event loop once, whatever its size; from a thread, :meth:`append` blocks. A batch that fails (a record the schema refuses, disk full) is
    retried record by record, so each caller gets its own result; any other failure (disk
    full) is every caller's in the batch, and nothing of it is acknowledged.
    """

    def __init__(self, ledger: Ledger, keys: CallerKeys | None = None) -> None:
        self.ledger = ledger
        #: where the batch's caller keys go, in one transaction before its ledger lines
        self.keys = keys
        self._cond = threading.Condition()
        self._queue: list[_Pending] = []
        self._thread: threading.Thread | None = None
        self._closed = False

    def append(self, record: Mapping[str, Any], keys: Sequence[KeyRow] = ()) -> dict[str, Any]:
        """Append ``record`` durably (blocks until its batch is fsynced); the entry written.
        ``keys``: the caller keys the record's sealed values need, stored durably first."""
        done = threading.Event()
        pending = _Pending(record, keys, done)
        self._put(pending)
        done.wait()
        return pending.result()

    async def append_async(
        self, record: Mapping[str, Any], keys: Sequence[KeyRow] = ()
    ) -> dict[str, Any]:
        """:meth:`append` for a coroutine: resolved from the writer thread, after the fsync."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        pending = _Pending(record, keys, (loop, future))
        self._put(pending)
        await future
        return pending.result()

    def close(self) -> None:
        """Write what is queued, then stop the writer thread (appending after this fails)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _put(self, pending: _Pending) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("the ledger writer is closed")
            self._queue.append(pending)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="ledger-group-commit", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._queue and not self._closed:
                    self._cond.wait(_IDLE_SECONDS)
                if not self._queue:  # closed, or idle a while: the next append starts another
                    self._thread = None
                    return
                batch, self._queue = self._queue, []
            self._write(batch)
            _wake(batch)

    def _write(self, batch: list[_Pending]) -> None:
        rows = [row for p in batch for row in p.keys]
        stored = False
        try:
            if rows:  # one transaction for the batch, durable before any line names a key
                if self.keys is None:
                    raise RuntimeError("caller keys given, but this ledger writer has no key store")
                self.keys.put(rows)
                stored = True
            entries = self.ledger.append_many([p.record for p in batch])
        except ValueError as exc:  # refused before anything was written
            if stored:
                self._discard(rows)
            if len(batch) == 1:
                batch[0].finish(None, exc)
                return
            for pending in batch:  # find the one refused; the others still get written
                self._write([pending])
            return
        except Exception as exc:  # noqa: BLE001  # disk trouble: every waiter hears of it
            if stored:
                self._discard(rows)
            for pending in batch:
                pending.finish(None, exc)
            return
        for pending, entry in zip(batch, entries, strict=True):
            pending.finish(entry, None)

    def _discard(self, rows: Sequence[KeyRow]) -> None:
        """The batch's key rows, stored for lines the ledger then refused (it cuts a failed
        append back: no line names them): deleted. Each key is fresh (one per sealed line), so
        no line written before names one either. If the key store refuses too, they stay,
        logged: keys without a line, readable by no ledger entry."""
        assert self.keys is not None  # only rows that were stored
        try:
            self.keys.discard(row.kid for row in rows)
        except OSError as exc:  # KeyStoreError included
            log.error("caller_keys_not_discarded", count=len(rows), error=str(exc))


def _wake(batch: list[_Pending]) -> None:
    """Tell a batch's waiters their results: a thread each, an event loop once for all its own."""
    futures: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for pending in batch:
        if isinstance(pending.waiter, threading.Event):
            pending.waiter.set()
        else:
            loop, future = pending.waiter
            futures.setdefault(loop, []).append(future)
    for loop, waiting in futures.items():
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            loop.call_soon_threadsafe(_resolve, waiting)


def _resolve(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():  # the awaiting task may have been cancelled meanwhile
            future.set_result(None)


class _Pending:
    __slots__ = ("_entry", "_error", "keys", "record", "waiter")

    def __init__(
        self,
        record: Mapping[str, Any],
        keys: Sequence[KeyRow],
        waiter: threading.Event | tuple[asyncio.AbstractEventLoop, asyncio.Future[None]],
    ) -> None:
        self.record = record
        self.keys = keys
        self.waiter = waiter  # told by :func:`_wake` once the whole batch is written
        self._entry: dict[str, Any] | None = None
        self._error: Exception | None = None

    def finish(self, entry: dict[str, Any] | None, error: Exception | None) -> None:
        self._entry, self._error = entry, error

    def result(self) -> dict[str, Any]:
        if self._error is not None:
            raise self._error
        assert self._entry is not None
        return self._entry
