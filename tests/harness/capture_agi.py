"""Capture a real FastAGI session from the lab Asterisk: the samples in
tests/support/agi_capture.json, which the AGI wire tests read.

    scripts/lab-isolated cap -- bash -c 'scripts/asterisk-sandbox up >/dev/null &&
        .venv/bin/python -m tests.harness.capture_agi tests/support/agi_capture.json'

A raw FastAGI server on 127.0.0.1:4573 (``callconsent serve`` must not run) sends a fixed list
of commands to one sipp call to ``agi-capture`` (the lab's AGI hook) and records every line both
ways. The caller presses 1 during the third prompt and hangs up during the last wait.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from typing import BinaryIO

from tests.harness.sipp import Call, Digit, Pause, run_call

SOUNDS = "/usr/share/asterisk/sounds/en_US_f_Allison/"
COMMANDS = [
    'GET FULL VARIABLE "tok123abc"',
    "ANSWER",
    f'STREAM FILE {SOUNDS}beep ""',
    f'STREAM FILE {SOUNDS}does-not-exist ""',
    f'STREAM FILE {SOUNDS}demo-instruct "0123456789*#"',  # the caller presses 1
    "WAIT FOR DIGIT 1500",
    "BOGUS COMMAND",
    "STREAM FILE",  # 520 usage, several lines
    f"GET DATA {SOUNDS}beep 500 1",
    "GET VARIABLE UNIQUEID",
    "GET VARIABLE NOT_SET_VAR",
    "GET FULL VARIABLE ${BASE64_ENCODE(${CALLERID(num)})}",
    'SET VARIABLE CAPTURE_X "a b"',
    "CHANNEL STATUS",
    "WAIT FOR DIGIT 15000",  # the caller hangs up
    "CHANNEL STATUS",  # HANGUP, then 511
]


class Capture:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def read(self, f: BinaryIO) -> bytes:
        raw = f.readline()
        self.lines.append(("<", raw.decode("latin-1")))
        return raw

    def session(self, conn: socket.socket) -> None:
        f = conn.makefile("rb")
        while self.read(f) not in (b"\n", b""):
            pass  # the header
        conn.settimeout(20.0)  # the longest command is the last wait (15 s)
        for command in COMMANDS:
            self.lines.append((">", command))
            conn.sendall(command.encode() + b"\n")
            try:
                raw = self.read(f)
                while raw == b"HANGUP\n":
                    raw = self.read(f)
                if raw[3:4] == b"-":  # a multi-line reply, up to "NNN "
                    closing = raw[:3] + b" "
                    while raw and not raw.startswith(closing):
                        raw = self.read(f)
            except TimeoutError:  # the socket file cannot be read after a timeout: stop
                self.lines.append(("!", "timeout"))
                break
        conn.close()


def main() -> None:
    capture = Capture()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 4573))
    listener.listen(1)

    def serve() -> None:
        conn, _peer = listener.accept()
        capture.session(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    time.sleep(0.3)
    call = Call(
        to="agi-capture",
        caller_number="+4511112222",
        timeline=[Pause(2.5), Digit("1"), Pause(5.0)],
    )
    result = run_call(call)
    thread.join(30)
    out = sys.argv[1] if len(sys.argv) > 1 else "agi_capture.json"
    with open(out, "w", encoding="utf-8") as f:
        json.dump(capture.lines, f, indent=0)
    for direction, line in capture.lines:
        print(direction, repr(line))
    print(result.describe())


if __name__ == "__main__":
    main()
