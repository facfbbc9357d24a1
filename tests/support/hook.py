"""The shipped dialplan hook (dialplan/callconsent.conf) as the unit tests read it."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HOOK = REPO / "dialplan" / "callconsent.conf"


def hook_lines() -> list[str]:
    """The hook's dialplan lines, comments dropped (so a name only in a comment does not count)."""
    text = HOOK.read_text(encoding="utf-8")
    return [line.split(";", 1)[0].rstrip() for line in text.splitlines() if line.split(";", 1)[0]]


def hook_code() -> str:
    return "\n".join(hook_lines())
