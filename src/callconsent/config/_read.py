"""Reading one YAML mapping strictly: typed getters, and every key not read is an error.

``Node`` wraps a mapping at a key path. Each getter records the key as known; ``done()`` then
reports every other key as unknown (with a did-you-mean hint), so a typo such as ``enabeld`` can
never silently switch a rule off. Type errors are reported against the key path and the getter
returns a harmless fallback so reading can go on and collect every error in one pass.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from typing import Final

from ._errors import Problems
from ._model import PromptText

_DIGIT: Final = re.compile(r"^[0-9]$")
AUDIO_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value: object) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "true/false"}.get(
        type(value), type(value).__name__
    )


class Node:
    """A YAML mapping at ``path`` being read."""

    def __init__(self, raw: object, path: str, problems: Problems) -> None:
        self.path = path
        self.problems = problems
        self._known: set[str] = set()
        self.raw: dict[str, object] = {}
        if raw is None:
            return
        if not isinstance(raw, dict):
            problems.error(path or "(top level)", f"must be a mapping, got {_kind(raw)}")
            return
        for key, value in raw.items():
            if isinstance(key, str):
                self.raw[key] = value
            elif isinstance(key, int) and not isinstance(key, bool):
                self.raw[str(key)] = value  # e.g. a menu digit written unquoted: 8: en
            else:
                problems.error(self.at(str(key)), "keys must be strings")

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return key in self.raw and self.raw[key] is not None

    def _get(self, key: str) -> object:
        self._known.add(key)
        return self.raw.get(key)

    def missing(self, key: str) -> None:
        self.problems.error(self.at(key), "missing (required)")

    def string(self, key: str) -> str:
        """A required non-empty string ('' after reporting an error)."""
        value = self.opt_string(key)
        if value is None:
            if key in self.raw and self.raw[key] is not None:
                return ""
            self.missing(key)
            return ""
        return value

    def opt_string(self, key: str, default: str | None = None) -> str | None:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.problems.error(
                self.at(key), f"must be a string, got {_kind(value)} {_show(value)}"
            )
            return default
        text = str(value).strip()
        if not text:
            self.problems.error(self.at(key), "must not be empty")
            return default
        return text

    def integer(self, key: str, default: int | None = None) -> int:
        value = self._get(key)
        if value is None:
            if default is None:
                self.missing(key)
                return 0
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.problems.error(self.at(key), f"must be a whole number, got {_show(value)}")
            return default if default is not None else 0
        return value

    def number(self, key: str, default: float) -> float:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problems.error(self.at(key), f"must be a number, got {_show(value)}")
            return default
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problems.error(self.at(key), f"must be true or false, got {_show(value)}")
            return default
        return value

    def choice(self, key: str, allowed: tuple[str, ...], default: str | None = None) -> str:
        """A string from a closed list ('' after reporting an error)."""
        value = self.opt_string(key) if default is not None else self.string(key)
        if value is None:
            return default or ""
        if value and value not in allowed:
            self.problems.error(
                self.at(key), f"must be one of {', '.join(allowed)}, got {_show(value)}"
            )
            return ""
        return value

    def digit(self, key: str, default: str | None, *, nullable: bool) -> str | None:
        """One DTMF digit 0-9, written "1" or 1; ``null`` allowed only when ``nullable``."""
        self._known.add(key)
        if key not in self.raw:
            return default
        value = self.raw[key]
        if value is None:
            if nullable:
                return None
            self.problems.error(self.at(key), "must be one digit 0-9, got null")
            return default
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(text, str) or not _DIGIT.match(text):
            self.problems.error(self.at(key), f"must be one digit 0-9, got {_show(value)}")
            return default
        return text

    def strings(self, key: str) -> tuple[str, ...]:
        value = self._get(key)
        if value is None:
            return ()
        if not isinstance(value, list):
            self.problems.error(self.at(key), f"must be a list, got {_kind(value)}")
            return ()
        out: list[str] = []
        for index, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, str | int):
                self.problems.error(
                    f"{self.at(key)}[{index}]", f"must be a string, got {_show(item)}"
                )
            else:
                out.append(str(item))
        return tuple(out)

    def child(self, key: str, *, required: bool = False) -> Node:
        value = self._get(key)
        if value is None and required:
            self.missing(key)
        return Node(value, self.at(key), self.problems)

    def entries(self) -> Iterator[tuple[str, object]]:
        """Every entry of a mapping whose keys are names (notices, routes, languages)."""
        for key, value in self.raw.items():
            self._known.add(key)
            yield key, value

    def done(self) -> None:
        """Report every key that no getter asked for."""
        known = sorted(self._known)
        for key in self.raw:
            if key in self._known:
                continue
            hint = difflib.get_close_matches(key, known, n=1)
            more = f"; did you mean '{hint[0]}'?" if hint else f" (allowed: {', '.join(known)})"
            self.problems.error(self.at(key), f"unknown key{more}")


def read_prompt(node: Node, key: str) -> PromptText | None:
    """An optional ``{audio, transcript}`` entry of ``node``."""
    if not node.has(key):
        node.opt_string(key)  # marks the key as known
        return None
    sub = node.child(key)
    prompt = PromptText(read_audio_name(sub), sub.string("transcript"))
    sub.done()
    return prompt


def read_audio_name(node: Node) -> str:
    """``audio``: a file base name under ``<prompts_dir>/<lang>/``, never a path."""
    audio = node.string("audio")
    if audio and not AUDIO_RE.match(audio):
        node.problems.error(
            node.at("audio"),
            "must be a file base name (letters, digits, _ and -; no folder, no extension), "
            f"got {audio!r}",
        )
    return audio
