"""Hypothesis strategies that mutate evidence: any JSON value at any place of a ledger entry or
a sidecar, with a bias to the values an attacker would pick (another subject's call id, file
and number, path tricks, huge numbers)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def values(*hostile: Any) -> st.SearchStrategy[Any]:
    """Any JSON value, half the time one of ``hostile`` or a path trick."""
    tricks = ["../../etc/passwd", "..", "2026/01/05/../../../x.wav", "", "9" * 30, 10**30]
    return st.sampled_from([*hostile, *tricks]) | JSON


@st.composite
def mutated(draw: st.DrawFn, doc: dict[str, Any], value: st.SearchStrategy[Any]) -> dict[str, Any]:
    """A deep copy of ``doc`` with one to three places replaced by ``value`` or deleted."""
    out = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, 3))):
        parent: Any = out
        key: Any = None
        while True:
            keys = list(parent) if isinstance(parent, dict) else list(range(len(parent)))
            if not keys:
                break
            key = draw(st.sampled_from(keys))
            child = parent[key]
            if not isinstance(child, dict | list) or not child or draw(st.booleans()):
                break
            parent = child
        if key is None:
            continue
        if isinstance(parent, dict) and draw(st.integers(0, 5)) == 0:
            del parent[key]
        else:  # a copy: a shared hostile list or dict must never be changed by a later place
            parent[key] = copy.deepcopy(draw(value))
    return out


#: The places of an entry or sidecar that say whose evidence it is.
IDENTITY: tuple[tuple[str, ...], ...] = (
    ("call", "uniqueid"),
    ("call", "linkedid"),
    ("call", "caller_number"),
    ("recording",),
    ("recording", "file"),
    ("calls",),
)


@st.composite
def reassigned(
    draw: st.DrawFn, doc: dict[str, Any], value: st.SearchStrategy[Any]
) -> dict[str, Any]:
    """A deep copy of ``doc`` claiming to be someone else's: one or more of its identity places
    (:data:`IDENTITY`) set to ``value``."""
    out = copy.deepcopy(doc)
    for place in draw(st.lists(st.sampled_from(IDENTITY), min_size=1, max_size=3, unique=True)):
        parent: Any = out
        for key in place[:-1]:
            if not isinstance(parent.get(key), dict):
                parent[key] = {}
            parent = parent[key]
        parent[place[-1]] = copy.deepcopy(draw(value))  # never the shared hostile object itself
    return out


def tampered(doc: dict[str, Any], *hostile: Any) -> st.SearchStrategy[dict[str, Any]]:
    """Either kind of tampering: anything anywhere, or a claim (with one of ``hostile``) to be
    someone else's."""
    return mutated(doc, values(*hostile)) | reassigned(doc, st.sampled_from(hostile))
