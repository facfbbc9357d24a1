"""The caller's number and name in the ledger: sealed under a per-call key, never in clear.

A ``call`` entry names its caller as ``call.caller``::

    {"kid": "<32 hex>", "sealed": "<base64: nonce | AES-256-GCM(key, {"number", "name"})>"}

or null when the call carried neither. The key lives only in the caller key store beside the
ledger (:mod:`callconsent.evidence.caller_keys`), one random 32-byte key per call, with the
call's *lookup digest*: HMAC-SHA256 of the normalised number under the installation's subject
key (``<ledger dir>/subject.key``). The hash chain covers the sealed text, so destroying the key
(erasure, withdrawal with deletion, the end of the evidence period) leaves the ledger byte for
byte as it was, ``verify`` holding, and the number and name unreadable for good: the ledger
holds no digest a number could later be tested against, only the key store does, and its row
goes with the key.

Pure functions: the key store and the subject key are the callers' business.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_SIZE: Final = 32
NONCE_SIZE: Final = 12
#: What a reading tool shows for a value whose key was destroyed.
ERASED: Final = "erased"
#: Old ledgers (before sealing) hold these in clear; new entries never do.
CLEAR_FIELDS: Final = ("caller_number", "caller_name")
_AD_PREFIX: Final = b"callconsent caller|"
_DIGEST_PREFIX: Final = b"callconsent subject|"


def normalise(number: str | None) -> str | None:
    """The number as every lookup compares it: digits only, a leading ``+`` kept (``00`` at
    the start becomes ``+``), None when fewer than two digits remain (withheld, ``anonymous``).
    The same for the number a call signalled (raw, with spaces or dashes), the number the
    withdrawal route passes (``FILTER(0-9+)``) and the one an operator types."""
    if number is None:
        return None
    digits = "".join(ch for ch in number if "0" <= ch <= "9")
    if len(digits) < 2:
        return None
    if number.lstrip().startswith("+"):
        return "+" + digits
    if digits.startswith("00"):
        return "+" + digits[2:]
    return digits


def lookup_digest(secret: bytes, number: str | None) -> str | None:
    """The keyed lookup digest of ``number`` (normalised), hex; None for no usable number."""
    normal = normalise(number)
    if normal is None:
        return None
    return hmac.new(secret, _DIGEST_PREFIX + normal.encode("ascii"), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class KeyRow:
    """One call's caller key, as the key store keeps it."""

    kid: str
    uniqueid: str
    lookup: str | None  # the lookup digest; None: no number (a name only)
    key: bytes


@dataclass(frozen=True, slots=True)
class Caller:
    """A caller's number and name as read from the evidence; ``erased``: the key is gone."""

    number: str | None
    name: str | None
    erased: bool = False

    def shown(self) -> tuple[str | None, str | None]:
        """For listings: the values, or ``erased`` for each value that can no longer be read."""
        if self.erased:
            return ERASED, ERASED
        return self.number, self.name


NOBODY: Final = Caller(None, None)


def seal(
    uniqueid: str, number: str | None, name: str | None, secret: bytes
) -> tuple[dict[str, str] | None, KeyRow | None]:
    """``(call.caller for the ledger, the key row to store first)``; ``(None, None)`` when the
    call carried neither a number nor a name."""
    if not number and not name:
        return None, None
    kid = os.urandom(16).hex()
    key = os.urandom(KEY_SIZE)
    nonce = os.urandom(NONCE_SIZE)
    plain = json.dumps({"number": number, "name": name}, ensure_ascii=True).encode("ascii")
    sealed = nonce + AESGCM(key).encrypt(nonce, plain, _AD_PREFIX + kid.encode("ascii"))
    field = {"kid": kid, "sealed": base64.b64encode(sealed).decode("ascii")}
    return field, KeyRow(kid, uniqueid, lookup_digest(secret, number), key)


def open_caller(call: Mapping[str, Any], key_of: Any) -> Caller:
    """The caller of a ledger entry's ``call`` object. ``key_of(kid)`` gives the key or None
    (destroyed). Old entries with the number in clear are read as they are (``anonymised``
    marks are the caller's business); a sealed value whose key is gone reads as erased."""
    sealed = call.get("caller")
    if not isinstance(sealed, Mapping):
        number, name = call.get("caller_number"), call.get("caller_name")
        return Caller(
            number if isinstance(number, str) else None, name if isinstance(name, str) else None
        )
    kid, text = sealed.get("kid"), sealed.get("sealed")
    if not isinstance(kid, str) or not isinstance(text, str):
        return Caller(None, None, erased=True)
    key = key_of(kid)
    if key is None:
        return Caller(None, None, erased=True)
    return unseal(kid, text, key)


def unseal(kid: str, text: str, key: bytes) -> Caller:
    """Open one sealed caller; a value that does not open (altered, wrong key) reads as erased."""
    try:
        raw = base64.b64decode(text, validate=True)
        plain = AESGCM(key).decrypt(
            raw[:NONCE_SIZE], raw[NONCE_SIZE:], _AD_PREFIX + kid.encode("ascii")
        )
        doc = json.loads(plain)
    except (binascii.Error, ValueError, InvalidTag):
        return Caller(None, None, erased=True)
    number, name = doc.get("number"), doc.get("name")
    return Caller(
        number if isinstance(number, str) else None, name if isinstance(name, str) else None
    )


def kid_of(call: Mapping[str, Any]) -> str | None:
    """The key id a ``call`` object's caller is sealed under, if any."""
    sealed = call.get("caller")
    kid = sealed.get("kid") if isinstance(sealed, Mapping) else None
    return kid if isinstance(kid, str) else None


def ledger_call(call: Mapping[str, Any], caller: Mapping[str, str] | None) -> dict[str, Any]:
    """A call object for the ledger: the clear number and name replaced by the sealed caller."""
    out = {k: v for k, v in call.items() if k not in CLEAR_FIELDS}
    out["caller"] = dict(caller) if caller is not None else None
    return out


__all__ = [
    "ERASED",
    "NOBODY",
    "Caller",
    "KeyRow",
    "kid_of",
    "ledger_call",
    "lookup_digest",
    "normalise",
    "open_caller",
    "seal",
    "unseal",
]
