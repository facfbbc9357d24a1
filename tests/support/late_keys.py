"""Late keys as the StasisApp's AMI adapter sees them (callconsent.stasis_ami): a fake objection
adapter that records the late keys it is given, and AMI ``DTMFEnd`` events as headers."""

from __future__ import annotations

from callconsent import names

#: the Stasis() line of the fake StasisStart (tests/support/stasis_fakes.py)
IN_STASIS = (names.HOOK_CONTEXT, names.HOOK_EXTEN, "5")
#: a dialplan line after the flow (the lab's documentation queue)
IN_QUEUE = ("callconsent-lab-inbound", "queue-docs", "3")


class Objections:
    """The objection adapter as the StasisApp sees it: records the late keys it is given."""

    def __init__(self) -> None:
        self.late: list[tuple[str, str, str]] = []

    def variables(self, route: str, recorded: tuple[str, ...]) -> list[tuple[str, str]]:
        return []

    async def on_late_digit(self, uniqueid: str, digit: str, route: str) -> None:
        self.late.append((uniqueid, digit, route))


def dtmf_end(
    uniqueid: str, digit: str, where: tuple[str, str, str] = IN_QUEUE, direction: str = "Received"
) -> dict[str, str]:
    """AMI's ``DTMFEnd`` of ``digit`` on channel ``uniqueid``, pressed on dialplan line ``where``."""
    context, exten, priority = where
    return {
        "Event": "DTMFEnd",
        "Uniqueid": uniqueid,
        "Context": context,
        "Exten": exten,
        "Priority": priority,
        "Digit": digit,
        "DurationMs": "120",
        "Direction": direction,
    }
