"""Asterisk's dialplan argument splitter, modelled for tests: how ``ARRAY()`` (and every
application) takes a comma-separated value apart."""

from __future__ import annotations


def separate_args(buf: str, delim: str = ",") -> list[str]:
    """Asterisk's argument splitter as ``ARRAY()`` uses it (main/app.c,
    ``__ast_app_separate_args`` with remove_chars): parentheses, brackets and quotes group,
    quotes and backslashes are removed, a backslash makes the next character literal."""
    args: list[str] = []
    current: list[str] = []
    paren = bracket = 0
    quote = False
    i = 0
    while i < len(buf):
        c = buf[i]
        if c == "(":
            paren += 1
        elif c == ")":
            paren = max(0, paren - 1)
        elif c == "[":
            bracket += 1
        elif c == "]":
            bracket = max(0, bracket - 1)
        elif c == '"':
            quote = not quote
            i += 1
            continue
        elif c == "\\":
            if i + 1 < len(buf):
                current.append(buf[i + 1])
            i += 2
            continue
        elif c == delim and not paren and not quote and not bracket:
            args.append("".join(current))
            current = []
            i += 1
            continue
        current.append(c)
        i += 1
    args.append("".join(current))
    return args
