"""The agent's own standing consent to training recordings, given or revoked on their own phone
(R15): the pure rules. The adapter is :mod:`callconsent.agents.own_consent_adapter`.

The feature code's context (``[callconsent-agent-self]``) raises::

    UserEvent(CallconsentAgentSelf,Consent: <given|refused>)

on the agent's own channel. Who the agent is comes from the event's ``Channel`` header, which
AMI fills in from the channel itself (``PJSIP/agent1-0000002a``): the endpoint name is the agent
id, as the queue member name is. Nothing the dialplan or a caller could set names the agent.

The context waits 5 s for the app's answer, reads it once, and plays the confirmation of what it
read. When it read nothing (the app away, or behind on a loaded machine) the agent hears
"failed, nothing changed", and the context raises::

    UserEvent(CallconsentAgentSelfLate,Consent: <given|refused>)

on the same channel (the same ``Channel`` header names the agent). The app may have applied the
request meanwhile; :func:`when_not_told` decides what it then does so that the agent's belief
is never less safe than the truth: a give that was applied is undone (the registry goes back to
``refused`` unless it was ``given`` before), a withdrawal stays (never consent without the
agent's act).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from callconsent.agents.rules import AGENT_ID_RE

Consent = Literal["given", "refused"]
Result = Literal["given", "refused", "refused_pending", "failed"]
#: What the app does when the agent was not told the result of a request (the late event):
#: ``restore_refused``: the registry goes back to refused (and training leaves the recordings
#: made meanwhile); ``unchanged``: the give changed nothing (the agent had consented already);
#: ``kept_refused``: a withdrawal stays withdrawn; ``not_applied``: the app never changed the
#: registry for it ("failed, nothing changed" was true).
NotToldAction = Literal["restore_refused", "unchanged", "kept_refused", "not_applied"]

#: A PJSIP channel name: technology, endpoint, then Asterisk's hex suffix.
CHANNEL_RE: Final = re.compile(r"^PJSIP/([A-Za-z0-9_-]{1,32})-[0-9a-f]{8}$")

#: What the agent hears, per result and language (the agents' whisper language).
TEXTS: Final[dict[str, dict[str, str]]] = {
    "given": {
        "da": "Dit samtykke er registreret: dine samtaler kan optages til uddannelse, når "
        "kunden også siger ja. Du kan altid trække det tilbage.",
        "en": "Your consent is registered: your calls may be recorded for training when the "
        "caller agrees too. You can withdraw it at any time.",
    },
    "refused": {
        "da": "Dit samtykke er trukket tilbage. Dine samtaler optages ikke til uddannelse, og "
        "dine tidligere optagelser til uddannelse er slettet.",
        "en": "Your consent is withdrawn. Your calls are not recorded for training, and your "
        "earlier training recordings are deleted.",
    },
    "refused_pending": {
        "da": "Dit samtykke er trukket tilbage. Dine samtaler optages ikke til uddannelse. "
        "Sletningen af dine tidligere optagelser til uddannelse bliver gennemført inden længe.",
        "en": "Your consent is withdrawn. Your calls are not recorded for training. Your earlier "
        "training recordings will be deleted shortly.",
    },
    "failed": {
        "da": "Det lykkedes ikke. Intet er ændret. Prøv igen senere, eller kontakt din leder.",
        "en": "That did not work. Nothing has changed. Try again later, or ask your manager.",
    },
}


@dataclass(frozen=True, slots=True)
class OwnConsentRequest:
    agent_id: str
    consent: Consent
    channel: str


def agent_of(channel: str) -> str | None:
    """The agent id of a PJSIP channel name, or None (another technology, a bad name)."""
    match = CHANNEL_RE.fullmatch(channel)
    if match is None or not AGENT_ID_RE.fullmatch(match.group(1)):
        return None
    return match.group(1)


def from_event(headers: Mapping[str, str]) -> OwnConsentRequest | None:
    """The request in a ``CallconsentAgentSelf`` UserEvent, or None when malformed."""
    lower = {k.lower(): v.strip() for k, v in headers.items()}
    channel = lower.get("channel", "")
    agent = agent_of(channel)
    consent = lower.get("consent", "")
    if agent is None or consent not in ("given", "refused"):
        return None
    return OwnConsentRequest(agent, "given" if consent == "given" else "refused", channel)


def result_of(consent: Consent, *, registered: bool, recordings_done: bool) -> Result:
    """What the agent hears: failed when the registry did not change; a revocation whose
    earlier recordings are not all done yet (storage error, legal hold) is ``refused_pending``."""
    if not registered:
        return "failed"
    if consent == "given":
        return "given"
    return "refused" if recordings_done else "refused_pending"


def when_not_told(consent: Consent, *, applied: bool, before: Consent | None) -> NotToldAction:
    """What to do when the agent heard "failed, nothing changed" for a request of ``consent``
    that the app did (``applied``) or did not register; ``before``: the registry's state for
    that agent before it (None: not in the registry, which counts as refused: absence is never
    consent). Fail safe: never more recording than the agent believes,
    and never consent restored without the agent's act."""
    if not applied:
        return "not_applied"
    if consent == "refused":
        return "kept_refused"
    return "unchanged" if before == "given" else "restore_refused"
