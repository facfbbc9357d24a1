"""Recordings encrypted at rest (R33): each file under its own data key, in authenticated chunks.

File format ``aes256gcm-chunked-v1`` (what the sidecar's ``recording.encryption.scheme`` names)::

    header  16 bytes: b"CCAE" | version 0x01 | chunk size (uint32 BE) | nonce prefix (7 bytes)
    chunks  AES-256-GCM of each ``chunk size`` bytes of the WAV (the last one may be shorter or
            empty), each ciphertext + 16-byte tag; nonce = prefix | chunk index (uint32 BE) |
            last flag (0x00, or 0x01 on the last chunk); associated data = the header

so a chunk cannot be altered, moved, dropped, or the file cut after a chunk, without decryption
failing (the STREAM construction). Encryption and decryption stream: memory stays at one chunk
(64 KiB) whatever the recording's length.

Data keys are 32 random bytes, one per recording, never written in clear: :func:`wrap_key`
seals one with the admin's key-encryption key (AES-256-GCM, random nonce, bound to the key id
and the recording's uniqueid), :func:`unwrap_key` opens it. Destroying the wrapped key makes the
recording unreadable for good, backups included (crypto-shredding): see
:mod:`callconsent.evidence.keystore`.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import BinaryIO, Final, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SCHEME: Final = "aes256gcm-chunked-v1"
MAGIC: Final = b"CCAE"
VERSION: Final = 1
CHUNK: Final = 64 * 1024
TAG: Final = 16
HEADER_SIZE: Final = 16
KEY_SIZE: Final = 32
_HEADER: Final = struct.Struct(">4sBI7s")


class Sink(Protocol):
    def write(self, data: bytes, /) -> object: ...


class DecryptionError(ValueError):
    """Not an encrypted recording, the wrong key, or a file altered or cut short."""


def new_data_key() -> bytes:
    return os.urandom(KEY_SIZE)


def is_encrypted(head: bytes) -> bool:
    """Whether a file starting with ``head`` (>= 5 bytes) is in this format."""
    return head[:4] == MAGIC and head[4:5] == bytes([VERSION])


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    if index > 0xFFFFFFFF:
        raise ValueError("recording too long for one nonce prefix")
    return prefix + struct.pack(">IB", index, 1 if last else 0)


def encrypt_stream(src: BinaryIO, dst: Sink, key: bytes, *, chunk: int = CHUNK) -> int:
    """Encrypt all of ``src`` into ``dst``; return the bytes written."""
    aead = AESGCM(key)
    header = _HEADER.pack(MAGIC, VERSION, chunk, os.urandom(7))
    dst.write(header)
    written = len(header)
    prefix = header[9:]
    index = 0
    block = src.read(chunk)
    while True:
        following = src.read(chunk) if len(block) == chunk else b""
        last = not following
        sealed = aead.encrypt(_nonce(prefix, index, last), block, header)
        dst.write(sealed)
        written += len(sealed)
        if last:
            return written
        block, index = following, index + 1


def decrypt_chunks(src: BinaryIO, key: bytes) -> Iterator[bytes]:
    """The plaintext of an encrypted file, a chunk at a time (raises DecryptionError)."""
    header = src.read(HEADER_SIZE)
    if len(header) != HEADER_SIZE or not is_encrypted(header):
        raise DecryptionError("not an encrypted recording (no CCAE header)")
    _, _, chunk, prefix = _HEADER.unpack(header)
    if not 0 < chunk <= 16 * 1024 * 1024:
        raise DecryptionError(f"bad chunk size {chunk}")
    aead = AESGCM(key)
    index = 0
    sealed = src.read(chunk + TAG)
    while True:
        following = src.read(chunk + TAG) if len(sealed) == chunk + TAG else b""
        last = not following
        try:
            yield aead.decrypt(_nonce(prefix, index, last), sealed, header)
        except InvalidTag:
            raise DecryptionError(
                f"chunk {index}: authentication failed (wrong key, or the file was altered "
                "or cut short)"
            ) from None
        if last:
            return
        sealed, index = following, index + 1


def decrypt_stream(src: BinaryIO, dst: Sink, key: bytes) -> int:
    """Decrypt all of ``src`` into ``dst``; return the plaintext bytes written."""
    total = 0
    for block in decrypt_chunks(src, key):
        dst.write(block)
        total += len(block)
    return total


def wrap_key(kek: bytes, data_key: bytes, *, kek_id: str, uniqueid: str) -> bytes:
    """``data_key`` sealed under the key-encryption key: nonce (12) | ciphertext + tag."""
    nonce = os.urandom(12)
    return nonce + AESGCM(kek).encrypt(nonce, data_key, _wrap_ad(kek_id, uniqueid))


def unwrap_key(kek: bytes, wrapped: bytes, *, kek_id: str, uniqueid: str) -> bytes:
    try:
        key = AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], _wrap_ad(kek_id, uniqueid))
    except InvalidTag:
        raise DecryptionError(
            f"the data key of {uniqueid} does not open with key-encryption key {kek_id!r}"
        ) from None
    if len(key) != KEY_SIZE:
        raise DecryptionError(f"the data key of {uniqueid} has a bad length")
    return key


def _wrap_ad(kek_id: str, uniqueid: str) -> bytes:
    return f"callconsent data key|{kek_id}|{uniqueid}".encode()
