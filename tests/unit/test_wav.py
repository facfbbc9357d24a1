"""WAV headers as MixMonitor leaves them: closed, header-only, or unfinalised after a crash."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import pytest

from callconsent.evidence import wav
from callconsent.evidence.wav import WavError, inspect, is_closed, pcm_header, repair_header

SECOND = 16000  # bytes of 8 kHz 16-bit mono audio per second


def write(path: Path, header: bytes, audio: bytes = b"") -> Path:
    path.write_bytes(header + audio)
    return path


def test_closed_wav_reports_size_and_duration(tmp_path: Path) -> None:
    f = write(tmp_path / "a.wav", pcm_header(3 * SECOND), b"\x01\x00" * (3 * SECOND // 2))
    info = inspect(f)
    assert (info.bytes, info.data_bytes, info.duration_seconds) == (
        44 + 3 * SECOND,
        3 * SECOND,
        3.0,
    )
    assert info.finalised and not info.header_only
    assert is_closed(f)


def test_header_only_wav_is_reported_as_no_audio(tmp_path: Path) -> None:
    """MixMonitor option b with no bridge: a closed 44-byte file."""
    info = inspect(write(tmp_path / "a.wav", pcm_header(0)))
    assert info.bytes == 44 and info.header_only and info.finalised and info.duration_seconds == 0


def test_wav_still_being_written_is_not_finalised(tmp_path: Path) -> None:
    f = write(tmp_path / "a.wav", pcm_header(None), b"\x00" * SECOND)
    info = inspect(f)
    assert not info.finalised and not is_closed(f)
    assert info.data_bytes == SECOND and info.duration_seconds == 1.0  # what is on disk


def test_unfinalised_header_is_repaired_from_length(tmp_path: Path) -> None:
    audio = bytes(range(256)) * 125
    f = write(tmp_path / "a.wav", pcm_header(None), audio)
    assert repair_header(f) is True
    info = inspect(f)
    assert info.finalised and info.data_bytes == len(audio) and info.riff_size == len(audio) + 36
    assert f.read_bytes()[44:] == audio  # audio untouched
    assert repair_header(f) is False  # idempotent


def test_crash_header_only_file_is_repaired_to_a_header_only_wav(tmp_path: Path) -> None:
    f = write(tmp_path / "a.wav", pcm_header(None))
    assert not inspect(f).finalised
    assert repair_header(f)
    info = inspect(f)
    assert info.finalised and info.header_only and info.riff_size == 36


def test_truncated_file_with_declared_size_too_large_is_repaired(tmp_path: Path) -> None:
    f = write(tmp_path / "a.wav", pcm_header(10 * SECOND), b"\x00" * 1001)  # odd, partial sample
    assert not inspect(f).finalised
    assert repair_header(f)
    info = inspect(f)
    assert info.finalised and info.data_bytes == 1001 and info.duration_seconds == 0.062


def test_extra_chunks_before_and_after_data_are_tolerated(tmp_path: Path) -> None:
    fmt = struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, 2, 16000, 64000, 4, 16)
    junk = b"LIST" + struct.pack("<I", 5) + b"abcde" + b"\x00"  # odd size + pad byte
    data = b"data" + struct.pack("<I", 64000) + b"\x00" * 64000
    tail = b"id3 " + struct.pack("<I", 4) + b"tags"
    body = b"WAVE" + fmt + junk + data + tail
    f = write(tmp_path / "a.wav", b"RIFF" + struct.pack("<I", len(body)) + body)
    info = inspect(f)
    assert info.finalised and info.data_bytes == 64000 and info.duration_seconds == 1.0
    assert (info.sample_rate, info.channels, info.bits_per_sample) == (16000, 2, 16)
    assert info.data_offset == 12 + 24 + 14 + 8


def test_eight_bit_and_other_rates_are_read(tmp_path: Path) -> None:
    f = write(tmp_path / "a.wav", pcm_header(11025, sample_rate=11025, bits=8), b"\x80" * 11025)
    assert inspect(f).duration_seconds == 1.0


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"RIFF",
        b"RIFX\x00\x00\x00\x00WAVE",
        b"RIFF\x00\x00\x00\x00WAVEdata\x00\x00\x00\x00",  # data before fmt
        pcm_header(0)[:40],  # header cut inside the data chunk header
        pcm_header(0, bits=24),
        b"\x00" * 44,
    ],
)
def test_unreadable_headers_raise_wav_error(tmp_path: Path, content: bytes) -> None:
    f = write(tmp_path / "a.wav", content)
    with pytest.raises(WavError):
        inspect(f)
    assert not is_closed(f)


async def test_wait_closed_returns_once_mixmonitor_closes_the_file(tmp_path: Path) -> None:
    f = tmp_path / "a.wav"  # not created yet: MixMonitor has not started
    polls = 0

    async def fake_sleep(_: float) -> None:
        nonlocal polls
        polls += 1
        if polls == 2:
            write(f, pcm_header(None), b"\x00" * 320)
        if polls == 4:
            write(f, pcm_header(320), b"\x00" * 320)

    info = await wav.wait_closed(f, sleep=fake_sleep)
    assert polls == 4 and info.finalised and info.data_bytes == 320


async def test_wait_closed_is_bounded_by_the_caller(tmp_path: Path) -> None:
    f = write(tmp_path / "a.wav", pcm_header(None))
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await wav.wait_closed(f, interval=0.01)
    assert not inspect(f).finalised  # left as it is for reconcile
