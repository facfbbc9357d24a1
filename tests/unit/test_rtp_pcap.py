"""The caller's RTP pcap: one SSRC, continuous sequence and clock, well-formed RFC 4733 events."""

from __future__ import annotations

import itertools
import struct
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `tests.harness` without a conftest
from tests.harness.rtp_pcap import (
    ALAW_SILENCE,
    DTMF_EVENTS,
    PT_PCMA,
    PT_TELEPHONE_EVENT,
    Digit,
    Pause,
    Silence,
    TelephoneEvent,
    TimelineInfo,
    build_rtp,
    read_pcap,
    read_rtp,
    timeline_duration,
    write_pcap,
)


def _write(tmp_path: Path, timeline: list[Pause | Digit]) -> tuple[Path, TimelineInfo]:
    path = tmp_path / "call.pcap"
    return path, write_pcap(path, timeline)


def test_one_ssrc_continuous_sequence_and_clock(tmp_path: Path) -> None:
    timeline: list[Pause | Digit] = [
        Pause(1.0),
        Digit("1"),
        Pause(0.5),
        Digit("#", seconds=0.1),
        Silence(0.3),
        Pause(0.2),
    ]
    path, info = _write(tmp_path, timeline)
    packets = read_rtp(path)

    assert len({p.ssrc for p in packets}) == 1
    assert packets[0].ssrc == info.ssrc
    seqs = [p.seq for p in packets]
    assert all((b - a) % 65536 == 1 for a, b in itertools.pairwise(seqs))
    times = [p.time for p in packets]
    assert times == sorted(times)
    # Audio packets: 20 ms apart in time, 160 samples apart on the RTP clock; both start at 0.
    ts0 = packets[0].timestamp
    for p in packets:
        slot = round(p.time / 0.02)
        assert abs(p.time - slot * 0.02) < 1e-6
        if p.payload_type == PT_PCMA:
            assert p.timestamp == (ts0 + slot * 160) & 0xFFFFFFFF
            assert len(p.payload) == 160
    assert info.duration == pytest.approx(timeline_duration(timeline))
    assert info.duration == pytest.approx(1.0 + 0.16 + 0.5 + 0.1 + 0.3 + 0.2)


def test_telephone_event_packets(tmp_path: Path) -> None:
    path, info = _write(tmp_path, [Pause(1.0), Digit("5", seconds=0.16), Pause(0.4)])
    packets = read_rtp(path)
    events = [p for p in packets if p.payload_type == PT_TELEPHONE_EVENT]
    parsed = [TelephoneEvent.parse(p.payload) for p in events]

    # 8 packets of 20 ms, the last (E bit) sent three times.
    assert len(events) == 8 + 2
    assert {e.event for e in parsed} == {DTMF_EVENTS["5"]}
    assert [p.marker for p in events] == [True] + [False] * 9
    assert len({p.timestamp for p in events}) == 1  # one timestamp for the whole event
    assert events[0].time == pytest.approx(1.0)
    assert events[0].timestamp == (packets[0].timestamp + 50 * 160) & 0xFFFFFFFF
    assert [e.duration for e in parsed] == [160 * i for i in range(1, 9)] + [1280, 1280]
    assert [e.end for e in parsed] == [False] * 7 + [True] * 3
    assert all(e.volume == 10 for e in parsed)
    # Audio stops during the event and resumes on the same clock, marker bit on the new talkspurt.
    after = [p for p in packets if p.payload_type == PT_PCMA and p.time > 1.0]
    assert after[0].time == pytest.approx(1.16)
    assert after[0].marker
    assert after[0].timestamp == (packets[0].timestamp + 58 * 160) & 0xFFFFFFFF
    assert not any(p.time >= 1.0 and p.time < 1.16 for p in packets if p.payload_type == PT_PCMA)
    assert info.digits[0].offset == pytest.approx(1.0)


@pytest.mark.parametrize("digit", list("0123456789*#"))
def test_every_digit_has_its_event_code(tmp_path: Path, digit: str) -> None:
    path, _info = _write(tmp_path, [Pause(0.1), Digit(digit)])
    codes = {
        TelephoneEvent.parse(p.payload).event
        for p in read_rtp(path)
        if p.payload_type == PT_TELEPHONE_EVENT
    }
    assert codes == {"0123456789*#".index(digit)}


def test_silence_and_tone_payloads(tmp_path: Path) -> None:
    path, _info = _write(tmp_path, [Silence(0.1), Pause(0.1)])
    packets = read_rtp(path)
    assert packets[0].payload == bytes([ALAW_SILENCE]) * 160
    assert packets[-1].payload != packets[0].payload
    assert len(set(packets[-1].payload)) > 10  # a real waveform


def test_frames_are_valid_ipv4_udp(tmp_path: Path) -> None:
    path, _info = _write(tmp_path, [Pause(0.2), Digit("1")])
    for _t, frame in read_pcap(path):
        assert frame[12:14] == b"\x08\x00"
        ip = frame[14:34]
        assert ip[0] == 0x45 and ip[9] == 17
        total_len = struct.unpack("!H", ip[2:4])[0]
        assert total_len == len(frame) - 14
        # The IPv4 header checksum verifies to zero.
        words = struct.unpack("!10H", ip)
        s = sum(words)
        while s >> 16:
            s = (s & 0xFFFF) + (s >> 16)
        assert s == 0xFFFF
        udp_len = struct.unpack("!H", frame[38:40])[0]
        assert udp_len == len(frame) - 34


def test_pause_boundaries_do_not_drift(tmp_path: Path) -> None:
    # 100 pauses of 0.03 s: each rounds to 20 or 40 ms, but the total stays exact.
    _path, info = _write(tmp_path, [Pause(0.03)] * 100 + [Digit("2")])
    assert info.digits[0].offset == pytest.approx(3.0)


def test_invalid_steps() -> None:
    with pytest.raises(ValueError, match="DTMF"):
        Digit("x")
    with pytest.raises(ValueError):
        Pause(-1)
    with pytest.raises(ValueError):
        Digit("1", seconds=0.02)  # 0 (a zero-length event) or 0.04-5 s


def test_a_zero_length_digit_is_only_its_end_packets_with_duration_0() -> None:
    packets, info = build_rtp([Pause(0.1), Digit("1", seconds=0), Pause(0.1)])
    events = [TelephoneEvent.parse(p.payload) for p in packets if p.payload_type == 101]
    assert events and all(e.end and e.duration == 0 and e.event == 1 for e in events)
    assert info.digits[0].seconds == 0.0
