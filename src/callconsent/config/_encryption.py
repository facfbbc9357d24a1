"""``encryption``: recordings encrypted at rest (R33), read and checked. Absent: stored in clear.

    encryption:
      key_id: "2026-01"                          # names the current key-encryption key
      key_file: /etc/callconsent/kek-2026-01     # 64 hex chars, mode 0600 (or key_env: NAME)
      previous_keys:                             # after a rotation, until `callconsent rewrap`
        "2025-07": {key_file: /etc/callconsent/kek-2025-07}

A key is 32 random bytes written as 64 hex characters (``head -c 32 /dev/urandom | xxd -p -c 64``).
"""

from __future__ import annotations

import re
import stat
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Final

from ._model import EncryptionConfig, Secret
from ._read import Node

KEY_ID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
_HEX_KEY: Final = re.compile(r"^[0-9a-fA-F]{64}$")


def read_encryption(node: Node, env: Mapping[str, str]) -> EncryptionConfig:
    key_id = node.string("key_id")
    if key_id and not KEY_ID_RE.match(key_id):
        node.problems.error(node.at("key_id"), f"must match {KEY_ID_RE.pattern}, got {key_id!r}")
    keys = {key_id: _key(node, env)}
    previous = node.child("previous_keys")
    for old_id, raw in previous.entries():
        where = previous.at(old_id)
        if not KEY_ID_RE.match(old_id):
            node.problems.error(where, f"a key id must match {KEY_ID_RE.pattern}")
        elif old_id == key_id:
            node.problems.error(where, "is the current key_id: list only older keys here")
        old = Node(raw, where, node.problems)
        keys[old_id] = _key(old, env)
        old.done()
    node.done()
    return EncryptionConfig(key_id, MappingProxyType(keys))


def _key(node: Node, env: Mapping[str, str]) -> Secret:
    file, var = node.opt_string("key_file"), node.opt_string("key_env")
    if (file is None) == (var is None):
        node.problems.error(node.at("key_file"), "give exactly one of key_file or key_env")
        return Secret("00" * 32)
    if var is not None:
        value = env.get(var, "").strip()
        where, source = node.at("key_env"), f"environment variable {var}"
        if not value:
            node.problems.error(where, f"{source} is not set")
            return Secret("00" * 32)
    else:
        where, path = node.at("key_file"), Path(str(file))
        source = str(path)
        if not path.is_absolute():
            node.problems.error(where, f"must be an absolute path, got {source!r}")
            return Secret("00" * 32)
        try:
            mode = path.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                node.problems.error(
                    where,
                    f"{path} is open to group or others (mode {stat.S_IMODE(mode):04o}); "
                    "chmod 600 it (R32)",
                )
                return Secret("00" * 32)
            value = path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            node.problems.error(where, f"cannot read {path}: {exc}")
            return Secret("00" * 32)
    if not _HEX_KEY.match(value):
        node.problems.error(where, f"{source} must hold 64 hex characters (a 256-bit key)")
        return Secret("00" * 32)
    return Secret(value)
