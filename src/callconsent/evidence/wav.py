"""WAV header inspection and repair for the files MixMonitor writes.

What Asterisk's ``format_wav`` does, and what this module therefore expects:

* On open it writes a 44-byte header (``RIFF`` size, ``WAVE``, ``fmt `` PCM 16-bit mono, ``data``
  size) with **both size fields 0**; audio follows; the sizes are written only when the file is
  closed (hangup, ``StopMixMonitor``). A file whose sizes are still 0 is either being written or
  was left behind by a crash (:attr:`WavInfo.finalised` is False).
* With MixMonitor option ``b`` and no bridge, nothing but the header is ever written: a closed file
  of 44 bytes with a data size of 0 (:attr:`WavInfo.header_only`). It holds no audio.

Parsing accepts any rate, PCM 8/16-bit and 8-bit G.711 (A-law/µ-law), ``fmt `` before ``data``,
and skips other chunks (``LIST``, ``fact``, ...). Only the header is read, never the audio.
"""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

_PCM: Final = 1
_ALAW: Final = 6
_MULAW: Final = 7
_SUPPORTED_BITS: Final = {_PCM: (8, 16), _ALAW: (8,), _MULAW: (8,)}
_MAX_CHUNKS: Final = 64  # before ``data``; a real header has 2 or 3


class WavError(ValueError):
    """Not a WAV file we can read (truncated header, not RIFF/WAVE, unsupported format)."""


class RecordingNotClosed(Exception):
    """The WAV header is not finalised: MixMonitor still writes the file, or a crash left it."""

    def __init__(self, path: Path, info: WavInfo, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path
        self.info = info


@dataclass(frozen=True, slots=True)
class WavInfo:
    bytes: int  # file length
    data_bytes: int  # audio bytes: the declared size when finalised, else what is on disk
    duration_seconds: float  # data_bytes as time, rounded to milliseconds
    finalised: bool  # the header's sizes agree with the file (closed normally or repaired)
    header_only: bool  # no audio data at all
    data_offset: int = 44
    sample_rate: int = 8000
    channels: int = 1
    bits_per_sample: int = 16
    riff_size: int = 0  # as declared in the header
    declared_data_bytes: int = 0  # as declared in the header


def inspect(path: Path) -> WavInfo:
    """Read the header of ``path``. Raises :class:`WavError` (or ``OSError``)."""
    with path.open("rb") as f:
        return _parse(f, os.fstat(f.fileno()).st_size)


def is_closed(path: Path) -> bool:
    """True when the file exists and its header is finalised (a sync check the app can poll)."""
    try:
        return inspect(path).finalised
    except (OSError, WavError):
        return False


async def wait_closed(
    path: Path,
    *,
    interval: float = 0.05,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> WavInfo:
    """Wait until MixMonitor has closed ``path`` (header finalised); return its :class:`WavInfo`.

    MixMonitor closes the file shortly after the channel hangs up; call this after the hangup,
    bounded by the caller: ``async with asyncio.timeout(10): info = await wait_closed(p)``. A
    file that is missing or still open when the time is up stays as it is for ``reconcile``.
    """
    while True:
        try:
            info = inspect(path)
            if info.finalised:
                return info
        except (OSError, WavError):  # not created yet, or header not complete yet
            pass
        await sleep(interval)


def repair_header(path: Path) -> bool:
    """Set the RIFF and data sizes from the file length when they are 0 or wrong.

    The audio is not touched: the data chunk is taken to run to the end of the file (where
    MixMonitor puts it). Returns True when the header was rewritten, False when it was already
    finalised. Only call this on a file no process is writing any more.
    """
    with path.open("r+b") as f:
        size = os.fstat(f.fileno()).st_size
        info = _parse(f, size)
        if info.finalised:
            return False
        data_bytes = size - info.data_offset
        f.seek(4)
        f.write(struct.pack("<I", size - 8))
        f.seek(info.data_offset - 4)
        f.write(struct.pack("<I", data_bytes))
        f.flush()
        os.fsync(f.fileno())
    return True


def pcm_header(
    data_bytes: int | None, *, sample_rate: int = 8000, channels: int = 1, bits: int = 16
) -> bytes:
    """The 44-byte PCM header Asterisk writes; ``data_bytes=None`` gives the sizes-0 header of a
    file still being written. For tests, fixtures and generated benchmark data."""
    block_align = channels * bits // 8
    riff_size = 0 if data_bytes is None else 36 + data_bytes
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        riff_size,
        b"WAVE",
        b"fmt ",
        16,
        _PCM,
        channels,
        sample_rate,
        sample_rate * block_align,
        block_align,
        bits,
        b"data",
        data_bytes or 0,
    )


def _read_exact(f: BinaryIO, n: int, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise WavError(f"truncated header: {what}")
    return data


def _parse(f: BinaryIO, size: int) -> WavInfo:
    riff, riff_size, wave = struct.unpack("<4sI4s", _read_exact(f, 12, "RIFF header"))
    if riff != b"RIFF" or wave != b"WAVE":
        raise WavError("not a RIFF/WAVE file")
    fmt: tuple[int, int, int, int, int] | None = None
    pos = 12
    for _ in range(_MAX_CHUNKS):
        f.seek(pos)
        chunk_id, chunk_size = struct.unpack("<4sI", _read_exact(f, 8, "chunk header"))
        if chunk_id == b"fmt ":
            if chunk_size < 16:
                raise WavError("fmt chunk too short")
            audio_format, channels, rate, _byte_rate, block_align, bits = struct.unpack(
                "<HHIIHH", _read_exact(f, 16, "fmt chunk")
            )
            fmt = (audio_format, channels, rate, block_align, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise WavError("data chunk before fmt chunk")
            return _info(f, size, riff_size, pos + 8, chunk_size, fmt)
        pos += 8 + chunk_size + (chunk_size & 1)
    raise WavError("no data chunk")


def _info(
    f: BinaryIO,
    size: int,
    riff_size: int,
    data_offset: int,
    declared: int,
    fmt: tuple[int, int, int, int, int],
) -> WavInfo:
    audio_format, channels, rate, block_align, bits = fmt
    if bits not in _SUPPORTED_BITS.get(audio_format, ()):
        raise WavError(f"unsupported format {audio_format} with {bits} bits per sample")
    if channels < 1 or rate < 1 or block_align != channels * bits // 8:
        raise WavError(f"inconsistent fmt chunk: {channels} ch, {rate} Hz, align {block_align}")
    on_disk = size - data_offset
    finalised = riff_size == size - 8 and _rest_is_chunks(f, data_offset + declared, size, declared)
    data_bytes = declared if finalised else on_disk
    duration = round((data_bytes // block_align) / rate, 3)
    return WavInfo(
        bytes=size,
        data_bytes=data_bytes,
        duration_seconds=duration,
        finalised=finalised,
        header_only=data_bytes == 0,
        data_offset=data_offset,
        sample_rate=rate,
        channels=channels,
        bits_per_sample=bits,
        riff_size=riff_size,
        declared_data_bytes=declared,
    )


def _rest_is_chunks(f: BinaryIO, data_end: int, size: int, declared: int) -> bool:
    """True when the declared data ends at the end of the file, or is followed (after its pad
    byte) only by whole chunks."""
    if data_end == size:
        return True
    pos = data_end + (declared & 1)
    for _ in range(_MAX_CHUNKS):
        if pos == size:
            return True
        if pos + 8 > size:
            return False
        f.seek(pos)
        (chunk_size,) = struct.unpack("<I", _read_exact(f, 8, "chunk header")[4:])
        pos += 8 + chunk_size + (chunk_size & 1)
        if pos > size + 1:  # a last odd chunk may omit its pad byte
            return False
        if pos == size + 1:
            return True
    return False
