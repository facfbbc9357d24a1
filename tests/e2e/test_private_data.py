"""Personal data outside the ledger on the real Asterisk (issue 16): a caller with a distinctive
number says yes to training on one call and no on another, then uses the withdrawal route
while the app is down (the request waits in AstDB) and the app carries it out when it is back.
A byte search then finds the number nowhere in AstDB (``astdb.sqlite3`` and its ``-wal``),
Asterisk's log files (as the shipped ``logger.conf`` writes them: no verbose lines; the CDR
file, which holds numbers by design, is left out: see README), the app's log, or the spool of
encrypted recordings. The ledger, key store, index and recordings are checked elsewhere.

The app runs on config/demo.yaml plus ``encryption`` and the lab's spool, logging at debug.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from callconsent.config import Config
from tests.e2e.lab_app import DEMO_CONFIG, LabApp, route_timing, wait_ledger, wait_sidecar
from tests.e2e.personal_data import astdb_files, asterisk_logs, found
from tests.harness.asterisk import AsteriskLab
from tests.harness.sipp import Call, Digit, Pause, run_call

KEK_ENV = "CALLCONSENT_E2E_KEK"
KEK = bytes(range(140, 172)).hex()


@pytest.fixture(scope="module")
def number() -> str:
    """Distinctive: +4597 and six random digits (no other test calls from +4597)."""
    return f"+4597{random.randrange(10**6):06d}"


@pytest.fixture(scope="module")
def app(
    asterisk: AsteriskLab, lab_app: LabApp, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LabApp]:
    folder = tmp_path_factory.mktemp("private")
    data = yaml.safe_load(DEMO_CONFIG.read_text("utf-8"))
    data["encryption"] = {"key_id": "lab1", "key_env": KEK_ENV}
    data["storage"]["spool_dir"] = str(Path(data["storage"]["recordings_dir"]).parent / "spool")
    config_path = folder / "callconsent.yaml"
    config_path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")
    lab_app.stop()
    os.environ[KEK_ENV] = KEK
    private = LabApp(folder / "serve.log", config_path, log_level="debug")
    try:
        private.start()
        yield private
    finally:
        private.stop()
        os.environ.pop(KEK_ENV, None)
        lab_app.start()


def _marker_pending(asterisk: AsteriskLab) -> str:
    return asterisk.cli("database show callconsent withdrawreq")


@pytest.fixture(scope="module")
def calls(asterisk: AsteriskLab, app: LabApp, config: Config, number: str) -> dict[str, Any]:
    timing = route_timing(config, "support")
    mark = asterisk.log_offset()
    given = run_call(
        Call(
            to="support",
            caller_number=number,
            audio="speech",
            timeline=[Pause(timing.question_end + 1.0), Digit("1"), Pause(5.0)],
        )
    )
    refused = run_call(
        Call(
            to="support",
            caller_number=number,
            timeline=[Pause(timing.question_end + 1.0), Digit("2"), Pause(2.0)],
        )
    )
    ends = {
        k: asterisk.wait_labend(r.call_id, since=mark)
        for k, r in (("given", given), ("refused", refused))
    }
    assert (ends["given"].status, ends["refused"].status) == ("given", "refused")
    final = wait_ledger(config, ends["given"].uniqueid, kind="recording_final")
    tree_wav = config.storage.recordings_dir / final["recording"]["file"]
    deadline = time.monotonic() + 20
    while "encryption" not in wait_sidecar(config, str(tree_wav), until="final")["recording"]:
        assert time.monotonic() < deadline, "the recording was never encrypted"
        time.sleep(0.2)
    assert app.stop() == 0
    try:
        route = run_call(
            Call(
                to="withdraw",
                caller_number=number,
                timeline=[Pause(2.0), Digit("1"), Pause(0.3)],
                hangup_after=16.0,
            )
        )
        assert route.ok, route.describe()
        m = asterisk.wait_for_log(
            rf"(?m)LABWITHDRAW uniqueid=(\S+) callid={re.escape(route.call_id)} result=(\S*)$",
            mark,
            timeout=30,
        )
        request = f"{m.group(1)}-0"
        pending = _marker_pending(asterisk)
        assert request in pending, pending
        pending_hits = found(number, astdb_files(asterisk))
    finally:
        app.start()
    withdrawn = wait_ledger(config, ends["given"].uniqueid, kind="withdrawn")
    deadline = time.monotonic() + 10
    while request in _marker_pending(asterisk):
        assert time.monotonic() < deadline, "the marker stays after the app carried it out"
        time.sleep(0.2)
    return {
        "mark": mark,
        "pending_hits": pending_hits,
        "withdrawn": withdrawn,
        "tree_wav": tree_wav,
    }


def test_while_the_withdrawal_waits_astdb_holds_no_number(calls: dict[str, Any]) -> None:
    assert calls["pending_hits"] == []


def test_the_app_carried_out_the_waiting_withdrawal(calls: dict[str, Any]) -> None:
    assert (calls["withdrawn"]["outcome"], calls["withdrawn"]["via"]) == ("deleted", "number")
    assert not calls["tree_wav"].exists()


def test_afterwards_astdb_holds_no_number(
    asterisk: AsteriskLab, calls: dict[str, Any], number: str
) -> None:
    assert found(number, astdb_files(asterisk)) == []


def test_asterisks_log_files_hold_no_number(
    asterisk: AsteriskLab, calls: dict[str, Any], number: str
) -> None:
    full, others = asterisk_logs(asterisk)
    assert found(number, full, shipped_levels_only=True) == []
    assert found(number, others) == []


def test_the_search_finds_the_number_where_it_is_kept_the_verbose_trace(
    asterisk: AsteriskLab, calls: dict[str, Any], number: str
) -> None:
    """The search is not blind: the lab's verbose dialplan trace (which the shipped
    logger.conf keeps out of files) prints the caller's number."""
    full, _ = asterisk_logs(asterisk)
    assert found(number, full) != []


def test_the_apps_log_holds_no_number(app: LabApp, calls: dict[str, Any], number: str) -> None:
    assert b'"withdraw_request_done"' in app.log_path.read_bytes()
    assert found(number, [app.log_path]) == []


def test_the_spool_is_empty_and_holds_no_number(
    config: Config, calls: dict[str, Any], number: str
) -> None:
    spool = config.storage.recordings_dir.parent / "spool"
    files = [p for p in spool.rglob("*") if p.is_file()]
    assert files == [] and found(number, files) == []
