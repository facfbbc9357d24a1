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
