"""Reading the sidecars of many day folders for the index, in worker processes on a rebuild.

A rebuild reads every sidecar (a million files at scale): reading and parsing them is most of
its work. :class:`DayFeed` hands day folders to worker processes and gives back their rows in
day order, so the calling process can ingest the ledger meanwhile and only write rows. Workers
are forked (``spawn`` would re-run a caller's ``__main__`` without a main guard); they only run
:func:`~._scan.day_rows` and leave by ``os._exit``, so the inherited SQLite connection is never
used or closed there. At most ``2 * workers`` days are in flight, so memory stays flat whatever
the number of days. With ``workers=0`` (an incremental update: a few changed days) everything runs in this process.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context

from callconsent.lifecycle._scan import Day, DayRows, day_rows


def default_workers() -> int:
    """One worker per CPU beyond the one ingesting the ledger (at least one, at most four)."""
    return max(1, min(4, (os.cpu_count() or 1) - 1))


class DayFeed:
    """The rows of ``days``, in order: :meth:`ready` (what is done, without waiting) while the
    caller has other work, then :meth:`rest`. Use as a context manager."""

    def __init__(self, days: Iterable[Day], *, workers: int) -> None:
        self._days = iter(days)
        self._pending: deque[Future[DayRows]] = deque()
        self._window = 2 * workers
        self._pool = (
            ProcessPoolExecutor(workers, mp_context=get_context("fork")) if workers > 0 else None
        )
        self._fill()

    def _fill(self) -> None:
        if self._pool is None:
            return
        while len(self._pending) < self._window:
            day = next(self._days, None)
            if day is None:
                return
            self._pending.append(self._pool.submit(day_rows, day))

    def ready(self) -> Iterator[DayRows]:
        """Days already read by a worker, without blocking (none without workers)."""
        while self._pending and self._pending[0].done():
            yield self._pending.popleft().result()
            self._fill()

    def rest(self) -> Iterator[DayRows]:
        """Every remaining day, waiting for the workers (or reading them here)."""
        if self._pool is None:
            yield from map(day_rows, self._days)
            return
        while self._pending:
            yield self._pending.popleft().result()
            self._fill()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> DayFeed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
