"""Encryption at rest from the config (R33): the one place that turns ``encryption`` into the
key store and :class:`~callconsent.evidence.at_rest.AtRest` the app, reconcile, export and
``callconsent decrypt`` use. None when the config has no ``encryption`` section."""

from __future__ import annotations

from callconsent.config import Config
from callconsent.evidence.at_rest import AtRest
from callconsent.evidence.keystore import KeyStore, keys_dir


def at_rest_for(config: Config) -> AtRest | None:
    enc = config.encryption
    if enc is None:
        return None
    return AtRest(KeyStore(keys_dir(config.storage.ledger_path), enc.key_bytes(), enc.key_id))
