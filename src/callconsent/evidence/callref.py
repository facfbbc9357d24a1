"""The short call reference a caller can be given for a later withdrawal (R17b).

A caller with a withheld number cannot be found by number later, so the call gets a short
numeric reference, read to the caller with ``SayDigits`` and typed back later on the withdrawal
route or quoted in a letter. It is derived from the call's uniqueid alone, so the app, the
dialplan side and ``index rebuild`` all arrive at the same reference without storing anything:

    ref = 8 digits of sha256(uniqueid)   (HMAC-SHA256 with a key, if one is set up)
          + 1 Luhn check digit           (catches every single mistyped digit and most swaps)

Nine digits, e.g. ``482913067``; :func:`display` groups it as ``4829 1306 7`` for letters.

Key. Uniqueids are ``<epoch>.<counter>`` and fairly guessable; with a plain hash, someone who
knows roughly when a call was made could compute its reference. With a secret key
(``<ledger dir>/callref.key``, 32 random bytes, mode 0640, made once before the app gives out
references: ``head -c 32 /dev/urandom > callref.key``) they cannot. Keep the key with the
backups: references already given out only resolve with the same key. The index records which
key it used and recomputes every reference when the key changes.

Collisions. 10^8 values for the calls still in the index: with 1 M calls, about 5,000 pairs of
calls share a reference. The index maps a reference to *every* call id with it; a reference that
matches more than one call is reported with those calls (date, time) and never guessed: the
operator confirms with the requester which call it was and acts by call id.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Final

HASH_DIGITS: Final = 8
REF_LENGTH: Final = HASH_DIGITS + 1
KEY_NAME: Final = "callref.key"


class CallRefError(ValueError):
    """Text that is not a well-formed call reference (wrong length, not digits, bad check)."""


def _luhn_check_digit(digits: str) -> str:
    """The Luhn digit that makes ``digits + it`` pass the Luhn check."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:  # doubled: every second digit from the right of the payload
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def call_ref(uniqueid: str, key: bytes | None = None) -> str:
    """The reference of the call with Asterisk uniqueid ``uniqueid`` (pure, deterministic)."""
    data = uniqueid.encode("utf-8")
    digest = hmac.new(key, data, hashlib.sha256).digest() if key else hashlib.sha256(data).digest()
    payload = f"{int.from_bytes(digest[:8], 'big') % 10**HASH_DIGITS:0{HASH_DIGITS}d}"
    return payload + _luhn_check_digit(payload)


def normalise(text: str) -> str:
    """A reference as typed or written (spaces, dashes, dots allowed), checked: the 9 digits.
    Raises :class:`CallRefError` naming what is wrong, so a typo never matches another call."""
    digits = "".join(ch for ch in text if ch not in " -.")
    if not digits.isascii() or not digits.isdigit() or len(digits) != REF_LENGTH:
        raise CallRefError(f"a call reference is {REF_LENGTH} digits, got {text!r}")
    if _luhn_check_digit(digits[:-1]) != digits[-1]:
        raise CallRefError(f"call reference {text!r} fails its check digit (mistyped?)")
    return digits


def display(ref: str) -> str:
    """``482913067`` as ``4829 1306 7`` (for letters and screens; SayDigits takes the plain form)."""
    return f"{ref[:4]} {ref[4:8]} {ref[8:]}"


def key_path(ledger_path: Path) -> Path:
    return ledger_path.parent / KEY_NAME


def load_key(ledger_path: Path) -> bytes | None:
    """The reference key beside the ledger, or None (plain sha256) if there is none."""
    try:
        key = key_path(ledger_path).read_bytes()
    except FileNotFoundError:
        return None
    return key or None


def key_id(key: bytes | None) -> str:
    """Which key a set of references was made with (a fingerprint, not the key)."""
    return "plain" if key is None else hashlib.sha256(b"callref-key:" + key).hexdigest()[:16]
