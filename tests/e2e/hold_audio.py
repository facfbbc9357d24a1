"""Measuring a held call's recording and lining it up with the phones' hold marks (R2).

The hold tests (test_hold.py, test_restart_hold.py) play a tone from the caller for the whole
call and measure the caller's MixMonitor file with sox and :mod:`wave`: a muted stretch is
digital zero, the talk around it is not. The sipp phones log ``HOLD``/``UNHOLD [timestamp]``
when Asterisk accepted their re-INVITEs (tests/harness/sip_hold.py); the app's pauses carry ISO
times (UTC). File time 0 is the bridge (MixMonitor option ``b``).
"""

from __future__ import annotations

import re
import subprocess
import time
import wave
from datetime import UTC, datetime
from pathlib import Path

from tests.e2e.lab_app import log_time
from tests.harness.asterisk import AsteriskLab, LabLine
from tests.harness.sipp import CallResult

#: sox's RMS (full scale 1.0) below which a stretch is silence: the muted file is digital zero,
#: the caller's tone alone is ~0.1.
SILENT_RMS = 0.001


def rms(audio: Path, start: float, end: float) -> float:
    """RMS amplitude of ``audio`` from ``start`` to ``end`` seconds, as ``sox ... stat`` says."""
    proc = subprocess.run(
        ["sox", str(audio), "-n", "trim", f"{start:.3f}", f"={end:.3f}", "stat"],
        capture_output=True,
        text=True,
        check=True,
    )
    m = re.search(r"RMS\s+amplitude:\s+([0-9.]+)", proc.stderr)
    assert m, proc.stderr
    return float(m.group(1))


def first_silence(audio: Path, after: float) -> tuple[float, float] | None:
    """(file time, length) of the first run of digital silence (20 ms frames of zeros) at or
    after ``after`` seconds; None when there is none."""
    with wave.open(str(audio)) as w:
        rate, width = w.getframerate(), w.getsampwidth()
        data = w.readframes(w.getnframes())
    step = rate // 50 * width
    start: int | None = None
    for offset in range(max(0, int(after * rate)) * width // step * step, len(data), step):
        silent = not any(data[offset : offset + step])
        if silent and start is None:
            start = offset
        elif not silent and start is not None:
            break
    else:
        offset = len(data)
    if start is None:
        return None
    return start / width / rate, (offset - start) / width / rate


def iso_epoch(stamp: str) -> float:
    """Epoch seconds of an ISO time the app wrote (``2026-12-06T05:30:46.712168Z``, UTC)."""
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def sipp_mark(log: str, mark: str) -> float:
    """Epoch seconds of the first ``mark`` line (``HOLD``, ``UNHOLD``) of a sipp log."""
    m = re.search(rf"^{mark} .*?(\d+\.\d+)\s*$", log, re.MULTILINE)
    assert m, log
    return float(m.group(1))


def wait_sipp_mark(log_path: Path, mark: str, timeout: float) -> float:
    """:func:`sipp_mark` of the log at ``log_path`` once it is written."""
    rx = re.compile(rf"^{mark} .*?(\d+\.\d+)\s*$", re.MULTILINE)
    deadline = time.monotonic() + timeout
    while True:
        text = log_path.read_text(errors="replace") if log_path.exists() else ""
        m = rx.search(text)
        if m:
            return float(m.group(1))
        if time.monotonic() > deadline:
            raise AssertionError(f"no {mark} in {log_path} within {timeout} s:\n{text[-2000:]}")
        time.sleep(0.1)


def recorded_and_bridged(
    asterisk: AsteriskLab, result: CallResult, mark: int
) -> tuple[LabLine, float]:
    """A documentation call on the lab queue that ended well: its LABEND line (recorded) and
    when agent1 joined the caller's bridge (file time 0), epoch seconds."""
    assert result.ok, result.describe()
    end = asterisk.wait_labend(result.call_id, since=mark)
    assert end.status == "not_required" and end.recording, end
    joined = asterisk.find_log(r"Channel PJSIP/agent1-\S+ joined", since=mark)
    assert joined, "agent1 never joined the caller's bridge"
    line = asterisk.read_log(mark)[: joined[0].end()].splitlines()[-1]
    return end, log_time(line).replace(tzinfo=UTC).timestamp()  # the sandbox logs in UTC
