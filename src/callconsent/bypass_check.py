"""Recording paths that bypass consent (issue 15): Asterisk can record a call by itself, without
the notice and the question, and such a recording has no sidecar and no ledger entry.

``check-config`` and ``serve`` warn (never fail: the files may live on another host) when:

- features.conf's ``[featuremap]`` binds ``automixmon`` or ``automon``: one-touch recording, a
  key any party with the Dial/Queue option ``X``/``x`` or ``W``/``w`` can press;
- a queue in queues.conf records its calls: ``monitor-format`` (what switches Queue's own
  recording on) or ``monitor-type``, in a queue or in ``[general]``.

Text in, warnings out; the reading of the files is the only I/O (as in
:mod:`callconsent.withdrawal.features_check`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

DEFAULT_QUEUES_CONF: Final = Path("/etc/asterisk/queues.conf")
_SECTION: Final = re.compile(r"^\s*\[([^\]]+)\]")
_SETTING: Final = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=>?\s*(.*?)\s*$")
_ONE_TOUCH: Final = ("automixmon", "automon")
_QUEUE_RECORDING: Final = ("monitor-format", "monitor-type")


def _settings(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) of every ``key = value`` line; comments (``;``) dropped."""
    out: list[tuple[str, str, str]] = []
    section = ""
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].rstrip()
        head = _SECTION.match(line)
        if head:
            section = head.group(1).strip()
            continue
        m = _SETTING.match(line)
        if m:
            out.append((section, m.group(1).lower(), m.group(2)))
    return out


def features_bypass(text: str, features_conf: Path | str) -> list[str]:
    return [
        f"{features_conf}: [featuremap] {key} => {value} records calls without the notice or "
        "consent (no sidecar, no ledger entry); remove it, or never give callers' calls the "
        "Dial/Queue options X/x/W/w"
        for section, key, value in _settings(text)
        if section.lower() == "featuremap" and key in _ONE_TOUCH and value
    ]


def queues_bypass(text: str, queues_conf: Path | str) -> list[str]:
    return [
        f"{queues_conf}: [{section}] {key} = {value}: the queue records its calls itself, "
        "without the notice or consent (no sidecar, no ledger entry); remove it and record "
        "through the callconsent hook"
        for section, key, value in _settings(text)
        if key in _QUEUE_RECORDING and value
    ]


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:  # another host, or no queues: nothing to say (features_check names a
        return None  # features.conf it cannot read)


def recording_bypass_warnings(features_conf: Path, queues_conf: Path) -> list[str]:
    out: list[str] = []
    features = _read(features_conf)
    if features is not None:
        out += features_bypass(features, features_conf)
    queues = _read(queues_conf)
    if queues is not None:
        out += queues_bypass(queues, queues_conf)
    return out
