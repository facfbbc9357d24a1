"""Fixtures shared by the unit tests of the app's evidence store and its mid-call adapters."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from callconsent.store import EvidenceStore

#: The store's clock: five minutes into the calls the tests make (they start at 09:00 UTC).
STORE_NOW = datetime(2026, 11, 24, 9, 5, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> EvidenceStore:
    """A real evidence store in ``tmp_path`` (recordings/, ledger.jsonl). A module that needs
    another clock or kind of store defines its own ``store`` fixture, which wins."""
    (tmp_path / "recordings").mkdir()
    return EvidenceStore(
        recordings_dir=tmp_path / "recordings",
        ledger_path=tmp_path / "ledger.jsonl",
        config_sha256="d" * 64,
        clock=lambda: STORE_NOW,
    )
