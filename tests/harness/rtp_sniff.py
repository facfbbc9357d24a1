"""Which RFC 4733 telephone-events (DTMF) Asterisk sends over loopback, seen on the wire.

    with DtmfSniffer() as sniffer:          # a raw AF_PACKET socket on "lo": run as root
        run_call(...)
    sniffer.events()                         # {(destination port, "5"), ...}

Asterisk's log shows the DTMF it receives, not what it passes on to the other side of a bridge.
This watches UDP packets from Asterisk's RTP ports (rtp.conf: 10000-10999) whose RTP payload
type is the lab's telephone-event type (101, as sipp and the agent phones offer it) and records
the event each carries, so a test can prove a key never reached a phone.
"""

from __future__ import annotations

import socket
import struct
import threading
from typing import Final

ETH_P_ALL: Final = 0x0003
ASTERISK_RTP_PORTS: Final = range(10000, 11000)
TELEPHONE_EVENT_PT: Final = 101
_KEYS: Final = "0123456789*#ABCD"


def parse(
    frame: bytes, *, src_ports: range = ASTERISK_RTP_PORTS, payload_type: int = TELEPHONE_EVENT_PT
) -> tuple[int, str] | None:
    """(destination UDP port, key) of one Ethernet frame carrying a telephone-event from one of
    ``src_ports``; None for anything else."""
    if len(frame) < 14 + 20 or frame[12:14] != b"\x08\x00" or frame[14] >> 4 != 4:
        return None
    ihl = (frame[14] & 0x0F) * 4
    if frame[14 + 9] != socket.IPPROTO_UDP:
        return None
    udp = 14 + ihl
    if len(frame) < udp + 8 + 16:
        return None
    sport, dport = struct.unpack("!HH", frame[udp : udp + 4])
    rtp = udp + 8
    if sport not in src_ports or frame[rtp] >> 6 != 2 or frame[rtp + 1] & 0x7F != payload_type:
        return None
    event = frame[rtp + 12 + 4 * (frame[rtp] & 0x0F)]
    return dport, _KEYS[event] if event < len(_KEYS) else f"event{event}"


class DtmfSniffer:
    """Records the telephone-events Asterisk sends while the ``with`` block runs."""

    def __init__(self, interface: str = "lo") -> None:
        self._interface = interface
        self._seen: set[tuple[int, str]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    def __enter__(self) -> DtmfSniffer:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(ETH_P_ALL))
        sock.bind((self._interface, 0))
        sock.settimeout(0.2)
        self._sock = sock
        self._thread = threading.Thread(target=self._run, name="dtmf-sniffer", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()

    def _run(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                frame = self._sock.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            found = parse(frame)
            if found is not None:
                self._seen.add(found)

    def events(self) -> set[tuple[int, str]]:
        """(destination port, key) of every telephone-event Asterisk sent."""
        return set(self._seen)

    def keys(self) -> set[str]:
        return {key for _port, key in self._seen}
