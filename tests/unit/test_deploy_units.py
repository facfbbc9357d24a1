"""The systemd units in deploy/systemd: what an admin relies on, and their hardening score."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
MAX_EXPOSURE = 3.0


def unit(name: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys keep their case
    parser.read_string((UNITS / name).read_text(encoding="utf-8"))
    return parser


def test_the_app_unit_notifies_readiness_feeds_a_watchdog_and_reloads_on_sighup() -> None:
    service = unit("callconsent.service")["Service"]
    assert service["Type"] == "notify"
    assert int(service["WatchdogSec"]) > 0
    assert "kill -HUP $MAINPID" in service["ExecReload"]


def test_a_bad_config_stops_the_restart_loop_with_exit_status_2() -> None:
    service = unit("callconsent.service")["Service"]
    assert service["Restart"] == "always"
    assert service["RestartPreventExitStatus"] == "2"
    assert "ExecStartPre" not in service, "a failing pre-start would restart in a loop"


def test_the_app_unit_asks_for_a_cpu_group_of_its_own_under_load() -> None:
    # a CPU weight makes systemd turn the cpu controller on: the app is then not shared thread by
    # thread against Asterisk's channel threads on a saturated machine (bench/live.py mirrors it)
    assert 1 <= int(unit("callconsent.service")["Service"]["CPUWeight"]) <= 10000


def test_the_purge_service_has_no_install_section_and_only_its_timer_is_enabled() -> None:
    assert not unit("callconsent-purge.service").has_section("Install")
    assert unit("callconsent-purge.timer")["Install"]["WantedBy"] == "timers.target"


def test_units_run_the_installed_command_as_the_service_user() -> None:
    for name in ("callconsent.service", "callconsent-purge.service"):
        service = unit(name)["Service"]
        assert service["ExecStart"].startswith("/usr/bin/callconsent "), name
        assert (service["User"], service["Group"]) == ("callconsent", "callconsent"), name
        assert service["ReadWritePaths"] == "/var/lib/callconsent", name


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not here")
@pytest.mark.parametrize("name", ["callconsent.service", "callconsent-purge.service"])
def test_hardening_exposure_is_at_most_3(name: str) -> None:
    proc = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(UNITS / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", proc.stdout + proc.stderr)
    assert m, proc.stdout + proc.stderr
    assert float(m.group(1)) <= MAX_EXPOSURE, proc.stdout
