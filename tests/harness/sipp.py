"""Real SIP callers: one sipp process per call, driven by a timeline of audio and keypresses.

    from tests.harness.sipp import Call, Digit, Pause, run_call, run_calls

    result = run_call(Call(to="support", timeline=[Pause(6.0), Digit("1"), Pause(10.0)]))
    assert result.ok and result.answered

Each call gets its own scenario XML, pcap (one RTP SSRC for the whole call, see rtp_pcap), local
SIP and media ports and a unique SIP Call-ID (``result.call_id``; the lab dialplan logs it as
``callid=`` in its LABDEST/LABEND lines). The timeline starts when the call is answered
(sipp sends ACK and starts the pcap at once), so ``Pause`` offsets are relative to the answer.

Caller ID goes into the From header as a hostile-but-valid UA would send it: the display name as a
quoted-string (``"`` and ``\\`` backslash-escaped; CR, LF and other control characters, which no
valid SIP message can carry, are dropped) and the number as the URI user part (characters the
user part allows stay verbatim, including ``; / $ + & = , ?`` and ``%XX`` escapes such as
``%0d%0a``; anything else, including a lone ``%``, is percent-encoded). The values reach sipp as
``-key`` arguments, never through the XML, so sipp's ``[keyword]`` syntax and XML syntax in them
stay inert.

sipp replays the pcap through a raw socket: run as root.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

from .rtp_pcap import Audio, Digit, Pause, Silence, Step, TimelineInfo, write_pcap
from .sip_hold import caller_hold

__all__ = [
    "Call",
    "CallResult",
    "Digit",
    "Pause",
    "Silence",
    "background_call",
    "run_call",
    "run_calls",
    "scenario_xml",
    "sip_display_name",
    "sip_user_part",
    "sipp_available",
]

SIP_TARGET_HOST = "127.0.0.1"
SIP_TARGET_PORT = 5060
LOCAL_IP = "127.0.0.1"

_USER_SAFE = set(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    "-_.!~*'()"  # unreserved
    "&=+$,;?/"  # user-unreserved (RFC 3261)
)
_HEX = set("0123456789abcdefABCDEF")


def sip_display_name(name: str) -> str:
    """``name`` as a SIP quoted-string display name (empty string: no display name)."""
    if not name:
        return ""
    cleaned = "".join(ch for ch in name if ch == "\t" or not (ord(ch) < 0x20 or ord(ch) == 0x7F))
    escaped = cleaned.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def sip_user_part(number: str) -> str:
    """``number`` as a SIP URI user part; ``anonymous`` when empty."""
    if not number:
        return "anonymous"
    out: list[str] = []
    i = 0
    while i < len(number):
        ch = number[i]
        if ch == "%" and i + 2 < len(number) and number[i + 1] in _HEX and number[i + 2] in _HEX:
            out.append(number[i : i + 3])  # an existing escape stays as sent
            i += 3
            continue
        if ch in _USER_SAFE:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8"))
        i += 1
    return "".join(out)


def _new_call_id() -> str:
    return f"cc-{uuid.uuid4().hex}@{LOCAL_IP}"


@dataclass(frozen=True)
class Call:
    """One SIP call from the lab caller to ``sip:<to>@127.0.0.1``.

    ``hangup_after``: seconds after the answer at which the caller sends BYE (default: the end of
    the timeline). If Asterisk hangs up first, the caller answers its BYE (``remote_hangup``).
    """

    to: str
    caller_number: str = "+4512345678"
    caller_name: str = "Lab Caller"
    #: The From display name exactly as sent (quotes included), instead of ``caller_name``
    #: made well-formed: for hostile callers (a raw CR inside the quoted string).
    display_name_wire: str | None = None
    #: The Request-URI user part exactly as sent (percent-escapes included), instead of ``to``:
    #: for hostile dialled numbers. ``to`` must still be a plain name (it labels the call).
    dialled_wire: str | None = None
    #: Keypresses sent as SIP INFO (application/dtmf-relay): (seconds after the answer, digit).
    info_digits: Sequence[tuple[float, str]] = ()
    timeline: Sequence[Step] = (Pause(2.0),)
    hangup_after: float | None = None
    audio: Audio = "tone"
    answer_timeout: float = 30.0
    call_id: str = field(default_factory=_new_call_id)
    #: (seconds from the answer, seconds held): the caller holds the call (tests/harness/sip_hold)
    hold: tuple[float, float] | None = None
    #: The address the call comes from (127.0.0.2: agent1's own phone, pjsip.conf).
    local_ip: str = LOCAL_IP

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.+*-]+", self.to):
            raise ValueError(f"route/extension must be a plain SIP user part, got {self.to!r}")
        if not re.fullmatch(r"[A-Za-z0-9._@+-]+", self.call_id):
            raise ValueError(f"call_id must be plain token characters, got {self.call_id!r}")
        if self.hangup_after is not None and self.hangup_after < 0:
            raise ValueError("hangup_after must be >= 0")


@dataclass
class CallResult:
    call: Call
    call_id: str
    returncode: int
    stdout: str
    stderr: str
    workdir: Path
    timeline: TimelineInfo
    started_at: float  # wall clock (time.time()) when sipp started
    answered_at: float | None = None  # wall clock when the 200 OK arrived
    ended_at: float | None = None  # wall clock when the call ended (BYE sent or received)
    remote_hangup: bool = False  # Asterisk sent BYE before the caller did
    local_hangup: bool = False  # the caller sent BYE
    log: str = ""  # sipp's <log> lines
    errors: str = ""  # sipp's unexpected-message trace
    messages_path: Path | None = None  # every SIP message sent/received

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    def digit_times(self) -> list[tuple[str, float]]:
        """(digit, wall-clock time of its first RTP packet), assuming playback began at answer."""
        if self.answered_at is None:
            return []
        return [(d.digit, self.answered_at + d.offset) for d in self.timeline.digits]

    def describe(self) -> str:
        return (
            f"sipp call {self.call_id} to {self.call.to!r}: rc={self.returncode} "
            f"answered={self.answered} remote_hangup={self.remote_hangup}\n"
            f"log:\n{self.log}\nerrors:\n{self.errors[-3000:]}\nstderr:\n{self.stderr[-2000:]}"
        )


def sipp_available() -> str | None:
    """None when sipp can run calls here, else the reason it cannot."""
    if shutil.which("sipp") is None:
        return "sipp is not installed (apt-get install sip-tester, or scripts/setup)"
    if os.geteuid() != 0:
        return "sipp replays RTP through a raw socket: run the tests as root"
    return None


# --- ports ---------------------------------------------------------------------------------------

_port_lock = threading.Lock()
_next_port = 20000 + 4 * random.randrange(2500)  # spread parallel test processes apart


def _free(port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((LOCAL_IP, port))
            except OSError:
                return False
    return True


def _allocate_ports() -> tuple[int, int]:
    """(SIP port, media port): four consecutive free UDP ports in 20000-29999 (sipp uses mp, mp+2)."""
    global _next_port
    with _port_lock:
        for _ in range(2500):
            base = _next_port
            _next_port = base + 4 if base + 4 < 30000 else 20000
            if all(_free(base + i) for i in range(4)):
                return base + 3, base
    raise RuntimeError("no free local UDP ports for sipp in 20000-29999")


# --- scenario ------------------------------------------------------------------------------------

_FROM = (
    "From: [cc_from_display] <sip:[cc_from_user]@[local_ip]:[local_port]>;tag=[pid]cc[call_number]"
)
_TO = "To: <sip:[service]@[remote_ip]:[remote_port]>"

_SCENARIO = """<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="callconsent lab caller">
  <send retrans="500">
    <![CDATA[

INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
{from_}
{to}
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:lab@[local_ip]:[local_port]>
Max-Forwards: 70
User-Agent: callconsent-lab-sipp
Content-Type: application/sdp
Content-Length: [len]

v=0
o=lab 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=sendrecv

    ]]>
  </send>

  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true" timeout="{answer_ms}">
    <action><log message="ANSWERED [timestamp]"/></action>
  </recv>

  <send>
    <![CDATA[

ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
{from_}
{to}[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: <sip:lab@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>

  <nop>
    <action>
      <exec play_pcap_audio={pcap}/>
      <log message="PLAY [timestamp]"/>
    </action>
  </nop>

{info}
{hold}
  <recv request="BYE" timeout="{hangup_ms}" ontimeout="local_bye"/>

  <send>
    <![CDATA[

SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:lab@[local_ip]:[local_port]>
Content-Length: 0

    ]]>
  </send>
  <nop next="done">
    <action><log message="REMOTE_BYE [timestamp]"/></action>
  </nop>

  <label id="local_bye"/>
  <nop>
    <action><log message="LOCAL_BYE [timestamp]"/></action>
  </nop>
  <send retrans="500">
    <![CDATA[

BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
{from_}
{to}[peer_tag_param]
Call-ID: [call_id]
CSeq: {bye_cseq} BYE
Contact: <sip:lab@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>

  <label id="done"/>
  <nop>
    <action><log message="END [timestamp]"/></action>
  </nop>
</scenario>
"""


_INFO = """
  <pause milliseconds="{wait_ms}"/>
  <send retrans="500">
    <![CDATA[

INFO sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
{from_}
{to}[peer_tag_param]
Call-ID: [call_id]
CSeq: {cseq} INFO
Contact: <sip:lab@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/dtmf-relay
Content-Length: [len]

Signal={signal}
Duration=160

    ]]>
  </send>
  <recv response="200" crlf="true"/>
"""


def scenario_xml(
    pcap: Path,
    answer_timeout: float,
    hangup_after: float,
    info: Sequence[tuple[float, str]] = (),
    hold: tuple[float, float] | None = None,
) -> str:
    """The caller's scenario: INVITE, ACK, ``pcap`` from the answer, SIP INFO digits (``info``:
    (seconds after the answer, digit)) or a hold (``hold``: (at, for) seconds), BYE after
    ``hangup_after`` seconds (or answer Asterisk's BYE). Its caller ID comes from the ``-key``
    values ``cc_from_display`` and ``cc_from_user``; one scenario serves many calls
    (bench/live.py)."""
    if info and hold:
        raise ValueError("a lab call sends SIP INFO digits or holds, not both")
    blocks, sent = [], 0.0
    for i, (offset, signal) in enumerate(sorted(info)):
        wait = max(0.0, offset - sent)
        sent += wait
        blocks.append(
            _INFO.format(wait_ms=round(wait * 1000), from_=_FROM, to=_TO, cseq=2 + i, signal=signal)
        )
    held = sum(hold) if hold else 0.0
    return _SCENARIO.format(
        from_=_FROM,
        to=_TO,
        pcap=quoteattr(str(pcap)),
        answer_ms=max(1, round(answer_timeout * 1000)),
        hangup_ms=max(1, round((hangup_after - sent - held) * 1000)),
        info="".join(blocks),
        hold=caller_hold(_FROM, _TO, *hold) if hold else "",
        # after the INFOs' or the hold's re-INVITEs (CSeq 3, 4): Asterisk refuses a lower CSeq
        bye_cseq=10 if hold else 2 + len(blocks),
    )


_LOG_LINE = re.compile(r"^(ANSWERED|PLAY|REMOTE_BYE|LOCAL_BYE|END) .*?(\d+\.\d+)\s*$")


def _parse_log(text: str) -> dict[str, float]:
    """sipp's [timestamp] is 'YYYY-MM-DD<TAB>HH:MM:SS.us<TAB>epoch.us'; keep the epoch."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = _LOG_LINE.match(line.strip())
        if m:
            out.setdefault(m.group(1), float(m.group(2)))
    return out


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def run_call(
    call: Call,
    target: str = f"{SIP_TARGET_HOST}:{SIP_TARGET_PORT}",
    workdir: Path | None = None,
    keep_files: bool = True,
) -> CallResult:
    """Place one call with sipp and wait for it to end. Never raises for a failed call."""
    reason = sipp_available()
    if reason:
        raise RuntimeError(reason)
    work = Path(tempfile.mkdtemp(prefix="callconsent-sipp-", dir=workdir))
    pcap = work / "caller.pcap"
    info = write_pcap(pcap, call.timeline, audio=call.audio)
    hangup_after = info.duration if call.hangup_after is None else call.hangup_after
    scenario = work / "caller.xml"
    scenario.write_text(
        scenario_xml(pcap, call.answer_timeout, hangup_after, call.info_digits, call.hold),
        encoding="utf-8",
    )
    sip_port, media_port = _allocate_ports()
    log_file, err_file, msg_file = work / "log.txt", work / "errors.txt", work / "messages.txt"
    # A generous cap so a stuck call cannot hang the test run.
    overall = call.answer_timeout + hangup_after + 30
    cmd = [
        "sipp",
        target,
        "-sf",
        str(scenario),
        "-s",
        call.to if call.dialled_wire is None else call.dialled_wire,
        "-m",
        "1",
        "-l",
        "1",
        "-i",
        call.local_ip,
        "-p",
        str(sip_port),
        "-mi",
        call.local_ip,
        "-mp",
        str(media_port),
        "-key",
        "cc_from_display",
        sip_display_name(call.caller_name)
        if call.display_name_wire is None
        else call.display_name_wire,
        "-key",
        "cc_from_user",
        sip_user_part(call.caller_number),
        "-cid_str",
        call.call_id,
        "-nostdin",
        "-timeout",
        f"{round(overall)}s",
        "-timeout_error",
        "-trace_logs",
        "-log_file",
        str(log_file),
        "-trace_err",
        "-error_file",
        str(err_file),
        "-trace_msg",
        "-message_file",
        str(msg_file),
    ]
    started = time.time()
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        errors="replace",
        cwd=work,
        check=False,
        timeout=overall + 30,
    )
    log = _read(log_file)
    marks = _parse_log(log)
    result = CallResult(
        call=call,
        call_id=call.call_id,
        returncode=proc.returncode,
        stdout=proc.stdout[-20000:],
        stderr=proc.stderr[-20000:],
        workdir=work,
        timeline=info,
        started_at=started,
        answered_at=marks.get("ANSWERED"),
        ended_at=marks.get("END"),
        remote_hangup="REMOTE_BYE" in marks,
        local_hangup="LOCAL_BYE" in marks,
        log=log,
        errors=_read(err_file),
        messages_path=msg_file if msg_file.exists() else None,
    )
    if not keep_files and result.ok:
        shutil.rmtree(work, ignore_errors=True)
        result = dataclasses.replace(result, messages_path=None)
    return result


def run_calls(
    calls: Sequence[Call],
    concurrency: int = 10,
    start_interval: float = 0.0,
    target: str = f"{SIP_TARGET_HOST}:{SIP_TARGET_PORT}",
    keep_files: bool = True,
) -> list[CallResult]:
    """Run ``calls`` with at most ``concurrency`` at once; results in the order of ``calls``.

    ``start_interval``: seconds between call starts (e.g. 0.05 for 20 calls/s).
    """
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    gate = threading.Lock()
    next_start = [time.monotonic()]

    def one(call: Call) -> CallResult:
        if start_interval > 0:
            with gate:
                wait = next_start[0] - time.monotonic()
                next_start[0] = max(next_start[0], time.monotonic()) + start_interval
            if wait > 0:
                time.sleep(wait)
        return run_call(call, target=target, keep_files=keep_files)

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="sipp") as pool:
        return list(pool.map(one, calls))


@contextlib.contextmanager
def background_call(
    call: Call, target: str = f"{SIP_TARGET_HOST}:{SIP_TARGET_PORT}"
) -> Iterator[Future[CallResult]]:
    """Start a call in a thread; the body runs while it is in progress. Waits for it at exit."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sipp-bg") as pool:
        future = pool.submit(run_call, call, target)
        yield future
