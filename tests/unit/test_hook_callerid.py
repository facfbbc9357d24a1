"""The hook keeps the caller ID as sent, then normalises it before anything else (issue 11)."""

from __future__ import annotations

import re
from pathlib import Path

from callconsent import names
from callconsent.parties.adapter import PartyWatch
from callconsent.parties.tracker import Classifier
from callconsent.stasis_ami import AmiCallEnds

REPO = Path(__file__).resolve().parents[2]
HOOK = REPO / "dialplan" / "callconsent.conf"
MANAGER = REPO / "config" / "asterisk" / "manager.conf"


def _hook_lines() -> list[str]:
    text = HOOK.read_text(encoding="utf-8")
    start = text.index(f"[{names.HOOK_CONTEXT}]\n")
    end = text.index("\n[", start + 1)
    return [line.split(";", 1)[0].strip() for line in text[start:end].splitlines()]


def _at(lines: list[str], needle: str) -> int:
    return next(i for i, line in enumerate(lines) if needle in line)


def test_the_hook_keeps_the_raw_caller_id_then_normalises_it_before_stasis() -> None:
    lines = _hook_lines()
    raw_num = _at(lines, f"Set({names.VAR_CALLERID_RAW_NUM}=${{CALLERID(num)}})")
    raw_name = _at(lines, f"Set({names.VAR_CALLERID_RAW_NAME}=${{CALLERID(name)}})")
    num = _at(lines, "Set(CALLERID(num)=${FILTER(0-9+,${CALLERID(num)})})")
    name = _at(lines, r"Set(CALLERID(name)=${FILTER(\x20-\x7e\x80-\xff,${CALLERID(name)})})")
    stasis = _at(lines, "Stasis(")
    assert raw_num < num < stasis and raw_name < name < stasis
    assert raw_num <= 2 and raw_name <= 3  # first thing after the NoOp


def test_the_names_filter_keeps_printable_and_utf8_bytes_only() -> None:
    line = _hook_lines()[_at(_hook_lines(), "Set(CALLERID(name)=")]
    spec = re.search(r"FILTER\(([^,]*),", line)
    assert spec and spec.group(1) == r"\x20-\x7e\x80-\xff"


def test_the_lab_ami_user_hears_only_the_events_the_app_acts_on() -> None:
    text = MANAGER.read_text(encoding="utf-8")
    included = re.findall(r"^eventfilter\(action\(include\),name\((\w+)\)\) =$", text, re.M)
    watch = PartyWatch(None, None, None, Classifier(()))  # type: ignore[arg-type]  # names only
    ends = AmiCallEnds().handlers()
    assert sorted(included) == sorted({*watch.handlers(), *ends, "UserEvent"})


def test_the_withdrawal_route_normalises_the_caller_id_before_its_user_event() -> None:
    text = HOOK.read_text(encoding="utf-8")
    start = text.index(f"[{names.WITHDRAW_ROUTE_CONTEXT}]\n")
    route = text[start : text.index("\n[", start + 1)]
    num = route.index("Set(CALLERID(num)=${FILTER(0-9+,${CALLERID(num)})})")
    name = route.index(r"Set(CALLERID(name)=${FILTER(\x20-\x7e\x80-\xff,${CALLERID(name)})})")
    assert num < route.index("Answer()") and name < route.index("UserEvent(")
