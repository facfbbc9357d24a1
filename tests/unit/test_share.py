"""The wheel's package data: the same default config and dialplan hook as the repository."""

from __future__ import annotations

from pathlib import Path

from callconsent.share import DEFAULT_CONFIG, DIALPLAN_HOOK, shipped

REPO = Path(__file__).resolve().parents[2]


def test_shipped_default_config_is_the_repositorys_with_its_notice_texts() -> None:
    text = shipped(DEFAULT_CONFIG).read_text(encoding="utf-8")
    assert text == (REPO / "config" / "callconsent.yaml").read_text(encoding="utf-8")
    assert "notices:" in text and "transcript" in text


def test_shipped_dialplan_hook_is_the_repositorys() -> None:
    assert (
        shipped(DIALPLAN_HOOK).read_bytes() == (REPO / "dialplan" / "callconsent.conf").read_bytes()
    )
