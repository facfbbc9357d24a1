"""Evidence JSON (callconsent.evidence.fsio): the indented form written to every sidecar is
json.dumps's, byte for byte, whatever the document holds; a copied document is a deep copy."""

from __future__ import annotations

import enum
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callconsent.evidence.fsio import copy_document, dumps


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


@settings(max_examples=200, deadline=None)
@given(_DOCS)
def test_a_copied_document_equals_the_original_and_shares_no_container_with_it(doc: Any) -> None:
    copied = copy_document(doc)
    assert copied == doc
    assert _json(copied, 2) == _json(doc, 2)
    originals = {id(c) for c in _containers(doc)}
    assert not any(id(c) in originals for c in _containers(copied) if not isinstance(c, tuple))


def test_changing_a_copied_document_leaves_the_original_as_it_was() -> None:
    doc = {"purposes": [{"purpose": "training", "consent": {"status": "pending"}}], "n": 1}
    copied = copy_document(doc)
    copied["purposes"][0]["consent"]["status"] = "given"
    copied["purposes"].append({"purpose": "quality"})
    assert doc == {"purposes": [{"purpose": "training", "consent": {"status": "pending"}}], "n": 1}


def _containers(doc: Any) -> list[Any]:
    if isinstance(doc, dict):
        return [doc, *(c for v in doc.values() for c in _containers(v))]
    if isinstance(doc, (list, tuple)):
        return [doc, *(c for v in doc for c in _containers(v))]
    return []
