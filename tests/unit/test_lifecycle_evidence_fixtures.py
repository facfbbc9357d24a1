"""The shared lifecycle fixtures (``tests.support.lifecycle_fixtures``) make real evidence."""

from __future__ import annotations

from pathlib import Path

from callconsent.lifecycle.verify import verify
from tests.support.lifecycle_fixtures import make_store


def test_fixture_store_is_valid_evidence(tmp_path: Path) -> None:
    """The fixtures are real evidence: verify finds them intact and the schema accepts them."""
    store = make_store(tmp_path)
    store.call("1000.1")
    store.call("1000.2", purposes=("training",), refused=True)
    store.call("1000.3", purposes=("documentation", "training"), agent="a17")
    report = verify(store.root, store.ledger_path)
    assert report.ok, report.summary()
    assert report.recordings_hashed == 2
