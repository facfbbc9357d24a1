"""Names shared with the dialplan.

Every string here also appears, spelled exactly the same, in ``dialplan/callconsent.conf``
(a unit test checks that). Change both or neither.
"""

from __future__ import annotations

import enum
from typing import Final

#: The Stasis application name the hook enters: ``Stasis(callconsent,<route>)``.
APP_NAME: Final = "callconsent"

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
#: Set by the app on the agent's channel once it has acted on the agent's consent: ``given``
#: (the agent-consent purposes are recorded) or ``refused``. Empty: the app did not answer in
#: time, so nothing that needs the agent is recorded (fail closed).
VAR_AGENT_RESULT: Final = "CALLCONSENT_AGENT_RESULT"
#: The Queue member gosub context admins pass as Queue's 7th argument (Asterisk 21+).
AGENT_CONTEXT: Final = "callconsent-agent"
#: The UserEvent the agent gosub raises (AMI event ``UserEvent``, ``UserEvent: <this>``).
AGENT_USER_EVENT: Final = "CallconsentAgent"
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
