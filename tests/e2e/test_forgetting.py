"""A ledger that forgets, on the real Asterisk (issue 16).

``callconsent serve`` runs on a copy of config/demo.yaml whose evidence lives in a folder of its
own (a purge past the evidence period must not touch the other tests' calls). sipp callers from
a distinctive number (and name) give consent on the ``mixed`` route and refuse on ``support``;
a control caller from another number gives consent. Then an ``export`` kept in the system's
export folder, ``erase --number`` and a ``purge`` with the clock put past the evidence period
(``--now``): a byte search of the recordings tree, the ledger, its anchor, the caller key store,
the index, the audit log and the kept exports finds the number (as signalled, as normalised, or
its subscriber digits) and the name nowhere, and ``verify`` passes; nor do AstDB, Asterisk's log
files (the levels the shipped logger.conf writes) and the app's debug log hold the number or the
name. (test_private_data.py checks AstDB and the logs around the withdrawal route.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from callconsent.config import Config, load_config
from tests.e2e.lab_app import DEMO_CONFIG, LAB_ENV, LabApp, route_timing, wait_ledger
from tests.e2e.personal_data import astdb_files, asterisk_logs, found
from tests.harness.asterisk import AsteriskLab
from tests.harness.sipp import Call, Digit, Pause, run_calls
from tests.support.sealed import caller_of

NUMBER = "+4530161616"
NAME = "Glemmer Seksten"
OTHER = "+4530262626"
OTHER_NAME = "Kontrol Seksten"


def _cli(config_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "callconsent.cli.main", *args, "--config", str(config_path)],
        env={**os.environ, **LAB_ENV},
        capture_output=True,
        text=True,
        check=False,
    )


def _private_storage(base: Config) -> Path:
    """A lab folder beside the lab's own, its recordings folder made like the lab's (owner,
    setgid mode, ACL) so that Asterisk can write there."""
    lab = base.storage.recordings_dir.parent
    root = lab / "forget16-e2e"
    shutil.rmtree(root, ignore_errors=True)
    recordings = root / "recordings"
    (root / "state").mkdir(parents=True)
    recordings.mkdir()
    st = base.storage.recordings_dir.stat()
    os.chown(recordings, st.st_uid, st.st_gid)
    os.chmod(recordings, st.st_mode & 0o7777)
    if shutil.which("getfacl") and shutil.which("setfacl"):
        acl = subprocess.run(
            ["getfacl", "-p", str(base.storage.recordings_dir)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        subprocess.run(
            ["setfacl", "--set-file=-", str(recordings)], input=acl, text=True, check=False
        )
    return root


@pytest.fixture(scope="module")
def forgetting_app(
    asterisk: AsteriskLab, lab_app: LabApp, config: Config
) -> Iterator[tuple[Path, Config]]:
    """The lab app restarted on demo.yaml with private storage; the plain lab app again after."""
    root = _private_storage(config)
    data = yaml.safe_load(DEMO_CONFIG.read_text("utf-8"))
    data["storage"] = {
        "recordings_dir": str(root / "recordings"),
        "ledger_path": str(root / "state" / "ledger.jsonl"),
        "notice_archive_dir": str(root / "state" / "notices"),
    }
    config_path = root / "callconsent.yaml"
    config_path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")
    lab_app.stop()
    app = LabApp(root / "serve.log", config_path, log_level="debug")
    try:
        app.start()
        yield config_path, load_config(config_path, env={**os.environ, **LAB_ENV})
    finally:
        app.stop()
        lab_app.start()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def called(asterisk: AsteriskLab, forgetting_app: tuple[Path, Config]) -> dict[str, Any]:
    """Consent (mixed) and refusal (support) from NUMBER, consent (support) from OTHER."""
    _, private = forgetting_app
    mixed, support = route_timing(private, "mixed"), route_timing(private, "support")
    yes_mixed = [Pause(mixed.question_end + 1.0), Digit("1"), Pause(5.0)]
    yes = [Pause(support.question_end + 1.0), Digit("1"), Pause(5.0)]
    no = [Pause(support.question_end + 1.0), Digit("2"), Pause(2.0)]
    calls = [
        Call(to="mixed", caller_number=NUMBER, caller_name=NAME, timeline=yes_mixed),
        Call(to="support", caller_number=NUMBER, caller_name=NAME, timeline=no),
        Call(to="support", caller_number=OTHER, caller_name=OTHER_NAME, timeline=yes),
    ]
    mark = asterisk.log_offset()
    results = run_calls(calls)
    ids = []
    for result in results:
        assert result.answered, result.describe()
        ids.append(asterisk.wait_labend(result.call_id, since=mark).uniqueid)
    entries = [wait_ledger(private, u) for u in ids]
    assert [e["status"] for e in entries] == ["given", "refused", "given"]
    for u in (ids[0], ids[2]):
        wait_ledger(private, u, kind="recording_final")
    return {"ids": ids, "entries": entries}


def _needles(number: str, name: str) -> list[bytes]:
    """The number as signalled, as normalised, without its country code, and the name."""
    return [number.encode(), number.lstrip("+").encode(), number[3:].encode(), name.encode()]


def _unzipped(archive: Path) -> bytes:
    with zipfile.ZipFile(archive) as zf:
        return b"".join(zf.read(name) for name in zf.namelist())


def _found(private: Config, needles: list[bytes]) -> list[str]:
    """Files of the recordings tree and of the ledger's folder (ledger, anchor, key store,
    index, audit log) holding any of ``needles``."""
    state = private.storage.ledger_path.parent
    files = [p for p in private.storage.recordings_dir.rglob("*") if p.is_file()]
    files += [p for p in state.rglob("*") if p.is_file() and p.name != "serve.log"]
    hits = []
    for path in files:
        data = path.read_bytes()
        hits += [f"{path}: {n.decode()}" for n in needles if n in data]
    return hits


def test_the_ledger_holds_the_callers_sealed_and_reads_them_with_their_keys(
    forgetting_app: tuple[Path, Config], called: dict[str, Any]
) -> None:
    _, private = forgetting_app
    ledger = private.storage.ledger_path.read_bytes()
    assert not [n for n in _needles(NUMBER, NAME) + _needles(OTHER, OTHER_NAME) if n in ledger]
    # the search does find the number where it still is: the live recording's sidecar
    assert [h for h in _found(private, _needles(NUMBER, NAME)) if h.endswith(NUMBER)] == [
        f"{private.storage.recordings_dir / called['entries'][0]['recording']}".replace(
            ".wav", ".json"
        )
        + f": {NUMBER}"
    ]
    readable = [caller_of(e, private.storage.ledger_path) for e in called["entries"]]
    assert [(c.number, c.name) for c in readable] == [
        (NUMBER, None),  # mixed does not ask for display names (store_caller_name)
        (NUMBER, NAME),
        (OTHER, OTHER_NAME),
    ]


def test_after_erase_and_a_purge_past_the_evidence_period_the_number_is_nowhere(
    forgetting_app: tuple[Path, Config], called: dict[str, Any]
) -> None:
    config_path, private = forgetting_app
    exported = _cli(config_path, "export", "--number", NUMBER, "--reason", "Art 15 e2e")
    assert exported.returncode == 0, exported.stdout + exported.stderr
    kept = private.storage.ledger_path.parent / "exports"
    assert [p for p in kept.iterdir() if NUMBER.encode() in _unzipped(p)]  # decrypted there
    erased = _cli(config_path, "erase", "--number", "+45 30 16 16 16", "--reason", "Art 17 e2e")
    assert erased.returncode == 0, erased.stdout + erased.stderr
    assert _found(private, _needles(NUMBER, NAME)) == []
    mine = [caller_of(e, private.storage.ledger_path) for e in called["entries"][:2]]
    assert all(c.erased for c in mine)
    other = caller_of(called["entries"][2], private.storage.ledger_path)
    assert (other.number, other.erased) == (OTHER, False)  # the control caller is untouched

    later = (datetime.now(UTC) + timedelta(days=4 * 365 + 120)).isoformat()
    purged = _cli(config_path, "purge", "--now", later)
    assert purged.returncode == 0, purged.stdout + purged.stderr
    assert caller_of(called["entries"][2], private.storage.ledger_path).erased
    assert _found(private, _needles(NUMBER, NAME) + _needles(OTHER, OTHER_NAME)) == []
    verified = _cli(config_path, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_after_erase_and_purge_astdb_and_both_logs_hold_neither_number_nor_name(
    asterisk: AsteriskLab, forgetting_app: tuple[Path, Config], called: dict[str, Any]
) -> None:
    config_path, _ = forgetting_app
    app_log = config_path.parent / "serve.log"
    assert b'"recording_final"' in app_log.read_bytes()  # the app did log these calls
    full, others = asterisk_logs(asterisk)
    for number, name in ((NUMBER, NAME), (OTHER, OTHER_NAME)):
        assert found(number, astdb_files(asterisk)) == []
        assert found(number, full, shipped_levels_only=True) == []
        assert found(number, [*others, app_log]) == []
        assert name.encode() not in app_log.read_bytes()
