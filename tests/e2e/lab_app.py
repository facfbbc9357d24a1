"""The callconsent app as the end-to-end tests run it: ``callconsent serve`` on config/demo.yaml
against the lab Asterisk, plus helpers to read the evidence it wrote."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from callconsent.config import Config, build_plan
from callconsent.evidence.ledger import iter_entries
from callconsent.evidence.wav import inspect
from tests.support.lab import DEMO_CONFIG, LAB_ENV

#: The agent the lab destination's echo "phone" runs the agent gosub as (extensions-lab.conf).
LAB_ECHO_AGENT = "echo"


def prompt_seconds(media: str) -> float:
    return inspect(Path(media.removeprefix("sound:") + ".wav")).duration_seconds


@dataclass(frozen=True)
class RouteTiming:
    """Seconds from the answer: when the notices end and when the first question ends."""

    notices_end: float
    question_end: float
    retry_seconds: float
    timeout: float


def route_timing(config: Config, route: str, language: str | None = None) -> RouteTiming:
    """Seconds from the answer. With a language menu: ``language`` None means the caller lets
    the menu time out; a language means the caller chose it at once (during the menu prompt)."""
    plan = build_plan(config, route, sampled=lambda _rate: True)
    start = 0.0
    if plan.menu is not None:
        if language is None:
            start = prompt_seconds(plan.menu.prompt.media) + plan.menu.timeout_seconds
        else:
            plan = dict((p.language, p) for _d, p in plan.menu.options)[language]
    notices = start + sum(prompt_seconds(p.media) for p in plan.notices)
    asked = [p.consent for p in plan.purposes if p.consent is not None]
    question = prompt_seconds(asked[0].question.media) if asked else 0.0
    retry = prompt_seconds(asked[0].retry.media) if asked else 0.0
    timeout = asked[0].timeout_seconds if asked else 0.0
    return RouteTiming(notices, notices + question, retry, timeout)


def agent_cli(*args: str, config_path: Path = DEMO_CONFIG) -> subprocess.CompletedProcess[str]:
    """``callconsent agent ARGS --config CONFIG`` in a subprocess (text output, never raises)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "callconsent.cli.main",
            "agent",
            *args,
            "--config",
            str(config_path),
        ],
        env={**os.environ, **LAB_ENV},
        capture_output=True,
        text=True,
        check=False,
    )


def set_agent_consent(agent: str, consent: str = "given", *, actor: str = "e2e:test") -> None:
    """Record ``agent``'s standing consent in the lab registry (the CLI, as HR would)."""
    proc = agent_cli("set", agent, "--consent", consent, "--actor", actor)
    assert proc.returncode == 0, proc.stderr


class LabApp:
    """Starts and stops ``callconsent serve`` (a real process, SIGTERM to stop)."""

    def __init__(
        self, log_path: Path, config_path: Path = DEMO_CONFIG, *, log_level: str = "info"
    ) -> None:
        self.log_level = log_level
        self.log_path = log_path
        self.config_path = config_path  # a variant of demo.yaml (e.g. with encryption)
        self._proc: subprocess.Popen[bytes] | None = None

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the running serve (e.g. SIGHUP: reload the config)."""
        assert self._proc is not None and self._proc.poll() is None, "serve is not running"
        self._proc.send_signal(signum)

    def start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        subprocess.run(
            [
                sys.executable,
                "-m",
                "callconsent.cli.main",
                "prompts",
                "--config",
                str(self.config_path),
            ],
            env={**os.environ, **LAB_ENV},
            check=True,
            capture_output=True,
        )
        # the lab destination's echo agent consents (R15); serve mirrors it
        agent_cli(
            "set",
            LAB_ECHO_AGENT,
            "--consent",
            "given",
            "--actor",
            "lab:e2e",
            config_path=self.config_path,
        )
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "callconsent.cli.main",
                "serve",
                "--config",
                str(self.config_path),
                "--log-level",
                self.log_level,
            ],
            env={**os.environ, **LAB_ENV},
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"callconsent serve exited: {self.log_path.read_text()[-3000:]}")
            if b'"ari_connected"' in self.log_path.read_bytes()[offset:]:
                return
            time.sleep(0.1)
        tail = self.log_path.read_bytes()[offset:][-2000:].decode("utf-8", "replace")
        raise RuntimeError(f"callconsent serve did not connect to ARI within 15 s:\n{tail}")

    @property
    def pid(self) -> int | None:
        """The running ``serve`` process's id (None when it is not running)."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def entered_count(self) -> int:
        """How many calls the app has logged as entering the consent flow (all runs)."""
        return self.log_path.read_bytes().count(b'"call_entered"')

    def kill(self) -> None:
        """kill -9: no clean-up at all, as after a crash."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(timeout=10)
            self._proc = None

    def stop(self) -> int | None:
        if self._proc is None:
            return None
        self._proc.terminate()
        code = self._proc.wait(timeout=20)
        self._proc = None
        return code


def lab_config_variant(
    path: Path, *, ari_url: str | None = None, ami_port: int | None = None
) -> Path:
    """config/demo.yaml with another ARI URL or AMI port (e.g. a proxy the test controls),
    written to ``path``; the rest (folders, routes) is the lab's."""
    text = DEMO_CONFIG.read_text(encoding="utf-8")
    for default, value in (
        ("url: http://127.0.0.1:8088", None if ari_url is None else f"url: {ari_url}"),
        ("port: 5038", None if ami_port is None else f"port: {ami_port}"),
    ):
        assert default in text, f"config/demo.yaml no longer has {default!r}"
        if value is not None:
            text = text.replace(default, value, 1)
    path.write_text(text, encoding="utf-8")
    return path


def ledger_entries(config: Config) -> Iterator[dict[str, Any]]:
    if not config.storage.ledger_path.exists():
        return
    for line in iter_entries(config.storage.ledger_path):
        if line.entry is not None:
            yield line.entry


def wait_ledger(
    config: Config, uniqueid: str, kind: str = "call", timeout: float = 20.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        for entry in ledger_entries(config):
            if entry["type"] == kind and entry["call"]["uniqueid"] == uniqueid:
                return entry
        if time.monotonic() > deadline:
            raise AssertionError(f"no ledger {kind} entry for {uniqueid} within {timeout} s")
        time.sleep(0.2)


def call_entries_for(config: Config, uniqueid: str) -> list[dict[str, Any]]:
    return [
        e
        for e in ledger_entries(config)
        if e["type"] == "call" and e["call"]["uniqueid"] == uniqueid
    ]


_STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})\]")


def log_time(line: str) -> datetime:
    """The time stamp of one line of Asterisk's full log (local time of the sandbox)."""
    m = _STAMP.match(line)
    assert m, line
    return datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f")


def first_line(lines: list[str], pattern: str, after: datetime | None = None) -> str | None:
    """The first of ``lines`` matching ``pattern`` (at or after ``after``), or None."""
    rx = re.compile(pattern)
    for line in lines:
        if rx.search(line) and (after is None or log_time(line) >= after):
            return line
    return None


def wait_sidecar(
    config: Config, recording: str, *, until: str = "final", timeout: float = 20.0
) -> dict[str, Any]:
    """The sidecar of ``recording`` (relative to the recordings folder, or absolute) once it is
    in state ``until``; as it is after ``timeout`` seconds otherwise (the test then says why)."""
    path = (config.storage.recordings_dir / recording).with_suffix(".json")
    deadline = time.monotonic() + timeout
    while True:
        doc: dict[str, Any] = json.loads(path.read_text())
        if doc["state"] == until or time.monotonic() > deadline:
            return doc
        time.sleep(0.2)
