"""The Debian package as an admin installs it (issue 15): scripts/build-deb builds it, a clean
Debian chroot of the host's release (scripts/deb-chroot, cached) installs it with dpkg -i, and
the installed app serves a real sipp call against the lab Asterisk.

Marked ``package`` (root, debootstrap, a Debian mirror the first time): ``-m "not package"``
skips it. Cost: the build (~30 s) once per session, the chroot once per machine (~80 s).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from callconsent.config import Config
from tests.e2e.lab_app import LabApp, route_timing, wait_ledger
from tests.harness.asterisk import AsteriskLab
from tests.harness.sipp import Call, Digit, Pause, run_call
from tests.support.lab import DEMO_CONFIG

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.package


def _needs() -> str | None:
    if os.geteuid() != 0:
        return "needs root (dpkg-deb ownership, chroot, mount)"
    for tool in ("dpkg-deb", "debootstrap", "unshare"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return None


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    reason = _needs()
    if reason:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"the package test must run under CI: {reason}")
        pytest.skip(reason)
    build = subprocess.run(
        [str(REPO / "scripts" / "deb-chroot"), "build"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    given = os.environ.get("CALLCONSENT_DEB")  # built beforehand (scripts/test: outside the
    if given:  # isolated lab's network namespace, which cannot reach the package index)
        return Path(given)
    out = tmp_path_factory.mktemp("deb")
    proc = subprocess.run(
        [str(REPO / "scripts" / "build-deb"), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.strip().splitlines()[-1])
    assert path.is_file() and path.suffix == ".deb"
    return path


def in_chroot(deb: Path, script: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [str(REPO / "scripts" / "deb-chroot"), "try", str(deb), "--", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_the_package_installs_user_folders_and_conffile_and_starts_nothing(deb: Path) -> None:
    out = in_chroot(
        deb,
        """
        set -e
        echo "version=$(callconsent --version)"
        echo "user=$(id -nu callconsent):$(id -ng callconsent)"
        for d in /var/lib/callconsent /var/lib/callconsent/recordings /var/lib/callconsent/state /var/lib/callconsent/prompts /var/lib/callconsent/spool; do
            echo "dir=$(stat -c '%a %U:%G' $d) $d"
        done
        echo "etc=$(stat -c '%a %U:%G' /etc/callconsent/callconsent.yaml)"
        echo "conffiles=$(dpkg-query -W -f='${Conffiles}' callconsent | awk '{print $1}')"
        echo "enabled=$(ls /etc/systemd/system/*.wants 2>/dev/null | grep -c callconsent || true)"
        echo "sample=$(ls /usr/share/callconsent/asterisk/ | tr '\\n' ' ')"
        echo "hook=$(test -f /usr/share/callconsent/dialplan/callconsent.conf && echo yes)"
        """,
    )
    lines = dict(
        line.split("=", 1) for line in out.splitlines() if "=" in line and not line.startswith(" ")
    )
    assert lines["version"] == "callconsent 0.1.0"
    assert lines["user"] == "callconsent:callconsent"
    dirs = [line for line in out.splitlines() if line.startswith("dir=")]
    assert "dir=750 callconsent:callconsent /var/lib/callconsent" in dirs
    assert "dir=2770 callconsent:callconsent /var/lib/callconsent/recordings" in dirs
    assert "dir=750 callconsent:callconsent /var/lib/callconsent/state" in dirs
    assert (
        "dir=2770 callconsent:callconsent /var/lib/callconsent/spool" in dirs
    )  # nothing for others
    assert lines["etc"] == "640 root:callconsent"
    assert lines["conffiles"].strip() == "/etc/callconsent/callconsent.yaml"
    assert lines["enabled"] == "0", "no service is enabled before it is configured"
    assert "modules.conf" in lines["sample"] and "features.conf" in lines["sample"]
    assert lines["hook"] == "yes"


def test_the_installed_config_checks_out_and_the_units_verify(deb: Path) -> None:
    out = in_chroot(
        deb,
        """
        CALLCONSENT_ARI_PASSWORD=x callconsent check-config /etc/callconsent/callconsent.yaml \
            --features-conf /usr/share/callconsent/asterisk/features.conf
        echo "check=$?"
        systemd-analyze verify /lib/systemd/system/callconsent.service \
            /lib/systemd/system/callconsent-purge.service /lib/systemd/system/callconsent-purge.timer
        echo "verify=$?"
        /opt/callconsent/venv/bin/python -c 'from callconsent.share import shipped, DEFAULT_CONFIG, DIALPLAN_HOOK
import sys
same = shipped(DEFAULT_CONFIG).read_bytes() == open("/etc/callconsent/callconsent.yaml", "rb").read()
hook = shipped(DIALPLAN_HOOK).read_bytes() == open("/usr/share/callconsent/dialplan/callconsent.conf", "rb").read()
print(f"wheel_data={same and hook}")'
        """,
    )
    assert "check=0" in out, out
    assert "routes enabled: none (nothing is recorded)" in out
    assert "verify=0" in out, out
    assert "wheel_data=True" in out
    shipped = (REPO / "config" / "callconsent.yaml").read_bytes()
    assert b"enabled: true" not in shipped.split(b"\nroutes:", 1)[1], "records nothing as shipped"


@pytest.fixture
def installed_app(
    deb: Path, asterisk: AsteriskLab, lab_app: LabApp, tmp_path: Path
) -> Iterator[Path]:
    """``callconsent serve`` of the installed package on the lab config (the session's lab app
    made the prompts and is stopped meanwhile)."""
    config_dir = asterisk.lab_dir / "pkgtest"
    config_dir.mkdir(exist_ok=True)
    config_path = config_dir / "callconsent.yaml"
    data = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))
    config_path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    log_path = tmp_path / "installed-serve.log"
    lab_app.stop()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(REPO / "scripts" / "deb-chroot"), "try", str(deb), "--",
             "env", "CALLCONSENT_ARI_PASSWORD=callconsent-lab",
             "callconsent", "serve", "--config", str(config_path)],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while b'"ari_connected"' not in log_path.read_bytes():
            assert proc.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.2)
        yield log_path
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        shutil.rmtree(config_dir, ignore_errors=True)
        lab_app.start()


def test_a_real_call_is_served_by_the_installed_app(
    installed_app: Path, asterisk: AsteriskLab, config: Config
) -> None:
    mark = asterisk.log_offset()
    support = route_timing(config, "support")
    result = run_call(
        Call(
            to="support",
            caller_number="+4595000001",
            timeline=[Pause(support.question_end + 1.0), Digit("1"), Pause(3.0)],
        )
    )
    assert result.answered, result.describe()
    dest = asterisk.wait_labdest(result.call_id, since=mark)
    assert (dest.status, dest.reason) == ("given", "digit"), installed_app.read_text()[-2000:]
    entry = wait_ledger(config, dest.uniqueid)
    assert entry["status"] == "given" and entry["recording"]
    assert b'"consent_result"' in installed_app.read_bytes(), "the installed app ran the flow"
