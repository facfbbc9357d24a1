"""Call references (R17b): the pure derivation, and the index that maps a reference to calls."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from callconsent.evidence import callref
from callconsent.lifecycle import query
from tests.support.lifecycle_fixtures import T0, make_store


def test_reference_is_nine_digits_deterministic_and_passes_its_check() -> None:
    ref = callref.call_ref("1767607200.42")
    assert ref == callref.call_ref("1767607200.42")
    assert len(ref) == 9 and ref.isdigit()
    assert callref.normalise(callref.display(ref)) == ref
    assert callref.normalise(f"{ref[:3]}-{ref[3:6]}.{ref[6:]}") == ref
    assert callref.call_ref("1767607200.43") != ref


def test_every_single_mistyped_digit_fails_the_check() -> None:
    ref = callref.call_ref("1767607200.42")
    for i, d in itertools.product(range(9), "0123456789"):
        typo = ref[:i] + d + ref[i + 1 :]
        if typo != ref:
            with pytest.raises(callref.CallRefError, match="check digit"):
                callref.normalise(typo)


@pytest.mark.parametrize("text", ["", "12345678", "1234567890", "12345678x", "١٢٣٤٥٦٧٨٩"])
def test_malformed_reference_is_refused(text: str) -> None:
    with pytest.raises(callref.CallRefError):
        callref.normalise(text)


def test_keyed_reference_differs_from_plain_and_between_keys() -> None:
    plain = callref.call_ref("1.1")
    assert callref.call_ref("1.1", b"k" * 32) not in (plain, callref.call_ref("1.1", b"j" * 32))
    assert callref.key_id(None) == "plain" and callref.key_id(b"k" * 32) != "plain"


def test_index_maps_references_to_calls_and_follows_a_new_key(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    store.call("6000.1")
    store.call("6000.2", None, purposes=("training",), refused=True)  # no recording
    with store.context(T0) as ctx:
        ctx.index.update()
        assert query.calls_by_ref(ctx.index, callref.call_ref("6000.1")) == [
            ("6000.1", "2026-01-05T10:00:00.000Z")
        ]
        assert [u for u, _ in query.calls_by_ref(ctx.index, callref.call_ref("6000.2"))] == [
            "6000.2"
        ]
        assert query.calls_by_ref(ctx.index, callref.call_ref("6000.3")) == []
        store.call("6000.3")
        ctx.index.update()  # incremental: the new call gets its reference
        assert len(query.calls_by_ref(ctx.index, callref.call_ref("6000.3"))) == 1
    key = b"s" * 32
    callref.key_path(store.ledger_path).write_bytes(key)
    with store.context(T0) as ctx:
        ctx.index.update()  # another key: every reference recomputed
        assert query.calls_by_ref(ctx.index, callref.call_ref("6000.1")) == []
        assert len(query.calls_by_ref(ctx.index, callref.call_ref("6000.1", key))) == 1
        stats = ctx.index.rebuild()
        assert stats.sidecars == 2
        count = ctx.index.db.execute("SELECT COUNT(*) FROM call_refs").fetchone()[0]
        assert count == 3
        assert len(query.calls_by_ref(ctx.index, callref.call_ref("6000.2", key))) == 1


def test_rebuild_recreates_every_secondary_index(tmp_path: Path) -> None:
    from callconsent.lifecycle._schema import INDEXES

    store = make_store(tmp_path)
    store.call("6000.1")
    with store.context(T0) as ctx:
        ctx.index.rebuild()
        names = {
            n for (n,) in ctx.index.db.execute("SELECT name FROM sqlite_master WHERE type='index'")
        }
        assert set(INDEXES) <= names
        assert ctx.index.db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL again


def test_rebuild_with_worker_processes_indexes_what_an_update_does(tmp_path: Path) -> None:
    """Several day folders: a rebuild reads them in worker processes; same rows, same refs."""
    from datetime import timedelta

    store = make_store(tmp_path)
    for i in range(6):
        store.call(f"6100.{i}", when=T0 + timedelta(days=i), purposes=("documentation", "training"))
    (store.root / "2026/01/06/6100.1.json").write_text("{ broken")

    def snapshot() -> tuple[list[tuple[object, ...]], ...]:
        with store.context(T0) as ctx:
            ctx.index.update()
            db = ctx.index.db
            return tuple(
                db.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()  # noqa: S608
                for t in ("recordings", "calls", "call_refs", "entry_calls")
            )

    incremental = snapshot()
    with store.context(T0) as ctx:
        stats = ctx.index.rebuild()
        assert (stats.sidecars, stats.days_scanned, stats.problems) == (5, 6, 1)
        assert [p.path.name for p in ctx.index.problems()] == ["6100.1.json"]
    assert snapshot() == incremental
