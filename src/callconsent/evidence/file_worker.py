"""The live store's sidecar work, fed by a queue to a thread that takes it in batches.

The evidence store (:mod:`callconsent.store`) used to run every sidecar write in
``asyncio.to_thread``: a hop to the default executor and back per write, about seven a recorded
call, each waking the event loop on its own. :class:`FileWorker` has a thread run the queued
jobs one after the other, in the order they came (jobs queued ``later``, a finished call's
final sidecar, after every other waiting job), until the queue is empty (or a few ms have
passed), then fsync each directory those jobs' renames went into once, and only then hand their
results back: one wake-up of the event loop per batch, whatever its size. One call's jobs are
queued one after the other (each awaited before the next), so they run in order.

Normally one thread does it all. Jobs stay in the queue until a thread takes them, one at a
time: when they have waited behind a batch that has been running for ``SPAWN_AFTER_SECONDS`` (a
busy disk: an fsync can take tens of ms), another thread takes them, up to ``max_threads``:
fsyncs that overlap share the file system's journal commits, where one thread alone would make
each wait for its own, and the queue (and with it the time from the caller's 1 to MixMonitor)
would grow without bound.

A job is a plain function taking a :class:`DirSyncs`: it writes its files with their own fsync
and leaves the directory fsync of a rename to the batch (:meth:`DirSyncs.later`). No job's result
is handed back before every directory it named is fsynced; a directory whose fsync fails fails
each job that named it (nothing of it is acknowledged). A job that needs a rename durable before
its next step (a tombstone before the audio is deleted) syncs the directory itself, at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, Generic, TypeVar

from callconsent.evidence.fsio import fsync_dir

#: A worker thread ends after this long with nothing to do (the next job starts another).
_IDLE_SECONDS: Final = 1.0
#: At most this many threads, more than one only while the disk is slow (see the module).
MAX_THREADS: Final = 6
#: Jobs waiting behind a batch running this long go to another thread (a normal batch of a few
#: sidecars, with an fsync each, takes a few ms).
SPAWN_AFTER_SECONDS: Final = 0.005

T = TypeVar("T")


class DirSyncs:
    """The directories one batch's renames went into, fsynced once each when the batch ends."""

    def __init__(self, sync: Callable[[Path], None]) -> None:
        self._fsync_dir = sync
        self._dirs: dict[Path, list[_Job[Any]]] = {}
        self._job: _Job[Any] | None = None

    def later(self, directory: Path) -> None:
        """Make a rename or unlink done in ``directory`` durable before the job's result is
        handed back (with the batch's one fsync of that directory)."""
        assert self._job is not None
        self._dirs.setdefault(directory, []).append(self._job)

    def _sync(self) -> None:
        for directory, jobs in self._dirs.items():
            try:
                self._fsync_dir(directory)
            except OSError as exc:  # not durable: no job that needed it is acknowledged
                for job in jobs:
                    job.fail(exc)
        self._dirs.clear()


class FileWorker:
    """Runs file jobs from asyncio in batches, off the event loop (see the module).
    :meth:`close` stops it."""

    def __init__(
        self,
        name: str = "evidence-files",
        *,
        sync_dir: Callable[[Path], None] = fsync_dir,
        max_threads: int = MAX_THREADS,
        round_seconds: float = SPAWN_AFTER_SECONDS,
    ) -> None:
        self._name = name
        self._sync_dir = sync_dir  # what makes a batch's renames durable, once per directory
        self._max_threads = max_threads
        self._round_seconds = round_seconds  # a thread acknowledges its jobs at least this often
        self._cond = threading.Condition()
        self._queue: deque[_Job[Any]] = deque()
        self._later: deque[_Job[Any]] = deque()  # run when nothing else waits
        self._threads: set[threading.Thread] = set()
        self._idle = 0  # threads waiting for work
        self._busy_since: dict[threading.Thread, float] = {}  # when each busy batch began
        self._check_armed = False  # a later look at whether waiting jobs need another thread
        self._closed = False

    async def run(self, work: Callable[[DirSyncs], T], *, later: bool = False) -> T:
        """Run ``work`` in the worker thread after the jobs queued before it; its result (or
        exception) once the directories it named are fsynced. ``later``: after every job that
        is not (work a caller or an agent is waiting for goes first, e.g. the sidecar a
        recording needs before it may start; a finished call's final sidecar can wait)."""
        loop = asyncio.get_running_loop()
        job: _Job[T] = _Job(work, loop, loop.create_future())
        with self._cond:
            if self._closed:
                raise RuntimeError("the evidence file worker is closed")
            (self._later if later else self._queue).append(job)
            self._grow(loop)
            self._cond.notify()
        await job.future
        return job.result()

    def _grow(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start a thread for the waiting jobs if none is free and every busy one has been in
        its batch ``SPAWN_AFTER_SECONDS``; else look again then. Holds ``_cond``."""
        if self._idle or len(self._threads) >= self._max_threads or not self._waiting():
            return
        if self._threads and len(self._busy_since) < len(self._threads):
            return  # a thread between two batches: it takes the jobs itself
        oldest = min(self._busy_since.values(), default=None)
        waited = 0.0 if oldest is None else time.monotonic() - oldest
        if oldest is None or waited >= SPAWN_AFTER_SECONDS:
            thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
            self._threads.add(thread)
            thread.start()
        elif not self._check_armed:
            self._check_armed = True
            loop.call_later(SPAWN_AFTER_SECONDS - waited, self._look_again, loop)

    def _look_again(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._cond:
            self._check_armed = False
            if not self._closed:
                self._grow(loop)

    def close(self) -> None:
        """Finish the queued jobs, then stop the threads (running a job after this fails)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            threads = list(self._threads)
        for thread in threads:
            thread.join()

    def _loop(self) -> None:
        me = threading.current_thread()
        while True:
            with self._cond:
                self._busy_since.pop(me, None)
                while not self._waiting() and not self._closed:
                    self._idle += 1
                    woken = self._cond.wait(_IDLE_SECONDS)
                    self._idle -= 1
                    if not woken:  # idle a while
                        break
                if not self._waiting():  # closed, or idle a while: the next job starts another
                    self._threads.discard(me)
                    return
                self._busy_since[me] = started = time.monotonic()
            self._batch(started)

    def _waiting(self) -> bool:
        """Jobs wait. Holds ``_cond``."""
        return bool(self._queue or self._later)

    def _batch(self, started: float) -> None:
        """Take jobs from the queue one at a time (those left can go to another thread while
        this one is slow) until it is empty or ``round_seconds`` have passed; then fsync the
        directories they named and hand back all their results with one wake-up per loop."""
        syncs = DirSyncs(self._sync_dir)
        batch: list[_Job[Any]] = []
        while True:
            with self._cond:
                if not self._waiting():
                    break
                job = (self._queue or self._later).popleft()
            syncs._job = job
            job.execute(syncs)
            batch.append(job)
            if time.monotonic() - started >= self._round_seconds:
                break
        syncs._job = None
        syncs._sync()
        by_loop: dict[asyncio.AbstractEventLoop, list[_Job[Any]]] = {}
        for job in batch:
            by_loop.setdefault(job.loop, []).append(job)
        for loop, jobs in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
                loop.call_soon_threadsafe(_settle, jobs)


def _settle(jobs: list[_Job[Any]]) -> None:
    for job in jobs:
        if not job.future.done():  # the awaiting task may have been cancelled meanwhile
            job.future.set_result(None)


class _Job(Generic[T]):
    __slots__ = ("_error", "_value", "future", "loop", "work")

    def __init__(
        self,
        work: Callable[[DirSyncs], T],
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[None],
    ) -> None:
        self.work = work
        self.loop = loop
        self.future = future
        self._value: T | None = None
        self._error: Exception | None = None

    def execute(self, syncs: DirSyncs) -> None:
        try:
            self._value = self.work(syncs)
        except Exception as exc:  # noqa: BLE001  # handed to the awaiting coroutine, as to_thread does
            self._error = exc

    def fail(self, exc: Exception) -> None:
        if self._error is None:
            self._error = exc

    def result(self) -> T:
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]  # set by execute when no error
