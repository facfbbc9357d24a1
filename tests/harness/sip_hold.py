"""Hold for the lab's sipp phones: the in-dialog re-INVITEs a real phone sends when it holds.

A phone that holds sends a re-INVITE whose SDP says ``a=sendonly`` (Asterisk raises AMI ``Hold``
and plays music on hold to the other side), and one with ``a=sendrecv`` to take the call back
(``Unhold``). Both are ACKed after Asterisk's 200. The blocks below go into a sipp scenario after
the pcap has started; ``hold_at`` and ``hold_for`` are seconds from the answer, and the phone
logs ``HOLD``/``UNHOLD [timestamp]`` (with ``-trace_logs``) when Asterisk has accepted each.

* :func:`caller_hold` for the caller (UAC, tests/harness/sipp.py): the dialog is ours, so the
  request line, From and To are the ones of the first INVITE, plus Asterisk's tag;
* :func:`agent_hold` for an agent phone (UAS, tests/harness/agent.py): it needs the far end's
  From (with its tag), our To and Asterisk's Contact, captured on the received INVITE by
  :data:`AGENT_CAPTURE` (sipp refuses a scenario whose captured variable is used only once,
  so these two go together).
"""

from __future__ import annotations

_SDP = """v=0
o={origin} 53655765 {version} IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a={direction}
"""

_REINVITE = """  <send retrans="500">
    <![CDATA[

INVITE {uri} SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
{from_}
{to}
Call-ID: [call_id]
CSeq: {cseq} INVITE
Contact: <sip:{user}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

{sdp}
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="200"/>
  <send>
    <![CDATA[

ACK {uri} SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
{from_}
{to}
Call-ID: [call_id]
CSeq: {cseq} ACK
Contact: <sip:{user}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
  <nop>
    <action><log message="{mark} [timestamp]"/></action>
  </nop>
"""

#: Actions for the agent phone's ``<recv request="INVITE">``: the dialog's headers.
AGENT_CAPTURE = """
      <ereg regexp="[^ ].*" search_in="hdr" header="From:" assign_to="hold_from"/>
      <ereg regexp="[^ ][^;]*" search_in="hdr" header="To:" assign_to="hold_to"/>
      <ereg regexp="sip:[^&gt;;]*" search_in="hdr" header="Contact:" assign_to="hold_contact"/>"""


def _block(
    *,
    uri: str,
    from_: str,
    to: str,
    user: str,
    origin: str,
    cseq: int,
    hold_at: float,
    hold_for: float,
) -> str:
    def reinvite(direction: str, seq: int, mark: str, version: int) -> str:
        sdp = _SDP.format(origin=origin, version=version, direction=direction)
        return _REINVITE.format(
            uri=uri, from_=from_, to=to, user=user, cseq=seq, sdp=sdp, mark=mark
        )

    return (
        f'  <pause milliseconds="{max(1, round(hold_at * 1000))}"/>\n'
        + reinvite("sendonly", cseq, "HOLD", 2353687638)
        + f'  <pause milliseconds="{max(1, round(hold_for * 1000))}"/>\n'
        + reinvite("sendrecv", cseq + 1, "UNHOLD", 2353687639)
    )


def caller_hold(from_: str, to: str, hold_at: float, hold_for: float) -> str:
    """The caller's hold and unhold (``from_``/``to``: the scenario's own header lines)."""
    return _block(
        uri="sip:[service]@[remote_ip]:[remote_port]",
        from_=from_,
        to=to + "[peer_tag_param]",
        user="lab",
        origin="lab",
        cseq=3,
        hold_at=hold_at,
        hold_for=hold_for,
    )


def agent_hold(hold_at: float, hold_for: float) -> str:
    """An agent phone's hold and unhold (needs :data:`AGENT_CAPTURE` on its INVITE)."""
    return _block(
        uri="[$hold_contact]",
        from_="From: [$hold_to];tag=[pid]agent[call_number]",
        to="To: [$hold_from]",
        user="[service]",
        origin="agent",
        cseq=101,
        hold_at=hold_at,
        hold_for=hold_for,
    )
