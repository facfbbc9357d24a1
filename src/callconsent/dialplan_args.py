"""One dialplan ``ARRAY(...)`` write that sets several channel variables at once: the result
the hook reads, set in one ARI request (:mod:`callconsent.ari`) or one FastAGI ``SET VARIABLE``
(:mod:`callconsent.agi.result`) instead of one per variable."""

from __future__ import annotations

import re
from collections.abc import Sequence

#: Names set in one ``ARRAY(...)`` write (it splits its argument on commas).
_PLAIN_NAME = re.compile(r"_{0,2}[A-Za-z][A-Za-z0-9_]*")
#: Characters Asterisk's argument splitter (``ARRAY``'s value) gives a meaning: each is sent
#: behind a backslash, which the splitter removes, so the value arrives as it was.
_ARG_SPECIAL = re.compile(r'([\\",()\[\]])')
#: ``ARRAY`` sets at most this many variables.
ARRAY_MAX = 99


def array_assignment(pairs: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """The ``(name, value)`` of one ``ARRAY(...)`` write that sets every pair, in order.

    Asterisk splits the value on commas and honours quotes, brackets, parentheses and
    backslashes; each of these is escaped here, so every value arrives byte for byte. Names
    must be plain dialplan variable names (``__`` for inheritance allowed)."""
    if not 0 < len(pairs) <= ARRAY_MAX:
        raise ValueError(f"ARRAY sets 1 to {ARRAY_MAX} variables, not {len(pairs)}")
    for name, _ in pairs:
        if not _PLAIN_NAME.fullmatch(name):
            raise ValueError(f"not a plain variable name: {name!r}")
    names = ",".join(name for name, _ in pairs)
    values = ",".join(_ARG_SPECIAL.sub(r"\\\1", value) for _, value in pairs)
    return f"ARRAY({names})", values
