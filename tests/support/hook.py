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


def context_lines(name: str) -> list[str]:
    """The dialplan lines of context ``[name]`` (comments dropped), without its header."""
    lines = hook_lines()
    start = lines.index(f"[{name}]")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    return lines[start + 1 : end]


def mset_entries(line: str) -> list[tuple[str, str]]:
    """The ``name=value`` entries of one ``MSet(...)`` line, split at top-level commas (as
    Asterisk splits them once ``${...}`` is substituted: inside one, a comma is the function's)."""
    args = line[line.index("MSet(") + len("MSet(") : line.rindex(")")]
    entries, depth, current = [], 0, ""
    for char in args:
        depth += {"(": 1, "{": 1, ")": -1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            entries.append(current)
            current = ""
        else:
            current += char
    entries.append(current)
    return [(e.partition("=")[0], e.partition("=")[2]) for e in entries]


def cleared_before(context: str, step: str) -> set[str]:
    """The variables ``context`` sets to "" (``Set(X=)`` or an MSet entry ``X=``) before the
    first line holding ``step``."""
    cleared: set[str] = set()
    for line in context_lines(context):
        if step in line:
            return cleared
        if "MSet(" in line:
            cleared.update(name for name, value in mset_entries(line) if value == "")
        elif line.endswith("=)") and ",Set(" in line:
            cleared.add(line[line.index(",Set(") + len(",Set(") : -2])
    raise AssertionError(f"{step} not in [{context}]")
