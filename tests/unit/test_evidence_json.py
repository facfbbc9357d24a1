"""The evidence JSON encoding (callconsent.evidence.fsio.dumps): the indented form written to
every sidecar is json.dumps's, byte for byte, whatever the document holds."""

from __future__ import annotations

import enum
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callconsent.evidence.fsio import dumps


def _json(obj: Any, indent: int) -> str:
    return json.dumps(
        obj, ensure_ascii=True, allow_nan=False, indent=indent, separators=(",", ": ")
    )


class _State(enum.StrEnum):
    LIVE = "live"


class _Count(enum.IntEnum):
    ONE = 1


_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()  # lone surrogates, U+2028, control characters included
    | st.sampled_from([_State.LIVE, _Count.ONE, -0.0, 1e16, 1e-7])
)
_DOCS = st.recursive(
    _LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(_DOCS, st.sampled_from([0, 1, 2, 4]))
def test_indented_evidence_json_is_json_dumps_byte_for_byte(doc: Any, indent: int) -> None:
    assert dumps(doc, indent=indent) == _json(doc, indent)


@pytest.mark.parametrize(
    "doc",
    [
        {"a": math.nan},
        {"a": [1, math.inf]},
        {"a": object()},
        {1: "int key"},
        {"a": {2.5: "float key", None: "null key"}},
    ],
    ids=["nan", "infinity", "object", "int key", "float and null keys"],
)
def test_a_document_json_refuses_or_converts_is_refused_or_converted_as_json_does(
    doc: dict[Any, Any],
) -> None:
    try:
        expected = _json(doc, 2)
    except (ValueError, TypeError) as exc:
        with pytest.raises(type(exc)):
            dumps(doc, indent=2)
    else:
        assert dumps(doc, indent=2) == expected


def test_a_document_that_holds_itself_is_refused() -> None:
    doc: dict[str, Any] = {}
    doc["self"] = [doc]
    with pytest.raises(ValueError, match="Circular"):
        dumps(doc, indent=2)
