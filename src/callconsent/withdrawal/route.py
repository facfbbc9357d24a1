"""Withdrawal after the call on the phone (R17a, b): the rules, as pure functions. No I/O.

The withdrawal route (``[callconsent-withdraw-route]`` in ``dialplan/callconsent.conf``, put on
the IVR by the admin) answers, offers the caller "press 1" for the calling number or asks for
the 9-digit call reference (always so for a withheld number), marks the request durably in
AstDB and raises::

    UserEvent(CallconsentWithdrawRequest, Request: <id>, Caller: <uniqueid>,
              By: number|call_ref, Value: <digits>, At: <UTC stamp>)

The marker is ``callconsent/withdrawreq/<id>`` = ``<UTC stamp> <by> <sealed>``; ``<id>`` is the
route channel's uniqueid, ``-`` and the attempt. ``<sealed>`` (the event's ``Value`` too) is the
number or reference sealed in the dialplan (``AES_ENCRYPT(<seal key>, value)``: AES-128 over
NUL-padded 16-byte blocks, base64 without its ``=`` padding, which Originate's ``v()`` would
cut) with the key the app gives Asterisk at every AMI login
(:func:`unseal` opens it): AstDB, whose deleted rows linger in the sqlite file's free pages,
and Asterisk's log lines of the route never hold the number in clear. This module says what such a request is
(:func:`from_event`, :func:`from_marker`: anything malformed is refused, nothing caller-typed
goes further unchecked), which answer the caller hears (:func:`answer`) and what a caller who
consented is told at the end of the consent question (:class:`Readout`: the call reference read
out, R17b). The fixed prompts of both are made like the other prompts (:func:`prompt_sources`).

The route waits 4 s for the answer, reads it once and plays what it read. When it read nothing
(the app away, or behind on a loaded machine) the caller hears "registered, it will be done
shortly" and the route raises::

    UserEvent(CallconsentWithdrawRequestLate, Request: <id>)

:func:`when_not_told` says what the app then does so that what the caller heard is true where it
can be: nothing more for done and pending; every call an ambiguous reference matches withdrawn
(the fail-safe side: less kept); for a reference of no call (or a failed check digit) nothing
can be done, and the operator is told.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Final, Literal, Protocol

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from callconsent import names
from callconsent.config import Config, PromptText
from callconsent.evidence import callref
from callconsent.evidence.fsio import parse_stamp
from callconsent.evidence.paths import UNIQUEID_RE
from callconsent.prompts import PromptSource

By = Literal["number", "call_ref"]
BY_VALUES: Final[tuple[By, ...]] = ("number", "call_ref")
#: What the route sends as a number: FILTER(0-9+) of CALLERID(num), at least two digits.
NUMBER_RE: Final = re.compile(r"\+?[0-9]{2,32}")
REF_RE: Final = re.compile(r"[0-9]{9}")
#: The request id: the route channel's uniqueid, "-", the attempt (one digit).
REQUEST_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,61}-[0-9]")
FALLBACK_LANGUAGE: Final = "da"

#: The answer the app sets on the route channel (``CALLCONSENT_WITHDRAW_RESULT``).
Result = Literal["done", "pending", "bad_ref", "unknown_ref", "ambiguous"]


@dataclass(frozen=True, slots=True)
class Request:
    """One withdrawal request from the route, checked: ``value`` is a number (digits, ``+``) or
    9 digits; ``channel`` the route channel's uniqueid ("" when recovered from a marker)."""

    request_id: str
    by: By
    value: str
    at: datetime | None
    channel: str = ""

    def reason(self, source: str) -> str:
        """For the audit log: what asked, never the caller number."""
        at = f" at {self.at.isoformat()}" if self.at is not None else ""
        return f"caller on the withdrawal route ({source}, request {self.request_id}{at})"


#: The seal key: 16 characters (Asterisk's AES_ENCRYPT takes the key as a 16-character string).
SEAL_KEY_RE: Final = re.compile(r"[A-Za-z0-9]{16}")
_SEALED_RE: Final = re.compile(r"[A-Za-z0-9+/]{22,88}")


def unseal(seal_key: str, sealed: str) -> str | None:
    """The value AES_ENCRYPT(``seal_key``, value) sealed, or None (not sealed with this key,
    or not what the route seals: checked again by the caller)."""
    if not SEAL_KEY_RE.fullmatch(seal_key) or not _SEALED_RE.fullmatch(sealed):
        return None
    try:
        raw = base64.b64decode(sealed + "=" * (-len(sealed) % 4), validate=True)
    except binascii.Error:
        return None
    if not raw or len(raw) % 16:
        return None
    decryptor = Cipher(algorithms.AES(seal_key.encode("ascii")), modes.ECB()).decryptor()  # noqa: S305  # Asterisk's AES_ENCRYPT is ECB; one or two blocks of digits
    plain = (decryptor.update(raw) + decryptor.finalize()).rstrip(b"\0")
    try:
        return plain.decode("ascii")
    except UnicodeDecodeError:
        return None


def seal(seal_key: str, value: str) -> str:
    """What the route's AES_ENCRYPT(``seal_key``, ``value``) gives (for tests and tools)."""
    data = value.encode("ascii")
    data += b"\0" * (-len(data) % 16)
    encryptor = Cipher(algorithms.AES(seal_key.encode("ascii")), modes.ECB()).encryptor()  # noqa: S305  # as Asterisk's AES_ENCRYPT
    sealed = base64.b64encode(encryptor.update(data) + encryptor.finalize()).decode("ascii")
    return sealed.rstrip("=")  # as the route's FILTER(A-Za-z0-9+/) leaves it


def _checked(
    request_id: str,
    by: str,
    sealed: str,
    at: str,
    channel: str,
    seal_key: str,
    *,
    clear_ok: bool = False,
) -> Request | None:
    if not REQUEST_RE.fullmatch(request_id) or ".." in request_id or by not in BY_VALUES:
        return None
    value = unseal(seal_key, sealed)
    if value is None and clear_ok:  # a marker the route wrote before it sealed (an upgrade)
        value = sealed
    if value is None:
        return None
    if not (NUMBER_RE if by == "number" else REF_RE).fullmatch(value):
        return None
    if channel and (not UNIQUEID_RE.fullmatch(channel) or ".." in channel):
        return None
    try:
        when: datetime | None = parse_stamp(at.strip())
    except (ValueError, TypeError):
        when = None
    return Request(request_id, "number" if by == "number" else "call_ref", value, when, channel)


def from_event(headers: Mapping[str, str], seal_key: str) -> Request | None:
    """The request in a ``CallconsentWithdrawRequest`` UserEvent (headers in any case)."""
    h = {k.lower(): v.strip() for k, v in headers.items()}
    return _checked(
        h.get("request", ""),
        h.get("by", ""),
        h.get("value", ""),
        h.get("at", ""),
        h.get("caller", ""),
        seal_key,
    )


def from_marker(key: str, value: str, seal_key: str) -> Request | None:
    """The request in an AstDB marker (``/callconsent/withdrawreq/<id>``,
    ``<at> <by> <sealed>``). A marker written by the route of an earlier version holds the
    digits in clear: it is still carried out (and deleted), so no request waiting across an
    upgrade is lost; the route writes none any more."""
    parts = value.split()
    if len(parts) != 3:
        return None
    return _checked(
        key.rsplit("/", 1)[-1], parts[1], parts[2], parts[0], "", seal_key, clear_ok=True
    )


class Report(Protocol):
    """What the answer needs of the withdrawal job's report (``lifecycle.withdraw``)."""

    @property
    def ambiguous(self) -> Sequence[object]: ...

    @property
    def complete(self) -> bool: ...


def answer(report: Report) -> Result:
    """``done`` when every consent-based recording in scope is withdrawn (none found counts),
    ``ambiguous`` for a reference of several calls, else ``pending`` (held, or skipped: the
    operator sees it in the audit log)."""
    if report.ambiguous:
        return "ambiguous"
    return "done" if report.complete else "pending"


#: What the app does once a request's answer came too late (the route read none, played
#: "registered, it will be done shortly" and raised ``CallconsentWithdrawRequestLate``):
#: ``as_heard``: nothing (done or pending: what the caller heard is true);
#: ``withdraw_every_match``: the reference matched several calls and nothing was done, so each
#: of them is withdrawn by its call id; ``cannot_be_done``: no call has that reference (or its
#: check digit fails), so nothing can be done, and the operator is told (log ERROR);
#: ``not_handled``: the app has no record of the request (its marker, if still in AstDB, is
#: carried out at the next AMI login).
NotTold = Literal["as_heard", "withdraw_every_match", "cannot_be_done", "not_handled"]


def when_not_told(result: Result | None) -> NotTold:
    """What to do for a request whose caller heard "registered" instead of ``result`` (None:
    the app never handled it). Fail safe: a withdrawal the caller believes in is carried out
    wherever it can be, even when that means less kept than the caller asked for."""
    if result is None:
        return "not_handled"
    if result in ("done", "pending"):
        return "as_heard"
    if result == "ambiguous":
        return "withdraw_every_match"
    return "cannot_be_done"


def ref_problem(value: str) -> Result | None:
    """``bad_ref`` for a reference that fails its check digit, else None."""
    try:
        callref.normalise(value)
    except callref.CallRefError:
        return "bad_ref"
    return None


# -- prompts -----------------------------------------------------------------------------------

#: prompt base name -> language -> text. The route plays them from the folder the admin passes.
ROUTE_TEXTS: Final[Mapping[str, Mapping[str, str]]] = {
    names.WITHDRAW_ROUTE_PROMPTS["menu"]: {
        "da": "Tryk 1 for at trække dit samtykke tilbage til optagelser af opkald fra dette "
        "nummer. Tryk 2 for at indtaste en opkaldsreference i stedet.",
        "en": "To withdraw your consent to recordings of calls from this number, press 1. To "
        "enter a call reference instead, press 2.",
    },
    names.WITHDRAW_ROUTE_PROMPTS["enter_ref"]: {
        "da": "Indtast de ni cifre i din opkaldsreference.",
        "en": "Please enter the nine digits of your call reference.",
    },
    names.WITHDRAW_ROUTE_PROMPTS["done"]: {
        "da": "Dit samtykke er trukket tilbage. Dine optagelser til uddannelse er slettet.",
        "en": "Your consent is withdrawn. Your training recordings are deleted.",
    },
    names.WITHDRAW_ROUTE_PROMPTS["registered"]: {
        "da": "Din tilbagetrækning er registreret og bliver gennemført inden længe.",
        "en": "Your withdrawal is registered and will be carried out shortly.",
    },
    names.WITHDRAW_ROUTE_PROMPTS["bad_ref"]: {
        "da": "Opkaldsreferencen er ikke gyldig.",
        "en": "That call reference is not valid.",
    },
    names.WITHDRAW_ROUTE_PROMPTS["unknown_ref"]: {
        "da": "Vi kan ikke finde et opkald med den reference.",
        "en": "We cannot find a call with that reference.",
    },
    names.WITHDRAW_ROUTE_PROMPTS["ambiguous"]: {
        "da": "Referencen passer på flere opkald. Skriv til os med dato og tidspunkt for opkaldet.",
        "en": "That reference matches more than one call. Please write to us with the date "
        "and time of the call.",
    },
    names.WITHDRAW_ROUTE_PROMPTS["nothing"]: {
        "da": "Intet er ændret. Farvel.",
        "en": "Nothing has been changed. Goodbye.",
    },
    names.CALLREF_PROMPT: {
        "da": "Din opkaldsreference er",
        "en": "Your call reference is",
    },
}


def prompt_sources() -> list[PromptSource]:
    return [
        PromptSource(f"withdraw_route.{base}", lang, PromptText(base, text))
        for base, texts in ROUTE_TEXTS.items()
        for lang, text in texts.items()
    ]


# -- the call reference read to a caller who consented (R17b) ---------------------------------

ReadWhen = Literal["withheld", "always"]


@dataclass(frozen=True, slots=True)
class Readout:
    """Routes whose callers hear their call reference after saying yes (route key
    ``call_reference``: ``withheld`` or ``always``), and the reference key."""

    routes: Mapping[str, ReadWhen]
    key: bytes | None = field(default=None, repr=False)

    def variables(
        self, route: str, uniqueid: str, language: str, prompts_dir: str | Path
    ) -> list[tuple[str, str]]:
        """The caller channel's variables for the hook's read-out; empty when the route does
        not read the reference (or there is no uniqueid or prompts folder)."""
        when = self.routes.get(route)
        if when is None or not uniqueid or not str(prompts_dir):
            return []
        lang = language if language in ROUTE_TEXTS[names.CALLREF_PROMPT] else FALLBACK_LANGUAGE
        return [
            (names.VAR_CALLREF_PROMPT, str(Path(prompts_dir) / lang / names.CALLREF_PROMPT)),
            (names.VAR_CALLREF_READ, when),
            (names.VAR_CALLREF, callref.call_ref(uniqueid, self.key)),
        ]


def readout(config: Config, key: bytes | None) -> Readout:
    """The read-out of ``config``'s enabled routes, with the reference key (or None)."""
    routes: dict[str, ReadWhen] = {}
    for name, route in config.routes.items():
        if route.enabled and route.call_reference in ("withheld", "always"):
            routes[name] = "always" if route.call_reference == "always" else "withheld"
    return Readout(routes, key)
