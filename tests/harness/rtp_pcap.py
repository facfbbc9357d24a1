"""RTP for a whole call, as a pcap file sipp replays with ``play_pcap_audio``.

One pcap covers the caller's whole timeline (audio, keypresses, silence) with ONE RTP SSRC and
continuous sequence numbers and timestamps: a caller whose SSRC changes mid-call makes
MixMonitor lose the caller's voice. Audio is PCMA (payload type 8) in 20 ms packets; keypresses
are RFC 4733 telephone-events (payload type 101): a first packet with the marker bit, updates
every 20 ms with the same RTP timestamp and a growing duration, and the end packet (E bit) sent
three times. Standard library only.

    timeline = [Pause(6.0), Digit("1"), Pause(10.0)]
    info = write_pcap(path, timeline)        # info.duration, info.digits[0].offset
"""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

#: ``inband1``: the DTMF tones of digit 1 (697 + 1209 Hz) as audio, for in-band DTMF.
Audio = Literal["tone", "speech", "silence", "inband1"]

SAMPLE_RATE = 8000
PACKET_SECONDS = 0.02
SAMPLES_PER_PACKET = 160  # 20 ms at 8 kHz
PT_PCMA = 8
PT_TELEPHONE_EVENT = 101
#: RFC 4733 event codes.
DTMF_EVENTS = {
    **{str(d): d for d in range(10)},
    "*": 10,
    "#": 11,
    "A": 12,
    "B": 13,
    "C": 14,
    "D": 15,
}
ALAW_SILENCE = 0xD5
SPEECH_PCAP = Path("/usr/share/sip-tester/g711a.pcap")
TONE_HZ = 400  # 20 samples a period: every 20 ms packet holds whole periods
DTMF_VOLUME = 10  # -10 dBm0
END_PACKET_COPIES = 3

_PCAP_MAGIC = 0xA1B2C3D4
_LINKTYPE_ETHERNET = 1
_EPOCH = 1_700_000_000  # pcap timestamps: only differences matter to sipp


@dataclass(frozen=True)
class Pause:
    """The caller stays on the line for ``seconds``, sending audio (``None``: the call's default)."""

    seconds: float
    audio: Audio | None = None

    def __post_init__(self) -> None:
        if not (self.seconds >= 0 and math.isfinite(self.seconds)):
            raise ValueError(f"pause must be >= 0 seconds, got {self.seconds!r}")


@dataclass(frozen=True)
class Digit:
    """A keypress sent as an RFC 4733 telephone-event lasting ``seconds`` (rounded to 20 ms).
    ``seconds=0``: a zero-length event, only its end packets with duration 0 (hostile input)."""

    digit: str
    seconds: float = 0.16

    def __post_init__(self) -> None:
        if self.digit not in DTMF_EVENTS:
            raise ValueError(f"not a DTMF digit: {self.digit!r} (use one of 0-9 * # A-D)")
        if not (self.seconds == 0 or 0.04 <= self.seconds <= 5.0):
            raise ValueError(f"digit duration must be 0 or 0.04-5 s, got {self.seconds!r}")


def Silence(seconds: float) -> Pause:
    """A pause with A-law silence instead of the call's audio."""
    return Pause(seconds, audio="silence")


Step = Pause | Digit


@dataclass(frozen=True)
class DigitInfo:
    digit: str
    offset: float  # seconds from the first packet to the event's first packet
    seconds: float  # event duration


@dataclass(frozen=True)
class TimelineInfo:
    duration: float  # seconds covered by the pcap (the caller's timeline)
    packets: int
    ssrc: int
    digits: tuple[DigitInfo, ...]


@dataclass(frozen=True)
class RtpPacket:
    time: float  # seconds from the start of the stream
    payload_type: int
    marker: bool
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes

    def to_bytes(self) -> bytes:
        b0 = 0x80  # version 2, no padding, no extension, no CSRC
        b1 = (0x80 if self.marker else 0) | self.payload_type
        header = struct.pack(
            "!BBHII", b0, b1, self.seq & 0xFFFF, self.timestamp & 0xFFFFFFFF, self.ssrc
        )
        return header + self.payload


@dataclass(frozen=True)
class TelephoneEvent:
    event: int
    end: bool
    volume: int
    duration: int  # in timestamp units (1/8000 s)

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        event, flags, duration = struct.unpack("!BBH", payload[:4])
        return cls(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)

    def to_bytes(self) -> bytes:
        flags = (0x80 if self.end else 0) | (self.volume & 0x3F)
        return struct.pack("!BBH", self.event, flags, self.duration)


def _linear_to_alaw(sample: int) -> int:
    """ITU-T G.711 A-law encoding of one 16-bit sample."""
    seg_end = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)
    pcm = sample >> 3
    if pcm >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        pcm = -pcm - 1
    seg = next((i for i, end in enumerate(seg_end) if pcm <= end), 8)
    if seg >= 8:
        return 0x7F ^ mask
    aval = seg << 4
    aval |= (pcm >> 1) & 0x0F if seg < 2 else (pcm >> seg) & 0x0F
    return aval ^ mask


def tone_payload(hz: int = TONE_HZ, amplitude: int = 8000) -> bytes:
    """One 20 ms PCMA packet of a sine tone whose period divides 160 samples (no phase jumps)."""
    if (SAMPLES_PER_PACKET * hz) % SAMPLE_RATE:
        raise ValueError(f"{hz} Hz does not fit whole periods in 20 ms")
    return bytes(
        _linear_to_alaw(round(amplitude * math.sin(2 * math.pi * hz * n / SAMPLE_RATE)))
        for n in range(SAMPLES_PER_PACKET)
    )


def read_pcap(path: Path) -> list[tuple[float, bytes]]:
    """(seconds since the first packet, link-layer frame) for each packet of a classic pcap."""
    data = path.read_bytes()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic == _PCAP_MAGIC else ">"
    if struct.unpack(endian + "I", data[:4])[0] != _PCAP_MAGIC:
        raise ValueError(f"{path}: not a microsecond pcap file")
    out: list[tuple[float, bytes]] = []
    off = 24
    first: float | None = None
    while off + 16 <= len(data):
        sec, usec, incl, _orig = struct.unpack(endian + "IIII", data[off : off + 16])
        off += 16
        frame = data[off : off + incl]
        off += incl
        t = sec + usec / 1e6
        first = t if first is None else first
        out.append((t - first, frame))
    return out


def frame_to_rtp(time: float, frame: bytes) -> RtpPacket:
    """Parse an Ethernet/IPv4/UDP/RTP frame (no RTP CSRCs or extensions)."""
    if frame[12:14] != b"\x08\x00":
        raise ValueError("not an IPv4 Ethernet frame")
    ihl = (frame[14] & 0x0F) * 4
    udp_start = 14 + ihl
    rtp = frame[udp_start + 8 :]
    b0, b1, seq, ts, ssrc = struct.unpack("!BBHII", rtp[:12])
    if b0 >> 6 != 2:
        raise ValueError("not RTP version 2")
    return RtpPacket(time, b1 & 0x7F, bool(b1 & 0x80), seq, ts, ssrc, rtp[12:])


def read_rtp(path: Path) -> list[RtpPacket]:
    return [frame_to_rtp(t, frame) for t, frame in read_pcap(path)]


def _speech_payload_source() -> bytes | None:
    """All PCMA payload bytes of sipp's sample speech pcap, or None when it is not installed."""
    if not SPEECH_PCAP.is_file():
        return None
    chunks = [p.payload for p in read_rtp(SPEECH_PCAP) if p.payload_type == PT_PCMA]
    data = b"".join(chunks)
    return data or None


class _AudioSource:
    def __init__(self) -> None:
        self._tone = tone_payload()
        self._silence = bytes([ALAW_SILENCE]) * SAMPLES_PER_PACKET
        self._speech: bytes | None = None
        self._speech_pos = 0
        self._inband_n = 0

    def packet(self, audio: Audio) -> bytes:
        if audio == "tone":
            return self._tone
        if audio == "inband1":  # 697 + 1209 Hz, phase-continuous across packets
            start, self._inband_n = self._inband_n, self._inband_n + SAMPLES_PER_PACKET
            return bytes(
                _linear_to_alaw(
                    round(
                        6000 * math.sin(2 * math.pi * 697 * n / SAMPLE_RATE)
                        + 6000 * math.sin(2 * math.pi * 1209 * n / SAMPLE_RATE)
                    )
                )
                for n in range(start, start + SAMPLES_PER_PACKET)
            )
        if audio == "silence":
            return self._silence
        if self._speech is None:
            self._speech = _speech_payload_source() or self._tone * 50
        if self._speech_pos + SAMPLES_PER_PACKET > len(self._speech):
            self._speech_pos = 0
        chunk = self._speech[self._speech_pos : self._speech_pos + SAMPLES_PER_PACKET]
        self._speech_pos += SAMPLES_PER_PACKET
        return chunk


def _slot(seconds: float) -> int:
    return round(seconds / PACKET_SECONDS)


def timeline_duration(timeline: Iterable[Step]) -> float:
    """Seconds the timeline lasts once rounded to 20 ms packets."""
    t = 0.0
    for step in timeline:
        t += step.seconds
    return _slot(t) * PACKET_SECONDS


def build_rtp(
    timeline: Sequence[Step],
    audio: Audio = "tone",
    ssrc: int | None = None,
    first_seq: int | None = None,
    first_timestamp: int | None = None,
) -> tuple[list[RtpPacket], TimelineInfo]:
    """Every RTP packet of the timeline, in send order, and a summary.

    Step boundaries are rounded to 20 ms on the cumulative clock, so long timelines do not drift.
    """
    rng = random.Random()
    ssrc = rng.getrandbits(32) if ssrc is None else ssrc
    seq = rng.getrandbits(15) if first_seq is None else first_seq
    ts0 = rng.getrandbits(31) if first_timestamp is None else first_timestamp
    source = _AudioSource()
    packets: list[RtpPacket] = []
    digits: list[DigitInfo] = []
    clock = 0.0  # exact seconds at the start of the current step
    first_audio = True

    def add(slot: int, pt: int, marker: bool, ts: int, payload: bytes) -> None:
        nonlocal seq
        packets.append(
            RtpPacket(
                slot * PACKET_SECONDS, pt, marker, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc, payload
            )
        )
        seq += 1

    for step in timeline:
        start, end = _slot(clock), _slot(clock + step.seconds)
        clock += step.seconds
        if isinstance(step, Pause):
            kind = step.audio or audio
            for slot in range(start, end):
                add(
                    slot, PT_PCMA, first_audio, ts0 + slot * SAMPLES_PER_PACKET, source.packet(kind)
                )
                first_audio = False
        elif step.seconds == 0:  # zero-length: the end packets alone, duration 0
            ts = ts0 + start * SAMPLES_PER_PACKET
            body = TelephoneEvent(DTMF_EVENTS[step.digit], True, DTMF_VOLUME, 0).to_bytes()
            for _copy in range(END_PACKET_COPIES):
                add(start, PT_TELEPHONE_EVENT, True, ts, body)
            digits.append(DigitInfo(step.digit, start * PACKET_SECONDS, 0.0))
            clock = max(clock, (start + 1) * PACKET_SECONDS)
            first_audio = True
        else:
            n = max(end - start, 2)
            event = DTMF_EVENTS[step.digit]
            ts = ts0 + start * SAMPLES_PER_PACKET
            for i in range(n):
                last = i == n - 1
                body = TelephoneEvent(
                    event, last, DTMF_VOLUME, (i + 1) * SAMPLES_PER_PACKET
                ).to_bytes()
                for _copy in range(END_PACKET_COPIES if last else 1):
                    add(start + i, PT_TELEPHONE_EVENT, i == 0, ts, body)
            digits.append(DigitInfo(step.digit, start * PACKET_SECONDS, n * PACKET_SECONDS))
            # The next step starts after the event, whatever the rounding did.
            clock = max(clock, (start + n) * PACKET_SECONDS)
            first_audio = True  # a new talkspurt after the event: marker bit on the next audio
    info = TimelineInfo(
        duration=_slot(clock) * PACKET_SECONDS,
        packets=len(packets),
        ssrc=ssrc,
        digits=tuple(digits),
    )
    return packets, info


def _ip_checksum(header: bytes) -> int:
    total: int = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _frame(packet: RtpPacket, src_port: int, dst_port: int, ident: int) -> bytes:
    rtp = packet.to_bytes()
    udp = struct.pack("!HHHH", src_port, dst_port, 8 + len(rtp), 0) + rtp  # checksum 0: none
    src = bytes([127, 0, 0, 1])
    dst = bytes([127, 0, 0, 1])
    ip_wo = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0xB8, 20 + len(udp), ident & 0xFFFF, 0, 64, 17, 0, src, dst
    )
    ip = ip_wo[:10] + struct.pack("!H", _ip_checksum(ip_wo)) + ip_wo[12:]
    eth = b"\x00\x00\x00\x00\x00\x02" + b"\x00\x00\x00\x00\x00\x01" + b"\x08\x00"
    return eth + ip + udp


def write_packets(
    path: Path, packets: Sequence[RtpPacket], src_port: int = 6000, dst_port: int = 10000
) -> None:
    """Write RTP packets as an Ethernet/IPv4/UDP pcap (sipp replaces addresses and ports)."""
    out = bytearray(struct.pack("<IHHiIII", _PCAP_MAGIC, 2, 4, 0, 0, 65535, _LINKTYPE_ETHERNET))
    for i, packet in enumerate(packets):
        frame = _frame(packet, src_port, dst_port, i)
        usec_total = round(packet.time * 1_000_000)
        sec, usec = divmod(usec_total, 1_000_000)
        out += struct.pack("<IIII", _EPOCH + sec, usec, len(frame), len(frame))
        out += frame
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(bytes(out))
    tmp.replace(path)


def write_pcap(
    path: Path, timeline: Sequence[Step], audio: Audio = "tone", ssrc: int | None = None
) -> TimelineInfo:
    """Write the whole timeline to ``path`` and return its summary."""
    if not timeline:
        raise ValueError("empty timeline")
    packets, info = build_rtp(timeline, audio=audio, ssrc=ssrc)
    if not packets:
        raise ValueError("timeline shorter than one 20 ms packet")
    write_packets(path, packets)
    return info
