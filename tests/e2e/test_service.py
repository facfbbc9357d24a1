"""serve as a service, on the real Asterisk: /metrics and /health scraped while sipp callers are
in the consent flow, and SIGHUP reloading the config between calls (issue 15).

The tests run their own ``callconsent serve`` on a copy of config/demo.yaml (the session's lab
app is stopped meanwhile and started again afterwards): the reload test edits that copy.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from callconsent.config import Config
from tests.e2e.lab_app import LabApp, route_timing
from tests.harness.asterisk import AsteriskLab
from tests.harness.sipp import Call, CallResult, Digit, Pause, run_call, run_calls
from tests.support.lab import DEMO_CONFIG

BASE = "http://127.0.0.1:9467"  # the default metrics port (config/callconsent.yaml)


def http_get(path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(BASE + path, timeout=5) as r:  # noqa: S310  # loopback
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def sample(text: str, name: str, labels: str = "") -> float:
    m = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.MULTILINE)
    return float(m.group(1)) if m else 0.0


@pytest.fixture
def own_app(lab_app: LabApp, tmp_path: Path) -> Iterator[LabApp]:
    config_path = tmp_path / "callconsent.yaml"
    shutil.copyfile(DEMO_CONFIG, config_path)
    lab_app.stop()
    app = LabApp(tmp_path / "serve.log", config_path)
    try:
        app.start()
        yield app
    finally:
        app.stop()
        lab_app.start()


def wait_log(app: LabApp, event: str, since: int, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        for line in app.log_path.read_bytes()[since:].splitlines():
            if line.startswith(b"{") and f'"event": "{event}"'.encode() in line:
                doc: dict[str, Any] = json.loads(line)
                return doc
        if time.monotonic() > deadline:
            raise AssertionError(f"no {event} in {app.log_path} within {timeout} s")
        time.sleep(0.1)


def in_background(call: Call) -> tuple[threading.Thread, list[CallResult]]:
    out: list[CallResult] = []
    thread = threading.Thread(target=lambda: out.append(run_call(call)), daemon=True)
    thread.start()
    return thread, out


def test_metrics_and_health_are_scraped_while_real_callers_are_in_the_flow(
    asterisk: AsteriskLab, own_app: LabApp, config: Config
) -> None:
    deadline = time.monotonic() + 10
    while (health := http_get("/health"))[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.2)  # AMI logs in just after ARI
    status, body = health
    assert status == 200, body
    assert json.loads(body)["ari_connected"] is True and json.loads(body)["ami_connected"] is True

    support = route_timing(config, "support")
    after_q = support.question_end + 1.0
    calls = [
        Call(
            to="support",
            caller_number="+4596000001",
            timeline=[Pause(after_q), Digit("1"), Pause(3.0)],
        ),
        Call(
            to="support",
            caller_number="+4596000002",
            timeline=[Pause(after_q), Digit("2"), Pause(2.0)],
        ),
    ]
    results: list[list[CallResult]] = []
    thread = threading.Thread(target=lambda: results.append(run_calls(calls)), daemon=True)
    thread.start()
    in_flow = 0.0
    while thread.is_alive():  # scrape as Prometheus would, during the calls
        status, text = http_get("/metrics")
        assert status == 200
        in_flow = max(in_flow, sample(text, "callconsent_calls_in_flow"))
        time.sleep(0.5)
    thread.join()
    assert all(r.answered for r in results[0]), [r.describe() for r in results[0]]

    _, text = http_get("/metrics")
    assert in_flow == 2, "both callers were seen in the consent flow while it ran"
    assert sample(text, "callconsent_calls_total", '{status="given",reason="digit"}') == 1
    assert sample(text, "callconsent_calls_total", '{status="refused",reason="digit"}') == 1
    assert sample(text, "callconsent_notice_start_seconds_count") == 2
    assert sample(text, "callconsent_notice_start_seconds_sum") < 2 * 1.0  # under 1 s each
    assert sample(text, "callconsent_ari_connected") == 1
    assert sample(text, "callconsent_recordings_started_total") == 1  # the echo agent consented
    assert "callconsent_event_loop_lag_seconds " in text


def test_sighup_reloads_the_config_for_new_calls_and_the_call_in_progress_keeps_its_own(
    asterisk: AsteriskLab, own_app: LabApp, config: Config
) -> None:
    mark = asterisk.log_offset()
    support = route_timing(config, "support")
    after_q = support.question_end + 1.0
    before = own_app.log_path.stat().st_size
    # a caller in the flow on "support" while its config is switched off
    thread, out = in_background(
        Call(
            to="support",
            caller_number="+4596000003",
            timeline=[Pause(after_q), Digit("1"), Pause(3.0)],
        )
    )
    wait_log(own_app, "call_entered", before)
    data = yaml.safe_load(own_app.config_path.read_text(encoding="utf-8"))
    data["routes"]["support"]["enabled"] = False
    own_app.config_path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    own_app.signal(signal.SIGHUP)
    reloaded = wait_log(own_app, "config_reloaded", before)
    assert "support" not in reloaded["routes"]

    new = run_call(Call(to="support", caller_number="+4596000004", timeline=[Pause(2.0)]))
    thread.join(timeout=60)
    (old,) = out
    assert old.answered and new.answered
    old_dest = asterisk.wait_labdest(old.call_id, since=mark)
    new_dest = asterisk.wait_labdest(new.call_id, since=mark)
    assert (old_dest.status, old_dest.reason) == ("given", "digit"), "the call kept its plan"
    assert old_dest.recording
    assert (new_dest.status, new_dest.reason) == ("not_required", "route_disabled")

    # a broken file: rejected, logged, the reloaded config stays and serve keeps running
    before = own_app.log_path.stat().st_size
    own_app.config_path.write_text("routes: [broken\n", encoding="utf-8")
    own_app.signal(signal.SIGHUP)
    rejected = wait_log(own_app, "config_reload_rejected", before)
    assert rejected["reason"] == "invalid" and rejected["kept_sha256"] == reloaded["sha256"]
    status, text = http_get("/metrics")
    assert status == 200
    assert sample(text, "callconsent_config_reloads_total", '{result="applied"}') == 1
    assert sample(text, "callconsent_config_reloads_total", '{result="rejected"}') == 1
    assert json.loads(http_get("/health")[1])["config_sha256"] == reloaded["sha256"]
