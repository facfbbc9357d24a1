"""Lab agent phones: sipp UAS processes that answer the queue's calls and talk continuously.

    from tests.harness.agent import AgentPhone, agent_phones
    from tests.harness.rtp_pcap import Digit, Pause

    with agent_phones("agent1", "agent2") as phones:     # SIP ports 5071, 5072 (pjsip.conf AORs)
        run_call(Call(to="queue-support", ...))
        assert phones["agent1"].answered() == 1

    # agent1 presses *7 six seconds after answering, in every call it takes:
    with agent_phones("agent1", timelines={"agent1": [Pause(6), Digit("*"), Pause(0.4),
                                                      Digit("7")]}): ...

Each phone is one ``sipp -sf agent.xml`` UAS running in the background for the ``with`` block,
bound to 127.0.0.1 on the port of its AOR in ``config/asterisk/pjsip.conf`` (``LAB_AGENT_PORTS``).
It answers every INVITE (180, then 200 with PCMA), then plays one long pcap of speech with ONE
RTP SSRC for the whole call (a stream that changes SSRC makes MixMonitor drop a side), until
Asterisk sends BYE. Calls may follow one another; concurrent calls share the phone's media port.
sipp replays the pcap through a raw socket: run as root.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .rtp_pcap import Pause, Step, timeline_duration, write_pcap
from .sip_hold import AGENT_CAPTURE, agent_hold
from .sipp import LOCAL_IP, _allocate_ports, sipp_available

#: Agent id -> SIP port of its static contact in config/asterisk/pjsip.conf.
LAB_AGENT_PORTS = {"agent1": 5071, "agent2": 5072, "external": 5073}
#: The lab's "outside" phone (pjsip.conf endpoint lab-external, not an internal channel in
#: config/demo.yaml ``parties``): the destination of transfers to an outside number.
EXTERNAL = "external"
#: How long the agent talks in each call (longer than any test call).
TALK_SECONDS = 120.0

_SCENARIO = """<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="callconsent lab agent phone">
  <recv request="INVITE" crlf="true">
    <action><log message="INVITE [call_id] [timestamp]"/>{capture}</action>
  </recv>
  <send>
    <![CDATA[

SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]agent[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[service]@[local_ip]:[local_port]>
Content-Length: 0

    ]]>
  </send>{ring}
  <send retrans="500">
    <![CDATA[

SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]agent[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[service]@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=agent 53655765 2353687637 IN IP[local_ip_type] [local_ip]
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
  <recv request="ACK" crlf="true">
    <action><log message="ANSWERED [call_id] [timestamp]"/></action>
  </recv>
  <nop>
    <action><exec play_pcap_audio={pcap}/></action>
  </nop>
{hold}  <recv request="BYE"/>
  <send>
    <![CDATA[

SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[service]@[local_ip]:[local_port]>
Content-Length: 0

    ]]>
  </send>
  <nop>
    <action><log message="ENDED [call_id] [timestamp]"/></action>
  </nop>
</scenario>
"""


@dataclass
class AgentPhone:
    agent_id: str
    port: int
    workdir: Path
    process: subprocess.Popen[bytes]

    @property
    def log_path(self) -> Path:
        return self.workdir / "log.txt"

    def _log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def answered(self) -> int:
        """How many calls this phone has answered (ACK received) so far."""
        return self._log().count("ANSWERED ")

    def ended(self) -> int:
        return self._log().count("ENDED ")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGUSR1)  # sipp: stop at once
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_phone(
    agent_id: str,
    port: int | None = None,
    timeline: Sequence[Step] | None = None,
    ring_seconds: float = 0.0,
    hold: tuple[float, float] | None = None,
) -> AgentPhone:
    """Start one phone. ``timeline`` (e.g. ``[Pause(6), Digit("*"), Pause(0.4), Digit("7")]``):
    what the agent sends from the moment it answers (the same in every call it takes), padded
    with speech to ``TALK_SECONDS``; default: speech only. ``ring_seconds``: how long it rings
    (180) before it answers (200). ``hold``: (seconds from the answer, seconds held): the phone
    holds the call then (re-INVITE ``a=sendonly``) and takes it back (``a=sendrecv``), in every
    call it takes (tests/harness/sip_hold.py)."""
    reason = sipp_available()
    if reason:
        raise RuntimeError(reason)
    port = LAB_AGENT_PORTS[agent_id] if port is None else port
    work = Path(tempfile.mkdtemp(prefix=f"callconsent-{agent_id}-"))
    pcap = work / "agent.pcap"
    steps = list(timeline or ())
    rest = TALK_SECONDS - (timeline_duration(steps) if steps else 0.0)
    write_pcap(pcap, [*steps, Pause(max(rest, 1.0))], audio="speech")
    scenario = work / "agent.xml"
    ring = f'\n  <pause milliseconds="{int(ring_seconds * 1000)}"/>' if ring_seconds > 0 else ""
    text = _SCENARIO.format(
        pcap=f'"{pcap}"',
        ring=ring,
        capture=AGENT_CAPTURE if hold else "",
        hold=agent_hold(*hold) if hold else "",
    )
    scenario.write_text(text, encoding="utf-8")
    _sip, media_port = _allocate_ports()
    cmd = [
        "sipp",
        "-sf",
        str(scenario),
        "-i",
        LOCAL_IP,
        "-p",
        str(port),
        "-mi",
        LOCAL_IP,
        "-mp",
        str(media_port),
        "-s",
        agent_id,
        "-nostdin",
        "-trace_logs",
        "-log_file",
        str(work / "log.txt"),
        "-trace_err",
        "-error_file",
        str(work / "errors.txt"),
    ]
    process = subprocess.Popen(
        cmd, cwd=work, stdout=subprocess.DEVNULL, stderr=(work / "stderr.txt").open("wb")
    )
    time.sleep(0.3)  # bound and listening
    if process.poll() is not None:
        raise RuntimeError(
            f"sipp agent phone {agent_id} exited: {(work / 'stderr.txt').read_text()[-2000:]}"
        )
    return AgentPhone(agent_id, port, work, process)


@contextlib.contextmanager
def agent_phones(
    *agent_ids: str,
    keep_files: bool = True,
    timelines: Mapping[str, Sequence[Step]] | None = None,
    ring_seconds: Mapping[str, float] | None = None,
    holds: Mapping[str, tuple[float, float]] | None = None,
) -> Iterator[dict[str, AgentPhone]]:
    """Run one answering phone per agent id for the duration of the block; ``timelines``: the
    keys (and pauses) an agent sends in each call it answers, ``ring_seconds``: how long a
    phone rings before it answers, ``holds``: when a phone holds (see :func:`start_phone`)."""
    phones: dict[str, AgentPhone] = {}
    try:
        for agent_id in agent_ids:
            phones[agent_id] = start_phone(
                agent_id,
                timeline=(timelines or {}).get(agent_id),
                ring_seconds=(ring_seconds or {}).get(agent_id, 0.0),
                hold=(holds or {}).get(agent_id),
            )
        yield phones
    finally:
        for phone in phones.values():
            phone.stop()
            if not keep_files:
                shutil.rmtree(phone.workdir, ignore_errors=True)
