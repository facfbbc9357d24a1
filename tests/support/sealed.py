"""Reading a ledger ``call`` entry's sealed caller back, as the lifecycle tools do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from callconsent.evidence import callers
from callconsent.evidence.caller_keys import CallerKeys


def caller_of(entry: dict[str, Any], ledger_path: Path) -> callers.Caller:
    """The caller of ``entry`` (a ``call`` ledger entry) opened with the key store beside
    ``ledger_path``; asserts the entry holds no number or name in clear."""
    call = entry["call"]
    assert "caller_number" not in call and "caller_name" not in call, "caller in clear"
    keys = CallerKeys.beside(ledger_path)
    try:
        return callers.open_caller(call, keys.key)
    finally:
        keys.close()
