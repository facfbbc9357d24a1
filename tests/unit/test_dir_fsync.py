"""Directory fsyncs asked for at the same time are shared, and each caller is still covered by an
fsync that started after it asked (evidence/fsio.py ``fsync_dir``)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from callconsent.evidence import fsio


def test_concurrent_callers_share_fsyncs_each_covered_by_one_started_after_it_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs: list[tuple[float, float]] = []  # (start, end) of every real fsync
    lock = threading.Lock()

    def slow_fsync(directory: Path) -> None:
        start = time.monotonic()
        time.sleep(0.02)
        with lock:
            syncs.append((start, time.monotonic()))

    monkeypatch.setattr(fsio, "_fsync_dir_now", slow_fsync)
    calls: list[tuple[float, float]] = []  # (asked, returned) of every caller

    def caller() -> None:
        asked = time.monotonic()
        fsio.fsync_dir(tmp_path)
        with lock:
            calls.append((asked, time.monotonic()))

    threads = [threading.Thread(target=caller) for _ in range(20)]
    for i, t in enumerate(threads):
        t.start()
        if i % 5 == 4:
            time.sleep(0.005)
    for t in threads:
        t.join()

    assert len(calls) == 20
    assert len(syncs) < 10  # shared: 20 callers, far fewer fsyncs
    for asked, returned in calls:
        assert any(asked <= start and end <= returned for start, end in syncs), (asked, syncs)


def test_a_failed_fsync_covers_no_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(directory: Path) -> None:
        time.sleep(0.01)
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(fsio, "_fsync_dir_now", failing)
    errors: list[OSError] = []

    def caller() -> None:
        try:
            fsio.fsync_dir(tmp_path)
        except OSError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=caller) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 5


def test_fsync_dir_syncs_a_real_directory(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("x")
    fsio.fsync_dir(tmp_path)  # no error on a real folder
    with pytest.raises(FileNotFoundError):
        fsio.fsync_dir(tmp_path / "missing")
