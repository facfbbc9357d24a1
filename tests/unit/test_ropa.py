"""The Art 30 record states only what the system does: each technical measure it claims is
checked here against the code that is supposed to do it."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

from callconsent.config import EncryptionConfig, Secret
from callconsent.evidence import sidecar
from callconsent.evidence.paths import RecordingPaths
from callconsent.lifecycle.ropa import TECHNICAL_MEASURES, technical_measures
from tests.support.lifecycle_fixtures import NUMBER, T0, make_config, make_store


def test_ropa_claims_no_start_up_check_of_world_readable_paths() -> None:
    text = " ".join(TECHNICAL_MEASURES)
    assert "start-up" not in text and "world-readable" not in text


def test_ropa_tombstone_claim_matches_the_fields_a_tombstone_keeps(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    paths = store.call("4100.1", audio=b"\x00\x01" * 400)
    assert isinstance(paths, RecordingPaths)
    tomb = sidecar.tombstone(paths, reason="retention", at=T0 + timedelta(days=91))
    assert set(tomb) == {
        "schema_version",
        "state",
        "call",
        "recording",
        "deleted_at",
        "reason",
        "updated_at",
    }
    assert set(tomb["call"]) == {"uniqueid"}
    assert NUMBER not in paths.sidecar.read_text(encoding="utf-8")
    assert any("tombstone holding only the call id" in m for m in TECHNICAL_MEASURES)


def test_ropa_says_the_ledger_holds_caller_numbers_encrypted_until_their_key_is_destroyed() -> None:
    [measure] = [m for m in TECHNICAL_MEASURES if "caller number and name" in m]
    assert "only encrypted" in measure and "destroy the key" in measure
    assert "before this are only marked anonymised" in measure


def test_ropa_names_encryption_at_rest_only_when_the_config_turns_it_on(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    assert config.encryption is None
    plain = technical_measures(config)
    assert any("stored unencrypted" in m for m in plain)
    assert not any("encrypted at rest" in m for m in plain)
    secret = Secret(bytes(32).hex())
    on = dataclasses.replace(config, encryption=EncryptionConfig("k1", {"k1": secret}))
    assert any("encrypted at rest" in m and "'k1'" in m for m in technical_measures(on))
