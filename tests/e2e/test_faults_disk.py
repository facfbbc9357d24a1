"""The recordings folder full or read-only during calls (R36, issue 11).

The test lays a small tmpfs over the lab's recordings folder (at the chroot's path and, bound,
at the host's: Asterisk and the app see the same one; inside ``scripts/lab-isolated`` the lab
folder is private to the run), then places real SIP calls:

- the folder full before the calls (a filler file takes every block): no sidecar can be written,
  so nothing is recorded; the calls go on with ``error``/``storage_error``, logged and in the
  ledger (which lives elsewhere and stays writable);
- the folder read-only (remounted): the same;
- the folder filling up during the recordings (a little room left): the calls go on, the files
  hold what fitted, and after ``reconcile`` (with room again) every file has a final sidecar.

Afterwards everything written on the tmpfs is copied back into the real folder (the ledger
refers to it) and the tmpfs is removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from callconsent.config import Config
from tests.e2e.faults import (
    Caller,
    CaseResult,
    Expect,
    Placed,
    app_events,
    check_case,
    reconcile,
    report,
    settle,
)
from tests.e2e.lab_app import LabApp, call_entries_for, route_timing
from tests.harness.asterisk import AsteriskLab
from tests.harness.sipp import Call, Digit, Pause

DOCS = Expect(frozenset({"documentation"}))
TRAINING = Expect(frozenset({"training"}))
TMPFS_BYTES = 4 * 1024 * 1024


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, text=True)


@contextlib.contextmanager
def small_recordings_folder(asterisk: AsteriskLab) -> Iterator[Path]:
    """A tmpfs of TMPFS_BYTES as the recordings folder, for Asterisk and the app alike."""
    host = asterisk.recordings_dir
    inside = asterisk.root / str(host).lstrip("/")
    st = host.stat()
    keep = Path(str(host) + ".faults-keep")
    _run(
        "mount", "-t", "tmpfs", "-o",
        f"size={TMPFS_BYTES},mode={st.st_mode & 0o7777:o},uid={st.st_uid},gid={st.st_gid}",
        "callconsent-faults", str(inside),
    )  # fmt: skip
    try:
        _run("mount", "--bind", str(inside), str(host))
        try:
            yield host
        finally:
            _run("mount", "-o", "remount,rw", str(inside))
            keep.mkdir(exist_ok=True)
            shutil.copytree(host, keep, dirs_exist_ok=True, ignore=shutil.ignore_patterns("filler"))
            _run("umount", str(host))
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            _run("umount", str(inside))
        if keep.exists():  # back into the real folder: the ledger refers to these files
            shutil.copytree(keep, host, dirs_exist_ok=True)
            shutil.rmtree(keep)


def _fill(folder: Path, leave: int = 0) -> Path:
    """Take every block of the folder's file system but ``leave`` bytes."""
    filler = folder / "filler"
    free = shutil.disk_usage(folder).free - leave
    with filler.open("wb") as f:
        chunk = b"\0" * 65536
        with contextlib.suppress(OSError):
            while free > 0:
                free -= f.write(chunk[: min(len(chunk), free)])
                f.flush()
    return filler


def _calls(
    caller: Caller, case: str, config: Config, n: int, series: int, talk: float = 4.0
) -> None:
    support, docs = route_timing(config, "support"), route_timing(config, "docs")
    for i in range(n):
        number = f"+45987{series:02d}{i:04d}"
        if i % 2:
            timeline = [Pause(support.question_end + 0.5), Digit("1"), Pause(talk)]
            call, expect = Call(to="support", caller_number=number, timeline=timeline), TRAINING
        else:
            timeline = [Pause(docs.notices_end + talk)]
            call, expect = Call(to="docs", caller_number=number, timeline=timeline), DOCS
        caller.place(case, call, expect, at=time.monotonic() + 0.3 * i)


def _storage_failures(app: LabApp, mark: int) -> int:
    return sum(1 for e in app_events(app.log_path, mark) if e.get("event") == "storage_error")


@pytest.fixture(scope="module")
def disk(asterisk: AsteriskLab, lab_app: LabApp, config: Config) -> dict[str, Any]:
    out: dict[str, Any] = {}
    since = asterisk.log_offset()
    placed: list[Placed] = []
    with small_recordings_folder(asterisk) as folder:
        # 1. full before the calls arrive
        filler = _fill(folder)
        mark = lab_app.log_path.stat().st_size
        caller = Caller()
        _calls(caller, "recordings folder full", config, 4, series=1)
        placed += caller.wait(timeout=90)
        caller.close()
        out["full_logged"] = _storage_failures(lab_app, mark)
        filler.unlink()
        # 2. read-only
        _run("mount", "-o", "remount,ro", str(asterisk.root / str(folder).lstrip("/")))
        mark = lab_app.log_path.stat().st_size
        caller = Caller()
        _calls(caller, "recordings folder read-only", config, 4, series=2)
        placed += caller.wait(timeout=90)
        caller.close()
        out["ro_logged"] = _storage_failures(lab_app, mark)
        _run("mount", "-o", "remount,rw", str(asterisk.root / str(folder).lstrip("/")))
        # 3. room for the sidecars and a few seconds of audio, not for whole calls
        filler = _fill(folder, leave=160 * 1024)
        caller = Caller()
        _calls(caller, "recordings folder fills during the calls", config, 4, series=3, talk=10.0)
        placed += caller.wait(timeout=90)
        caller.close()
        settle(asterisk, placed, since)
        time.sleep(2.0)  # the app finalises (or gives up on) what it can
        states = [json.loads(p.read_text()).get("state") for p in folder.rglob("*.json")]
        out["filled"] = f"{shutil.disk_usage(folder).free} bytes free, sidecars " + ", ".join(
            f"{k} x{v}" for k, v in sorted(Counter(states).items())
        )
        filler.unlink()
        out["reconcile"] = reconcile(config)
        rows = [check_case(config, case, placed) for case in dict.fromkeys(p.case for p in placed)]
    for row in rows:
        ledgered = sum(
            1
            for p in placed
            if p.case == row.case and p.end is not None and call_entries_for(config, p.end.uniqueid)
        )
        row.note += f"; {ledgered} with a ledger entry"
        if row.case == "recordings folder full":
            row.note += f"; {out['full_logged']} storage_error logged"
        elif row.case == "recordings folder read-only":
            row.note += f"; {out['ro_logged']} storage_error logged"
        else:
            summary = out["reconcile"].stdout.strip().splitlines()[-1:]
            row.note += f"; after the calls: {out['filled']}; {' '.join(summary)}"
        report(row)
    out["rows"] = {row.case: row for row in rows}
    out["placed"] = placed
    return out


@pytest.mark.parametrize("case", ["recordings folder full", "recordings folder read-only"])
def test_no_recording_when_no_sidecar_can_be_written_and_the_calls_go_on(
    disk: dict[str, Any], config: Config, case: str
) -> None:
    row: CaseResult = disk["rows"][case]
    assert row.placed == 4 and row.reached == 4 and row.recorded == 0, row.row()
    assert not row.violations, row.violations
    for p in disk["placed"]:
        if p.case == case:
            assert (p.dest.status, p.dest.reason, p.dest.recording) == (
                "error",
                "storage_error",
                "",
            )
            (entry,) = call_entries_for(config, p.end.uniqueid)
            assert (entry["status"], entry["reason"]) == ("error", "storage_error")


def test_each_storage_failure_is_logged(disk: dict[str, Any]) -> None:
    assert disk["full_logged"] >= 4 and disk["ro_logged"] >= 4, disk


def test_a_folder_filling_up_during_the_calls_leaves_no_audio_without_a_final_sidecar(
    disk: dict[str, Any],
) -> None:
    row: CaseResult = disk["rows"]["recordings folder fills during the calls"]
    assert row.placed == 4 and row.reached == 4, row.row()
    assert not row.violations, (row.violations, disk["reconcile"].stdout[-2000:])


def test_the_recordings_folder_is_the_real_one_again(asterisk: AsteriskLab, disk: object) -> None:
    assert os.path.ismount(asterisk.recordings_dir) is False
