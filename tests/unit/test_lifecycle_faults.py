"""Evidence that never lies (issue 12): bad input and faults give a clear error, never a
traceback; a full disk leaves no torn line and purge still frees space."""

from __future__ import annotations

import errno
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from callconsent.config import Config
from callconsent.evidence.ledger import Ledger, iter_entries, verify_chain
from callconsent.lifecycle import audit, query
from callconsent.lifecycle._context import Context
from callconsent.lifecycle.anonymise import anonymise
from callconsent.lifecycle.errors import DiskFull, IndexUnusable, LifecycleError, StorageError
from callconsent.lifecycle.export import export
from callconsent.lifecycle.hold import set_hold
from callconsent.lifecycle.identify import IdentifyError, identify
from callconsent.lifecycle.purge import AUDIT_CHUNK, purge
from callconsent.lifecycle.reconcile import reconcile
from tests.support.lifecycle_fixtures import NUMBER, T0, Store, make_config, make_store
from tests.support.tamper import fill, small_tmpfs

NOW = T0 + timedelta(days=5)
DAY91 = T0 + timedelta(days=91)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = make_store(tmp_path)
    store.call("3000.1", when=T0)
    store.call("3000.2", when=T0)
    return store


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path)


# -- item 8: tracebacks instead of errors ------------------------------------------------


@pytest.mark.parametrize("year", [1, 1969, 9001, 9999])
def test_a_run_time_out_of_range_is_a_clear_error(store: Store, year: int) -> None:
    with pytest.raises(LifecycleError, match="out of range"):
        store.context(datetime(year, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize("days", [999_999_999, -1, 36_501])
def test_a_claims_period_out_of_range_is_a_clear_error(store: Store, days: int) -> None:
    with store.context(NOW) as ctx, pytest.raises(LifecycleError, match="--claims-days"):
        anonymise(ctx, claims_days=days)


def test_export_to_the_last_representable_day_finds_the_calls(
    store: Store, config: Config, tmp_path: Path
) -> None:
    to = query.bound("9999-12-31", end=True)
    with store.context(NOW) as ctx:
        result = export(ctx, config, query.Selector(date_to=to), reason="r", out_dir=tmp_path / "x")
    assert result.call_ids == ["3000.1", "3000.2"]


@pytest.mark.parametrize("text", ["31-12-9999", "0001-01-01T00:00:00+05:00", "2026-01-05T10:00"])
def test_a_bad_date_bound_is_a_clear_error_naming_the_option(text: str) -> None:
    with pytest.raises(LifecycleError, match=r"^--to "):
        query.bound(text, end=True)


def test_identify_on_an_unreadable_file_is_a_clear_error(store: Store) -> None:
    unreadable = Path("/proc/self/mem")  # a regular file whose read fails (EIO), even for root
    with store.context(NOW) as ctx, pytest.raises(IdentifyError, match="cannot read it"):
        identify(ctx, unreadable)


def test_a_ledger_path_that_is_a_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "ledger.jsonl").mkdir()
    with pytest.raises(StorageError, match="ledger path is a folder"):
        Context.create(tmp_path / "rec", tmp_path / "ledger.jsonl", now=NOW)


def test_a_garbage_index_is_a_clear_error_and_index_rebuild_recovers(store: Store) -> None:
    with store.context(NOW) as ctx:
        set_hold(ctx, "3000.1", reason="case", case_ref="C-1", review_date=date(2027, 1, 1))
    index = store.ledger_path.parent / "index.sqlite3"
    for stale in (index, Path(f"{index}-wal"), Path(f"{index}-shm")):
        stale.unlink(missing_ok=True)
    index.write_bytes(b"not sqlite at all " * 500)
    with store.context(DAY91) as ctx, pytest.raises(IndexUnusable, match="index rebuild"):
        purge(ctx, dry_run=True)
    with store.context(DAY91) as ctx:
        stats = ctx.index.rebuild()
        report = purge(ctx, dry_run=False)
    assert stats.sidecars == 2 and stats.problems == 0
    assert report.counts == {"held": 1, "deleted": 1}  # the hold came back from the ledger


def test_an_index_path_that_is_a_folder_is_a_clear_error_even_for_rebuild(store: Store) -> None:
    index = store.ledger_path.parent / "index.sqlite3"
    for stale in (index, Path(f"{index}-wal"), Path(f"{index}-shm")):
        stale.unlink(missing_ok=True)
    index.mkdir()
    with store.context(NOW) as ctx, pytest.raises(IndexUnusable, match="a folder, not the index"):
        ctx.index.rebuild()


class _UnwritableLedger(Ledger):
    """The ledger as seen by a user without write permission."""

    def append(self, record: Any) -> dict[str, Any]:
        raise PermissionError(errno.EACCES, "Permission denied", str(self.path))


def test_hold_set_with_an_unwritable_ledger_is_a_clear_error_and_sets_nothing(
    store: Store,
) -> None:
    with store.context(NOW) as ctx:
        ctx.ledger = _UnwritableLedger(store.ledger_path)
        with pytest.raises(StorageError, match="cannot append to the ledger: Permission denied"):
            set_hold(ctx, "3000.1", reason="case", case_ref="C-1", review_date=date(2027, 1, 1))
        assert query.holds(ctx.index) == {}


def test_hold_set_on_a_read_only_ledger_volume_is_a_clear_error_naming_the_file(
    tmp_path: Path,
) -> None:
    with small_tmpfs(tmp_path / "ro") as volume:
        store = Store(tmp_path / "recordings", volume / "ledger.jsonl")
        store.call("3000.1", when=T0)
        subprocess.run(["mount", "-o", "remount,ro", str(volume)], check=True)
        with (
            pytest.raises(StorageError, match=r"ro/.*Read-only file system"),
            store.context(NOW) as ctx,
        ):
            set_hold(ctx, "3000.1", reason="c", case_ref="C-1", review_date=date(2027, 1, 1))


# -- item 6: disk full -----------------------------------------------------------------


def test_a_ledger_append_that_hits_a_full_disk_leaves_no_torn_line(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "full") as volume:
        ledger = Ledger(volume / "ledger.jsonl")
        ledger.append({"type": "note", "at": "2026-01-05T10:00:00.000Z", "text": "first"})
        fill(volume)
        big = {"type": "note", "at": "2026-01-05T10:00:01.000Z", "text": "x" * 20_000}
        with pytest.raises(OSError) as raised:
            Ledger(volume / "ledger.jsonl", validate=False).append(big)
        assert raised.value.errno == errno.ENOSPC
        data = (volume / "ledger.jsonl").read_bytes()
        assert data.endswith(b"\n") and data.count(b"\n") == 1
        assert verify_chain(volume / "ledger.jsonl") == []


def test_purge_on_a_full_ledger_volume_stops_with_a_clear_error_and_deletes_nothing_unlogged(
    tmp_path: Path,
) -> None:
    with small_tmpfs(tmp_path / "state", size="2m") as volume:
        store = Store(tmp_path / "recordings", volume / "ledger.jsonl")
        store.call("3000.1", when=T0)
        with store.context(NOW) as ctx:
            ctx.index.update()
        fill(volume)
        with pytest.raises(DiskFull, match="no space left"), store.context(DAY91) as ctx:
            purge(ctx, dry_run=False)
        assert (store.root / "2026/01/05/3000.1.wav").exists()
        assert (volume / "ledger.jsonl").read_bytes().endswith(b"\n")
        assert not [e for e in iter_entries(volume / "ledger.jsonl") if e.error]


def test_purge_runs_when_the_index_cannot_be_written_and_frees_the_space(store: Store) -> None:
    with store.context(NOW) as ctx:
        ctx.index.update()
    for n in range(40):  # not indexed yet: the update would have to grow the index
        store.call(f"3000.{n + 10}", when=T0)
    with store.context(DAY91) as ctx:
        pages = ctx.index.db.execute("PRAGMA page_count").fetchone()[0]
        ctx.index.db.execute(f"PRAGMA max_page_count={pages}")  # SQLITE_FULL on any growth
        report = purge(ctx, dry_run=False)
    assert report.counts == {"deleted": 2}
    assert any("index not updated" in p for p in report.problems)
    assert not (store.root / "2026/01/05/3000.1.wav").exists()
    with store.context(DAY91) as ctx:  # room again: the next run catches up
        assert purge(ctx, dry_run=False).counts == {"deleted": 40}


def test_a_full_recordings_disk_still_lets_purge_delete_audio_and_write_tombstones(
    tmp_path: Path,
) -> None:
    with small_tmpfs(tmp_path / "recordings", size="1m") as volume:
        store = Store(volume, tmp_path / "state" / "ledger.jsonl")
        store.call("3000.1", when=T0, audio=b"\1" * 50_000)
        fill(volume)
        with store.context(DAY91) as ctx:
            report = purge(ctx, dry_run=False)
        assert report.counts == {"deleted": 1}
        assert not (volume / "2026/01/05/3000.1.wav").exists()
        assert b'"tombstone"' in (volume / "2026/01/05/3000.1.json").read_bytes()


class _Crash(Exception):
    pass


def test_each_purge_batch_is_on_the_audit_log_before_it_is_deleted(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    for n in range(AUDIT_CHUNK + 10):
        store.call(f"4000.{n}", when=T0)
    seen = 0

    def crash_midway(_outcome: object) -> None:
        nonlocal seen
        seen += 1
        if seen == AUDIT_CHUNK + 5:
            raise _Crash

    with pytest.raises(_Crash), store.context(DAY91) as ctx:
        purge(ctx, dry_run=False, on_item=crash_midway)
    lines = audit.read(store.ledger_path.parent / "audit.jsonl")
    deleted = {
        e.entry["call"]["uniqueid"]
        for e in iter_entries(store.ledger_path)
        if e.entry and e.entry["type"] == "deleted"
    }
    announced = {u for line in lines if line["action"] == "purge_batch" for u in line["ids"]}
    assert [line["action"] for line in lines] == ["purge_batch", "purge", "purge_batch"]
    assert len(deleted) == AUDIT_CHUNK + 5 and deleted <= announced
    assert NUMBER not in str(lines)


# -- a torn last line left by an older version -----------------------------------------


def _tear(ledger_path: Path) -> bytes:
    torn = b'{"seq":99,"type":"call","at":"2026-01-05T10:0'
    with ledger_path.open("ab") as f:
        f.write(torn)
    return torn


def test_verify_reports_a_torn_last_line_and_reconcile_moves_it_aside(store: Store) -> None:
    torn = _tear(store.ledger_path)
    problems = verify_chain(store.ledger_path)
    assert {p.kind for p in problems} == {"unterminated", "malformed"}
    assert all(p.line_no == 5 for p in problems)
    assert any("reconcile" in p.detail for p in problems)
    dry = reconcile(store.root, Ledger(store.ledger_path), now=DAY91, dry_run=True)
    assert store.ledger_path.read_bytes().endswith(torn)  # a dry run changes nothing
    report = reconcile(store.root, Ledger(store.ledger_path), now=DAY91, dry_run=False)
    [fixed] = [i for i in report.fixed if i.kind == "ledger_torn_line"]
    assert [i.kind for i in dry.fixed] == ["ledger_torn_line"]
    kept = next(store.ledger_path.parent.glob("ledger.jsonl.torn-*"))
    assert kept.read_bytes() == torn and str(kept) in fixed.detail
    assert verify_chain(store.ledger_path) == []
    with store.context(DAY91) as ctx:  # purge appends after it and the chain holds
        assert purge(ctx, dry_run=False).clean
    assert verify_chain(store.ledger_path) == []
