"""Names shared with the dialplan.

Every string here also appears, spelled exactly the same, in ``dialplan/callconsent.conf``
(a unit test checks that). Change both or neither.
"""

from __future__ import annotations

import enum
from typing import Final

#: The Stasis application name the hook enters: ``Stasis(callconsent,<route>)``.
APP_NAME: Final = "callconsent"

#: The caller ID as the caller sent it, kept by the hook before it normalises ``CALLERID(num)``
#: (digits and ``+`` only) and ``CALLERID(name)`` (control characters removed) for the rest of
#: the dialplan: caller text with line breaks would otherwise write header lines into every AMI
#: event about the call. The app reads them over ARI (JSON) as the evidence's caller number/name.
VAR_CALLERID_RAW_NUM: Final = "CALLCONSENT_CALLERID_RAW_NUM"
VAR_CALLERID_RAW_NAME: Final = "CALLCONSENT_CALLERID_RAW_NAME"
#: What the ARI app reads of a call entering Stasis: the linkedid, the dialled number and the
#: caller ID as sent. Listed in ari.conf ``channelvars``, they come in the StasisStart event
#: (no request per call); otherwise the app asks ARI for each.
STASIS_START_VARS: Final = (
    "CHANNEL(linkedid)",
    "CALLERID(dnid)",
    VAR_CALLERID_RAW_NUM,
    VAR_CALLERID_RAW_NAME,
)

#: The context admins Gosub into: ``Gosub(callconsent,s,1(<route>))``.
HOOK_CONTEXT: Final = "callconsent"
HOOK_EXTEN: Final = "s"

#: Set by the app (or by the hook when the app is unavailable) for the rest of the dialplan and CDR.
VAR_STATUS: Final = "CALLCONSENT_STATUS"
VAR_REASON: Final = "CALLCONSENT_REASON"
#: Absolute path of the recording MixMonitor writes, or empty when nothing is recorded.
#: The app builds it from Asterisk's uniqueid only; no caller-controlled text ever reaches it.
VAR_RECORDING: Final = "CALLCONSENT_RECORDING"
#: MixMonitor stores its recording id here (option ``i``), for StopMixMonitor on withdrawal.
VAR_MIXMONITOR_ID: Final = "CALLCONSENT_MIXMONITOR_ID"


class Status(enum.StrEnum):
    """Values of ``CALLCONSENT_STATUS``."""

    GIVEN = "given"
    REFUSED = "refused"
    NOT_REQUIRED = "not_required"
    UNAVAILABLE = "unavailable"
    ERROR = "error"


# -- the agent bridge (R15): what the hook and the Queue member gosub read ------------------
#: Where the recording starts: ``hook`` (MixMonitor in the hook, as before) or ``bridge`` (only
#: after the answering agent's consent, started by the app on the caller's channel). Anything
#: else, including empty, starts nothing in the hook.
VAR_RECORD_AT: Final = "CALLCONSENT_RECORD_AT"
RECORD_AT_HOOK: Final = "hook"
RECORD_AT_BRIDGE: Final = "bridge"
#: Inherited (``__``) to the queue member's channel: the caller's uniqueid, the purposes recorded
#: whatever the agent says (comma-separated, e.g. ``documentation``), the purposes that need the
#: agent's consent (e.g. ``training``) and the folder of the whisper prompts.
VAR_CALLER: Final = "CALLCONSENT_CALLER"
VAR_PURPOSES: Final = "CALLCONSENT_PURPOSES"
VAR_AGENT_PURPOSES: Final = "CALLCONSENT_AGENT_PURPOSES"
VAR_WHISPER_DIR: Final = "CALLCONSENT_WHISPER_DIR"
#: Inherited too, with the agent-consent purposes: how many seconds the agent gosub waits for
#: the app's answer (``agent_consent.answer_wait_seconds``; the gosub takes 2 when it is empty).
VAR_AGENT_WAIT: Final = "CALLCONSENT_AGENT_WAIT"
#: ``agent_consent.answer_wait_seconds`` when the config does not set it; the gosub's own
#: default when ``CALLCONSENT_AGENT_WAIT`` is empty is the same 2 s.
AGENT_WAIT_SECONDS: Final = 2.0
#: Set by the app on the agent's channel once it has acted on the agent's consent: ``given``
#: (the agent-consent purposes are recorded) or ``refused``. Empty: the app did not answer in
#: time, so nothing that needs the agent is recorded (fail closed).
VAR_AGENT_RESULT: Final = "CALLCONSENT_AGENT_RESULT"
#: The Queue member gosub context admins pass as Queue's 7th argument (Asterisk 21+).
AGENT_CONTEXT: Final = "callconsent-agent"
#: The UserEvent the agent gosub raises (AMI event ``UserEvent``, ``UserEvent: <this>``).
AGENT_USER_EVENT: Final = "CallconsentAgent"
#: The keys the dialplan sets in each UserEvent: the app reads these (and the channel's
#: ``Uniqueid``) and nothing else of the event.
AGENT_EVENT_KEYS: Final = ("Caller", "Agent", "Flag")
#: Raised by the agent gosub when its wait ended before the app's answer: it whispered that
#: nothing is recorded for training, so the app refuses the agent-consent purposes.
AGENT_LATE_USER_EVENT: Final = "CallconsentAgentLate"
AGENT_LATE_EVENT_KEYS: Final = ("Caller",)
#: AstDB family of the agents' standing consent: ``DB(callconsent/agent/<id>)`` = 1 or 0.
ASTDB_FAMILY: Final = "callconsent"
ASTDB_AGENT_PREFIX: Final = "agent/"
#: Whisper prompt base names under ``<prompts_dir>/<lang>/`` (requirements text 12).
WHISPER_PROMPTS: Final = {
    "documentation": "callconsent-whisper-documentation",
    "documentation_training": "callconsent-whisper-documentation-training",
    "training": "callconsent-whisper-training",
    "none": "callconsent-whisper-none",
}

# -- calls the app never saw (R36) -----------------------------------------------------------
#: When the app is not there (``unavailable``), the hook marks the call in AstDB on a Local
#: channel of its own (DB() writes are refused on a channel that has been in Stasis):
#: ``callconsent/unavailable/<uniqueid>`` = ``<UTC time> <route>``. The app turns the markers
#: into ``unavailable`` ledger entries (a count per day and route) at every AMI login.
ASTDB_UNAVAILABLE_PREFIX: Final = "unavailable/"
UNAVAILABLE_MARK_CONTEXT: Final = "callconsent-unavailable-mark"
#: The marker's value, handed to the Local channel by Originate's ``v()`` option.
VAR_UNAVAILABLE: Final = "CALLCONSENT_UNAVAILABLE"

# -- withdrawal during the call (R16) --------------------------------------------------------
#: The features.conf ``applicationmap`` entry the caller's withdrawal code runs, and the context
#: its Gosub enters. The hook adds the feature to ``DYNAMIC_FEATURES`` on the caller's channel
#: only (never inherited: the agent's keys do nothing):
#:     callconsent_withdraw => *9,self,Gosub(callconsent-withdraw,s,1)
WITHDRAW_FEATURE: Final = "callconsent_withdraw"
WITHDRAW_CONTEXT: Final = "callconsent-withdraw"
#: Set by the app on the caller's channel (not inherited) when a consent purpose is recorded or
#: waits for the agent: the consent purposes (e.g. ``training``). Empty: nothing to withdraw.
VAR_WITHDRAWABLE: Final = "CALLCONSENT_WITHDRAWABLE"
#: The purposes recorded without consent from the start (e.g. ``documentation``): when set, a
#: withdrawal keeps the recording running for them; when empty it stops the recording.
VAR_WITHDRAW_KEEPS: Final = "CALLCONSENT_WITHDRAW_KEEPS"
#: The confirmation the caller hears (requirements text 9), in the call's language, without
#: extension: ``<prompts_dir>/<lang>/callconsent-withdrawn``.
VAR_WITHDRAW_PROMPT: Final = "CALLCONSENT_WITHDRAW_PROMPT"
#: Set by the withdrawal context: when the caller withdrew (UTC stamp). A second press only
#: plays the confirmation again.
VAR_WITHDRAWN: Final = "CALLCONSENT_WITHDRAWN"
#: The UserEvent the withdrawal context raises (``Caller: <uniqueid>``, ``At: <UTC stamp>``).
WITHDRAW_USER_EVENT: Final = "CallconsentWithdraw"
WITHDRAW_EVENT_KEYS: Final = ("Caller", "By", "Agent", "At")
#: The durable marker the dialplan writes before telling the app, so a withdrawal made while the
#: app is down is finished when it is back: ``DB(callconsent/withdrawn/<uniqueid>)`` = stamp.
ASTDB_WITHDRAWN_PREFIX: Final = "withdrawn/"
#: Base name of the confirmation prompt under ``<prompts_dir>/<lang>/``.
WITHDRAW_PROMPT: Final = "callconsent-withdrawn"
#: Where the dialplan writes that marker: a Local channel of its own (exten = the uniqueid),
#: since AstDB writes are refused on a channel that has been in Stasis.
WITHDRAW_MARK_CONTEXT: Final = "callconsent-withdraw-mark"

# -- the agent flags a call as sensitive (R22) -----------------------------------------------
#: The features.conf ``applicationmap`` entry the agent's code runs, and the context its Gosub
#: enters. The agent gosub adds the feature to ``DYNAMIC_FEATURES`` on the AGENT's channel only:
#:     callconsent_sensitive => *7,self,Gosub(callconsent-sensitive,s,1)
SENSITIVE_FEATURE: Final = "callconsent_sensitive"
SENSITIVE_CONTEXT: Final = "callconsent-sensitive"
#: Set by the agent gosub on the agent's channel: the agent id (the filtered member name).
VAR_AGENT: Final = "CALLCONSENT_AGENT"
#: Set by the flag context on the agent's channel when the agent flagged the call (UTC stamp).
VAR_FLAGGED: Final = "CALLCONSENT_FLAGGED"
#: The UserEvent the flag context raises (``Caller: <caller uniqueid>``, ``Agent: <id>``,
#: ``At: <UTC stamp>``).
SENSITIVE_USER_EVENT: Final = "CallconsentSensitive"
SENSITIVE_EVENT_KEYS: Final = ("Caller", "Agent", "At")

# -- the agent withdraws for a caller who asks orally (R16, second half) ---------------------
#: The features.conf ``applicationmap`` entry the agent's withdrawal code runs, and the context
#: its Gosub enters. The agent gosub adds the feature to ``DYNAMIC_FEATURES`` on the AGENT's
#: channel only, for calls with a consent purpose recorded or waiting for the agent:
#:     callconsent_withdraw_agent => *8,self,Gosub(callconsent-withdraw-agent,s,1)
#: It raises ``WITHDRAW_USER_EVENT`` with ``By: agent`` and writes the caller's AstDB marker.
WITHDRAW_AGENT_FEATURE: Final = "callconsent_withdraw_agent"
WITHDRAW_AGENT_CONTEXT: Final = "callconsent-withdraw-agent"
#: Set by the agent's withdrawal context on the agent's channel (UTC stamp): a second press
#: only plays the confirmation again.
VAR_AGENT_WITHDRAWN: Final = "CALLCONSENT_AGENT_WITHDRAWN"
#: ``By:`` header of the agent's ``CallconsentWithdraw`` UserEvent, and the word after the stamp
#: in the AstDB marker's value (``<stamp> agent``), so a withdrawal finished at the next login
#: still says who asked.
WITHDRAW_BY_AGENT: Final = "agent"
#: The confirmation the agent hears, under ``${CALLCONSENT_WHISPER_DIR}`` (the agents' language).
AGENT_WITHDRAW_PROMPT: Final = "callconsent-agent-withdrawn"

# -- withdrawal after the call, on the phone (R17a, b) ---------------------------------------
#: The route admins put on the IVR: ``Gosub(callconsent-withdraw-route,s,1(<prompt folder>))``,
#: the folder being ``<prompts_dir>/<lang>``. It marks each request in AstDB from a Local channel
#: of its own (the mark context: exten = the request id), then raises the UserEvent
#: (``Request``, ``Caller`` = the route channel's uniqueid, ``By: number|call_ref``, ``Value``,
#: ``At``; not ``Channel``: every AMI UserEvent already has a ``Channel`` header, its name).
WITHDRAW_ROUTE_CONTEXT: Final = "callconsent-withdraw-route"
WITHDRAW_REQUEST_MARK_CONTEXT: Final = "callconsent-withdraw-request-mark"
WITHDRAW_REQUEST_USER_EVENT: Final = "CallconsentWithdrawRequest"
WITHDRAW_REQUEST_EVENT_KEYS: Final = ("Request", "Caller", "By", "Value", "At")
#: Raised by ``WITHDRAW_ROUTE_CONTEXT`` when its wait ended without an answer (it read none and
#: plays "registered, it will be done shortly"): the app makes that true where it can (an
#: ambiguous reference: every matching call withdrawn). ``Request``: the request's id.
WITHDRAW_REQUEST_LATE_USER_EVENT: Final = "CallconsentWithdrawRequestLate"
WITHDRAW_REQUEST_LATE_EVENT_KEYS: Final = ("Request",)
#: The durable marker: ``DB(callconsent/withdrawreq/<request id>)`` = ``<stamp> <by> <sealed>``,
#: deleted by the app once the request is carried out (or refused as malformed). ``<sealed>``
#: (also the event's ``Value``) is the number or reference sealed with the seal key:
#: AES_ENCRYPT(key, value), base64; AstDB and the verbose log never see the number.
#: The seal key (16 characters): a global variable the app sets at every AMI login, kept only
#: in Asterisk's memory and in the app's state folder (``withdraw-seal.key``).
VAR_SEAL_KEY: Final = "CALLCONSENT_SEAL_KEY"
ASTDB_WITHDRAW_REQUEST_PREFIX: Final = "withdrawreq/"
#: Set by the app on the route's channel: done | pending | bad_ref | unknown_ref | ambiguous.
#: Empty after the wait (app down or slow): the caller hears "registered" (and the route raises
#: ``WITHDRAW_REQUEST_LATE_USER_EVENT``).
VAR_WITHDRAW_RESULT: Final = "CALLCONSENT_WITHDRAW_RESULT"
#: The route's prompts under the folder the admin passes (base names, per language).
WITHDRAW_ROUTE_PROMPTS: Final = {
    "menu": "callconsent-withdraw-menu",
    "enter_ref": "callconsent-withdraw-enter-ref",
    "done": "callconsent-withdraw-done",
    "registered": "callconsent-withdraw-registered",
    "bad_ref": "callconsent-withdraw-bad-ref",
    "unknown_ref": "callconsent-withdraw-unknown-ref",
    "ambiguous": "callconsent-withdraw-ambiguous",
    "nothing": "callconsent-withdraw-nothing",
}
#: The call reference read to a caller who consented (route key ``call_reference``), set by
#: the app on the caller's channel (not inherited) with the withdrawal variables: the 9 digits,
#: when to read them (``withheld``: only when the caller's number is withheld; ``always``) and
#: "your call reference is" in the call's language (``<prompts_dir>/<lang>/callconsent-callref``).
VAR_CALLREF: Final = "CALLCONSENT_CALLREF"
VAR_CALLREF_READ: Final = "CALLCONSENT_CALLREF_READ"
VAR_CALLREF_PROMPT: Final = "CALLCONSENT_CALLREF_PROMPT"
CALLREF_PROMPT: Final = "callconsent-callref"

# The FastAGI variant of the hook (issue 17): Gosub(callconsent-agi,s,1(<route>)) calls
# AGI(agi://<server>/callconsent?route=<route>); a recorded call's hangup handler
# ([callconsent-agi-ended]) calls .../callconsent-ended so the sidecar is finalised.
AGI_CONTEXT: Final = "callconsent-agi"
AGI_ENDED_CONTEXT: Final = "callconsent-agi-ended"
AGI_FLOW_SCRIPT: Final = "callconsent"
AGI_ENDED_SCRIPT: Final = "callconsent-ended"
#: host:port of the FastAGI server (e.g. a global); empty: 127.0.0.1:4573
VAR_AGI_SERVER: Final = "CALLCONSENT_AGI_SERVER"
#: agi://host:port, set by the hook for its hangup handler
VAR_AGI_URL: Final = "CALLCONSENT_AGI_URL"

# -- the call detail record (issue 15): what the hook writes into the caller's CDR ----------
#: The hook's gosub that copies the outcome into the CDR as it returns.
CDR_CONTEXT: Final = "callconsent-cdr"
CDR_STATUS: Final = "callconsent_status"
CDR_REASON: Final = "callconsent_reason"
CDR_RECORDING: Final = "callconsent_recording"
#: FreePBX's CDR field for the recording's file name, set when MixMonitor starts in the hook.
CDR_RECORDINGFILE: Final = "recordingfile"

#: Objection to documentation during the call (Art 21, R30; :mod:`callconsent.objection`):
#: set (inherited) by the app on the caller's channel when documentation is recorded on a route
#: that allows objection; the hook then enables the caller's code, the agent gosub the agent's.
VAR_OBJECTABLE: Final = "CALLCONSENT_OBJECTABLE"
#: The UserEvent of both codes (``Caller: <uniqueid>``, ``Agent: <agent id>``, ``Via: ...``).
OBJECTION_USER_EVENT: Final = "CallconsentObjection"
#: The features.conf application names: the caller's code (``*3``) and the agent's (``*6``).
OBJECTION_FEATURE: Final = "callconsent_object"
OBJECTION_AGENT_FEATURE: Final = "callconsent_object_agent"
#: Their dialplan contexts.
OBJECTION_CONTEXT: Final = "callconsent-object"
OBJECTION_AGENT_CONTEXT: Final = "callconsent-object-agent"
#: The caller's confirmation after answering the training question (requirements texts 6, 7;
#: :mod:`callconsent.confirmation`), set by the app on the caller's channel (not inherited):
#: the prompt without extension; empty: none. Base names under ``<prompts_dir>/<lang>/``.
VAR_CONFIRM_PROMPT: Final = "CALLCONSENT_CONFIRM_PROMPT"
CONSENT_GIVEN_PROMPT: Final = "callconsent-consent-given"
CONSENT_GIVEN_PLAIN_PROMPT: Final = "callconsent-consent-given-plain"
CONSENT_REFUSED_PROMPT: Final = "callconsent-consent-refused"
#: The keys the objection codes' UserEvent carries (read by these keys only, issue 11).
OBJECTION_EVENT_KEYS: Final = ("Caller", "Agent", "Via")

# -- the agent's own standing consent, from their own phone (R15, issue 16) ------------------
#: Feature codes on the agents' phones' context, e.g.
#:     exten => *5,1,Gosub(callconsent-agent-self,s,1(given,<prompts_dir>/<lang>))
#:     exten => *4,1,Gosub(callconsent-agent-self,s,1(refused,<prompts_dir>/<lang>))
#: raise the UserEvent (``Consent: given|refused``); the agent is the PJSIP endpoint of the
#: event's own ``Channel`` header (AMI's, never a dialplan value). The app answers on that
#: channel with ``VAR_AGENT_SELF_RESULT`` (given | refused | refused_pending | failed), which
#: the context waits for (<= 5 s) and confirms with one of ``AGENT_SELF_PROMPTS``.
AGENT_SELF_CONTEXT: Final = "callconsent-agent-self"
AGENT_SELF_USER_EVENT: Final = "CallconsentAgentSelf"
VAR_AGENT_SELF_RESULT: Final = "CALLCONSENT_AGENT_SELF_RESULT"
AGENT_SELF_PROMPTS: Final = {
    "given": "callconsent-agent-self-given",
    "refused": "callconsent-agent-self-refused",
    "refused_pending": "callconsent-agent-self-refused-pending",
    "failed": "callconsent-agent-self-failed",
}
#: The keys the agent's own-consent UserEvent carries (read by these keys only, issue 11);
#: ``Channel`` is Asterisk's own header of the agent's channel.
AGENT_SELF_EVENT_KEYS: Final = ("Consent", "Channel")
#: Raised by ``AGENT_SELF_CONTEXT`` when its wait ended without an answer (it read nothing and
#: plays "failed, nothing changed"): the app undoes a give it applied meanwhile. Same keys, the
#: agent again from the event's own ``Channel`` header.
AGENT_SELF_LATE_USER_EVENT: Final = "CallconsentAgentSelfLate"
AGENT_SELF_LATE_EVENT_KEYS: Final = ("Consent", "Channel")
