"""The command line's stdout is the command's report: log lines never reach it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from callconsent.cli import main

DEMO = Path(__file__).resolve().parents[2] / "config" / "demo.yaml"


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    """The commands configure structlog for the process, bound to pytest's captured stderr:
    later tests must not log into that closed capture."""
    yield
    structlog.reset_defaults()


def test_commands_other_than_serve_log_warnings_to_stderr_and_nothing_to_stdout(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLCONSENT_ARI_PASSWORD", "callconsent-lab")
    main.main(["check-config", str(DEMO), "--features-conf", "/nonexistent"])
    report = capsys.readouterr().out
    log = structlog.get_logger("callconsent.ami")
    log.info("ami_connected")  # below the commands' level: not shown at all
    log.warning("ami_disconnected", error="x")
    out, err = capsys.readouterr()
    assert "routes enabled" in report
    assert out == ""
    assert "ami_disconnected" in err and "ami_connected" not in err
