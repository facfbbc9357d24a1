"""check-config and serve warn about recording paths that bypass consent (issue 15)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from callconsent.bypass_check import features_bypass, queues_bypass, recording_bypass_warnings
from callconsent.cli import main

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "config" / "demo.yaml"


@pytest.fixture
def _cli_logging() -> Iterator[None]:
    """The command configures logging for the process, bound to pytest's capture: undo it."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    yield
    root.handlers[:] = handlers
    structlog.reset_defaults()


def test_one_touch_mixmonitor_in_the_featuremap_is_a_bypass() -> None:
    (warning,) = features_bypass("[featuremap]\nautomixmon => *3\nblindxfer => #1\n", "f.conf")
    assert "automixmon => *3" in warning and "without the notice or consent" in warning


def test_automon_commented_out_or_outside_the_featuremap_is_not_a_bypass() -> None:
    text = "[featuremap]\n;automixmon => *3\nautomon =>\n[applicationmap]\nautomixmon => *4\n"
    assert features_bypass(text, "f.conf") == []


def test_a_queue_that_records_by_itself_is_a_bypass() -> None:
    text = "[general]\npersistentmembers = yes\n[support]\nmonitor-format = wav\nmonitor-type = MixMonitor\n"
    warnings = queues_bypass(text, "q.conf")
    assert len(warnings) == 2
    assert warnings[0].startswith("q.conf: [support] monitor-format = wav")


def test_the_labs_asterisk_config_has_no_bypass() -> None:
    asterisk = REPO / "config" / "asterisk"
    assert recording_bypass_warnings(asterisk / "features.conf", asterisk / "queues.conf") == []


def test_missing_files_give_no_bypass_warning(tmp_path: Path) -> None:
    assert recording_bypass_warnings(tmp_path / "nope.conf", tmp_path / "none.conf") == []


@pytest.mark.usefixtures("_cli_logging")
def test_check_config_prints_the_bypass_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLCONSENT_ARI_PASSWORD", "callconsent-lab")
    features = tmp_path / "features.conf"
    features.write_text(
        (REPO / "config" / "asterisk" / "features.conf").read_text(encoding="utf-8")
        .replace("[featuremap]\n", "[featuremap]\nautomixmon => *3\n"),
        encoding="utf-8",
    )  # fmt: skip
    queues = tmp_path / "queues.conf"
    queues.write_text("[sales]\nmonitor-format = wav49\n", encoding="utf-8")
    code = main.main(
        ["check-config", str(DEMO), "--features-conf", str(features), "--queues-conf", str(queues)]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert f"warning: {features}: [featuremap] automixmon => *3" in out
    assert f"warning: {queues}: [sales] monitor-format = wav49" in out
