"""Group commit: ledger lines from many calls share one write and one fsync, each acknowledged
only once it is in the file, the chain intact."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from callconsent.evidence.caller_keys import CallerKeys
from callconsent.evidence.callers import KeyRow
from callconsent.evidence.group_commit import GroupCommit
from callconsent.evidence.ledger import Ledger, LedgerEntryInvalid, verify_chain


def note(n: int) -> dict[str, Any]:
    return {"type": "note", "at": "2026-11-24T12:00:00.123Z", "n": n}


#: A ``call`` entry lacking every field but its type: the schema refuses it.
REFUSED: dict[str, Any] = {"type": "call", "at": "2026-11-24T12:00:00.123Z"}


def written(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="ascii").splitlines()]


@contextmanager
def ledger_locked(path: Path) -> Iterator[None]:
    """Hold the ledger's file lock, as another appender (the CLI) would: the writer waits."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


async def settle() -> None:
    """Let the writer thread pick up what is queued (it then blocks on the held lock)."""
    for _ in range(5):
        await asyncio.sleep(0.02)


def test_append_many_chains_the_records_in_order(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.append(note(0))

    entries = ledger.append_many([note(1), note(2), note(3)])

    assert [e["seq"] for e in entries] == [2, 3, 4]
    assert written(tmp_path / "ledger.jsonl")[1:] == entries
    assert verify_chain(tmp_path / "ledger.jsonl") == []


def test_append_many_with_a_refused_record_writes_none(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.append(note(0))

    with pytest.raises(LedgerEntryInvalid):
        ledger.append_many([note(1), REFUSED, note(2)])

    assert [e["n"] for e in written(tmp_path / "ledger.jsonl")] == [0]


async def test_lines_from_many_calls_at_once_form_one_valid_chain(tmp_path: Path) -> None:
    group = GroupCommit(Ledger(tmp_path / "ledger.jsonl"))

    entries = await asyncio.gather(*(group.append_async(note(n)) for n in range(60)))
    group.close()

    on_disk = written(tmp_path / "ledger.jsonl")
    assert sorted(e["n"] for e in on_disk) == list(range(60))
    assert [e["seq"] for e in on_disk] == list(range(1, 61))
    assert sorted(entries, key=lambda e: e["seq"]) == on_disk
    assert verify_chain(tmp_path / "ledger.jsonl") == []


async def test_a_line_is_not_acknowledged_before_it_is_written(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    group = GroupCommit(Ledger(path))
    with ledger_locked(path):
        task = asyncio.create_task(group.append_async(note(1)))
        await settle()
        assert not task.done()
        assert path.read_bytes() == b""
    entry = await asyncio.wait_for(task, 5)
    group.close()
    assert written(path) == [entry]


async def test_lines_queued_during_a_write_go_out_together_in_order_of_arrival(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.jsonl"
    group = GroupCommit(Ledger(path))
    with ledger_locked(path):
        first = asyncio.create_task(group.append_async(note(0)))
        await settle()  # the writer holds note 0 and waits for the lock
        rest = [asyncio.create_task(group.append_async(note(n))) for n in range(1, 6)]
        await settle()
    await asyncio.wait_for(asyncio.gather(first, *rest), 5)
    group.close()
    assert [e["n"] for e in written(path)] == [0, 1, 2, 3, 4, 5]
    assert verify_chain(path) == []


async def test_a_batch_of_lines_wakes_the_event_loop_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ledger.jsonl"
    group = GroupCommit(Ledger(path))
    loop = asyncio.get_running_loop()
    wakes: list[object] = []
    real = loop.call_soon_threadsafe

    def counting(callback: Any, *args: Any) -> Any:
        wakes.append(callback)
        return real(callback, *args)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counting)
    with ledger_locked(path):
        first = asyncio.create_task(group.append_async(note(0)))
        await settle()  # the writer holds note 0 and waits for the lock
        rest = [asyncio.create_task(group.append_async(note(n))) for n in range(1, 11)]
        await settle()
    await asyncio.wait_for(asyncio.gather(first, *rest), 5)
    group.close()
    assert len(written(path)) == 11
    assert len(wakes) == 2  # note 0's batch, then the ten queued behind it


async def test_a_refused_record_fails_only_its_own_caller(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    group = GroupCommit(Ledger(path))
    with ledger_locked(path):
        first = asyncio.create_task(group.append_async(note(0)))
        await settle()
        batch = [
            asyncio.create_task(group.append_async(note(1))),
            asyncio.create_task(group.append_async(REFUSED)),
            asyncio.create_task(group.append_async(note(2))),
        ]
        await settle()
    results = await asyncio.wait_for(asyncio.gather(first, *batch, return_exceptions=True), 5)
    group.close()
    assert isinstance(results[2], LedgerEntryInvalid)
    assert [e["n"] for e in written(path)] == [0, 1, 2]
    assert verify_chain(path) == []


async def test_appends_from_worker_threads_and_the_loop_share_the_chain(tmp_path: Path) -> None:
    group = GroupCommit(Ledger(tmp_path / "ledger.jsonl"))

    await asyncio.gather(
        *(asyncio.to_thread(group.append, note(n)) for n in range(10)),
        *(group.append_async(note(n)) for n in range(10, 20)),
    )
    group.close()

    assert sorted(e["n"] for e in written(tmp_path / "ledger.jsonl")) == list(range(20))
    assert verify_chain(tmp_path / "ledger.jsonl") == []


def test_closed_writer_refuses_new_lines(tmp_path: Path) -> None:
    group = GroupCommit(Ledger(tmp_path / "ledger.jsonl"))
    group.append(note(0))
    group.close()

    with pytest.raises(RuntimeError, match="closed"):
        group.append(note(1))
    assert [e["n"] for e in written(tmp_path / "ledger.jsonl")] == [0]


def _key_row(n: int) -> KeyRow:
    return KeyRow(f"{n:032x}", f"1764000000.{n}", None, bytes([n + 1]) * 32)


def test_a_batch_the_ledger_refuses_leaves_no_key_rows_behind(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    path.mkdir()  # the ledger cannot be opened for writing: the append fails after the keys
    keys = CallerKeys.beside(path)
    group = GroupCommit(Ledger(path), keys)
    with pytest.raises(OSError, match="directory"):
        group.append(note(1), (_key_row(1),))
    group.close()
    assert keys.key(_key_row(1).kid) is None
    assert keys.lookups() == {}
    keys.close()


async def test_a_refused_record_takes_its_key_rows_with_it_and_the_others_keep_theirs(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.jsonl"
    keys = CallerKeys.beside(path)
    group = GroupCommit(Ledger(path), keys)
    rows = [_key_row(n) for n in range(3)]
    with ledger_locked(path):
        first = asyncio.create_task(group.append_async(note(0)))
        await settle()
        batch = [  # one batch: the refused record is found by writing them one by one
            asyncio.create_task(group.append_async(note(1), (rows[0],))),
            asyncio.create_task(group.append_async(REFUSED, (rows[1],))),
            asyncio.create_task(group.append_async(note(2), (rows[2],))),
        ]
        await settle()
    results = await asyncio.wait_for(asyncio.gather(first, *batch, return_exceptions=True), 5)
    group.close()
    assert isinstance(results[2], LedgerEntryInvalid)
    assert [keys.key(row.kid) == row.key for row in rows] == [True, False, True]
    keys.close()
