"""The evidence store's file worker: one thread, jobs in order, one directory fsync per batch."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from callconsent.evidence.file_worker import DirSyncs, FileWorker


class Syncs:
    """Records the directory fsyncs the worker asks for (optionally failing them)."""

    def __init__(self, fail: bool = False) -> None:
        self.dirs: list[Path] = []
        self.fail = fail

    def __call__(self, directory: Path) -> None:
        self.dirs.append(directory)
        if self.fail:
            raise OSError(5, "Input/output error")


async def test_jobs_run_in_the_order_they_were_queued_and_return_their_results() -> None:
    worker = FileWorker(sync_dir=Syncs(), max_threads=1)
    done: list[int] = []

    def job(n: int) -> int:
        done.append(n)
        return n * 10

    results = await asyncio.gather(*(worker.run(lambda _, n=n: job(n)) for n in range(20)))
    worker.close()
    assert done == list(range(20))
    assert results == [n * 10 for n in range(20)]


async def test_jobs_queued_later_run_after_every_other_waiting_job() -> None:
    worker = FileWorker(sync_dir=Syncs(), max_threads=1)
    release = threading.Event()
    done: list[str] = []
    busy = asyncio.ensure_future(worker.run(lambda _: release.wait(5)))
    await asyncio.sleep(0.05)  # the worker is inside the first job; these wait
    jobs = [
        worker.run(lambda _: done.append("final 1"), later=True),
        worker.run(lambda _: done.append("create")),
        worker.run(lambda _: done.append("final 2"), later=True),
        worker.run(lambda _: done.append("agent")),
    ]
    waiting = asyncio.gather(*jobs)
    await asyncio.sleep(0.05)
    release.set()
    await asyncio.gather(busy, waiting)
    worker.close()
    assert done == ["create", "agent", "final 1", "final 2"]


async def test_jobs_queued_while_one_runs_go_with_it_one_fsync_per_directory_one_wake_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    syncs = Syncs()
    worker = FileWorker(sync_dir=syncs, max_threads=1, round_seconds=30)
    loop = asyncio.get_running_loop()
    wakes: list[object] = []
    real = loop.call_soon_threadsafe

    def counting(callback: Any, *args: Any) -> Any:
        wakes.append(callback)
        return real(callback, *args)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counting)
    release = threading.Event()
    first = asyncio.ensure_future(worker.run(lambda _: release.wait(5)))
    await asyncio.sleep(0.05)  # the worker is inside the first job

    def rename_in(folder: str) -> Callable[[DirSyncs], None]:
        return lambda dirs: dirs.later(Path(folder))

    rest = [worker.run(rename_in("a" if n % 2 else "b")) for n in range(10)]
    waiting = asyncio.gather(*rest)
    await asyncio.sleep(0.05)
    release.set()
    await first
    await waiting
    worker.close()
    assert sorted(syncs.dirs) == [Path("a"), Path("b")]
    assert len(wakes) == 1  # the ten queued behind the first, with it


async def test_a_result_is_handed_back_only_after_its_directory_is_fsynced() -> None:
    order: list[str] = []

    def sync(directory: Path) -> None:
        order.append(f"fsync {directory}")

    worker = FileWorker(sync_dir=sync)

    def job(dirs: DirSyncs) -> str:
        order.append("renamed")
        dirs.later(Path("day"))
        return "written"

    assert await worker.run(job) == "written"
    order.append("acknowledged")
    worker.close()
    assert order == ["renamed", "fsync day", "acknowledged"]


async def test_a_failed_directory_fsync_fails_every_job_that_needed_it_and_no_other() -> None:
    worker = FileWorker(sync_dir=Syncs(fail=True))
    needs = worker.run(lambda dirs: dirs.later(Path("day")))
    plain = worker.run(lambda _: "read")
    results = await asyncio.gather(needs, plain, return_exceptions=True)
    worker.close()
    assert isinstance(results[0], OSError)
    assert results[1] == "read"


async def test_a_job_that_raises_gives_its_error_to_its_caller_and_the_worker_goes_on() -> None:
    worker = FileWorker(sync_dir=Syncs())

    def broken(_: DirSyncs) -> None:
        raise FileNotFoundError("no such folder")

    with pytest.raises(FileNotFoundError, match="no such folder"):
        await worker.run(broken)
    assert await worker.run(lambda _: "next") == "next"
    worker.close()


async def test_running_a_job_after_close_is_refused() -> None:
    worker = FileWorker(sync_dir=Syncs())
    worker.close()
    with pytest.raises(RuntimeError, match="closed"):
        await worker.run(lambda _: None)


async def test_all_jobs_of_a_batch_run_in_one_thread_not_the_event_loops() -> None:
    worker = FileWorker(sync_dir=Syncs(), max_threads=1)
    threads = await asyncio.gather(*(worker.run(lambda _: threading.get_ident()) for _ in range(5)))
    worker.close()
    assert threading.get_ident() not in threads
    assert len(set(threads)) == 1


async def test_jobs_waiting_behind_a_slow_batch_go_to_another_thread() -> None:
    worker = FileWorker(sync_dir=Syncs(), max_threads=2)
    release = threading.Event()
    slow = asyncio.ensure_future(worker.run(lambda _: release.wait(5)))
    await asyncio.sleep(0.05)  # the first thread is inside the slow job (a stuck fsync)

    behind = await asyncio.wait_for(worker.run(lambda _: "done"), 2)

    assert behind == "done"
    assert not slow.done()
    release.set()
    await slow
    worker.close()


async def test_no_more_threads_than_max_threads_even_when_every_one_is_stuck() -> None:
    worker = FileWorker(sync_dir=Syncs(), max_threads=2)
    release = threading.Event()
    stuck = []
    for _ in range(2):  # one after the other: each thread takes one and is stuck in it
        stuck.append(asyncio.ensure_future(worker.run(lambda _: release.wait(5))))
        await asyncio.sleep(0.05)
    third = asyncio.ensure_future(worker.run(lambda _: threading.get_ident()))
    await asyncio.sleep(0.1)

    assert not third.done()  # waits for one of the two threads
    release.set()
    await asyncio.gather(*stuck, third)
    worker.close()
