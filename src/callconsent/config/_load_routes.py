"""Reading ``routes`` (and the consent, objection and language-menu settings in them)."""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Final, cast

from ._errors import Problems
from ._model import (
    ART9_BASES,
    CALL_REFERENCE,
    CONSENT_BASIS,
    LAWFUL_BASES,
    OBJECTION_ACTIONS,
    PURPOSES,
    SPECIAL_CATEGORIES,
    CallReference,
    ConsentSettings,
    LanguageMenu,
    ObjectionAction,
    ObjectionSettings,
    PromptText,
    PurposeName,
    Route,
    RoutePurpose,
    SpecialCategories,
)
from ._read import Node, read_prompt
from ._sanity import check_retention

LANGUAGE_RE: Final = re.compile(r"^[a-z]{2}$")
DID_RE: Final = re.compile(r"^\+?[0-9*#]{1,32}$")
WITHDRAW_RE: Final = re.compile(r"^[*#][0-9]{1,2}$")


def read_route(name: str, raw: object, problems: Problems, controller_type: str) -> Route:
    node = Node(raw, f"routes.{name}", problems)
    enabled = node.boolean("enabled", False)
    dids = node.strings("dids")
    for index, did in enumerate(dids):
        if not DID_RE.match(did):
            problems.error(f"{node.at('dids')}[{index}]", f"not a dialled number: {did!r}")
    language = node.opt_string("language", "da") or "da"
    if language != "menu" and not LANGUAGE_RE.match(language):
        problems.error(
            node.at("language"), f"must be a language code (da, en, ...) or menu, got {language!r}"
        )
    menu = _menu(node.child("language_menu")) if node.has("language_menu") else None
    node.opt_string("language_menu") if menu is None else None
    if language == "menu" and menu is None:
        problems.error(node.at("language_menu"), "missing: language: menu needs a language_menu")
    if language != "menu" and menu is not None:
        problems.error(node.at("language_menu"), "only used with language: menu")
    special = _special_categories(node, controller_type)
    emergency = node.boolean("emergency_service", False)
    justification = node.opt_string("justification_ref")
    call_reference = node.choice("call_reference", CALL_REFERENCE, "off") or "off"
    store_caller_name = node.boolean("store_caller_name", False)  # data minimisation
    purposes: dict[str, RoutePurpose] = {}
    purposes_node = node.child("purposes")
    for purpose, praw in purposes_node.entries():
        if purpose not in PURPOSES:
            problems.error(
                purposes_node.at(purpose), f"unknown purpose; one of {', '.join(PURPOSES)}"
            )
            continue
        purposes[purpose] = _route_purpose(purpose, praw, purposes_node.at(purpose), problems)
    if call_reference not in ("", "off") and not any(p.needs_consent for p in purposes.values()):
        problems.warn(
            node.at("call_reference"),
            "read only to callers who consent: this route "
            "asks no consent, so no caller hears a call reference (R17b)",
        )
    node.done()
    return Route(
        name,
        enabled,
        dids,
        language,
        menu,
        # '' only after an error (the config is refused): no follow-up errors about Art 9
        cast(SpecialCategories, special or "unlikely"),
        emergency,
        justification,
        MappingProxyType(purposes),
        call_reference=cast(CallReference, call_reference),
        store_caller_name=store_caller_name,
    )


def _special_categories(node: Node, controller_type: str) -> str:
    """The route's explicit choice (R22): no default, since guessing ``unlikely`` would skip the
    Art 9 rules on a queue where callers do speak of their health. '' after an error."""
    if not node.has("special_categories"):
        hint = (
            "likely (the usual choice for a public authority)"
            if (controller_type == "public_authority")
            else "likely or unlikely"
        )
        node.problems.error(
            node.at("special_categories"),
            f"missing: choose {hint} for this route: may callers mention health or other "
            "special categories of data (Art 9)? There is no default (R22)",
        )
        node.opt_string("special_categories")
        return ""
    return node.choice("special_categories", SPECIAL_CATEGORIES, "")


def _menu(node: Node) -> LanguageMenu:
    options: dict[str, str] = {}
    opt_node = node.child("options", required=True)
    for digit, lang in opt_node.entries():
        if not re.match(r"^[0-9]$", digit):
            node.problems.error(opt_node.at(digit), "menu keys must be one digit 0-9")
        elif not isinstance(lang, str) or not LANGUAGE_RE.match(lang):
            node.problems.error(opt_node.at(digit), f"must be a language code, got {lang!r}")
        else:
            options[digit] = lang
    prompt_language = node.opt_string("prompt_language", "en") or "en"
    prompt = read_prompt(node, "prompt")
    if prompt is None:
        node.missing("prompt")
        prompt = PromptText("", "")
    timeout = node.number("timeout_seconds", 3.0)
    if not 1 <= timeout <= 30:
        node.problems.error(node.at("timeout_seconds"), f"must be 1..30 seconds, got {timeout:g}")
    node.done()
    return LanguageMenu(MappingProxyType(options), prompt, prompt_language, timeout)


def _route_purpose(
    purpose: PurposeName, raw: object, path: str, problems: Problems
) -> RoutePurpose:
    node = Node(raw, path, problems)
    notice = node.string("notice")
    basis = node.choice("lawful_basis", LAWFUL_BASES)
    retention = node.integer("retention_days", 90 if purpose == "documentation" else None)
    check_retention(node, "retention_days", retention)
    necessity = node.opt_string("necessity_assessment_ref")
    art9 = node.choice("art9_basis", ART9_BASES, "") or None
    is_consent = purpose == "training" or (
        purpose == "emergency_quality" and basis == CONSENT_BASIS
    )
    sample_rate = node.number("sample_rate", 1.0)
    if not 0.0 <= sample_rate <= 1.0:
        problems.error(node.at("sample_rate"), f"must be between 0 and 1, got {sample_rate:g}")
    elif node.has("sample_rate") and not is_consent:
        problems.error(node.at("sample_rate"), "only consent purposes are sampled (R23)")
    consent = None
    if is_consent:
        consent = _consent(node.child("consent"))
    elif node.has("consent"):
        node.child("consent")
        problems.error(
            node.at("consent"),
            f"{purpose} under {basis or 'a non-consent basis'} asks no consent question; a "
            "consent question would present a non-consent basis as consent (R5, R14)",
        )
    objection = _objection(node, purpose, basis)
    node.done()
    return RoutePurpose(
        purpose, notice, basis, retention, necessity, art9, sample_rate, consent, objection
    )


def _consent(node: Node) -> ConsentSettings:
    mode = node.opt_string("mode", "opt_in")
    if mode != "opt_in":
        node.problems.error(
            node.at("mode"),
            f"only opt_in is lawful, got {mode!r}: consent is an active keypress; silence or "
            "'press a key to stop recording' is not consent (R11, R12)",
        )
    accept = node.digit("accept_digit", "1", nullable=False) or "1"
    refuse = node.digit("refuse_digit", "2", nullable=True)
    if refuse is not None and refuse == accept:
        node.problems.error(node.at("refuse_digit"), f"must differ from accept_digit ({accept})")
    timeout = node.number("timeout_seconds", 8.0)
    if not 1 <= timeout <= 30:
        node.problems.error(node.at("timeout_seconds"), f"must be 1..30 seconds, got {timeout:g}")
    retries = node.integer("retries", 1)
    if retries not in (0, 1):
        node.problems.error(
            node.at("retries"), f"must be 0 or 1 (at most one retry, R13), got {retries}"
        )
    withdraw = node.opt_string("withdraw_sequence", "*9") or "*9"
    if not WITHDRAW_RE.match(withdraw):
        node.problems.error(
            node.at("withdraw_sequence"), f"must be * or # and 1-2 digits, got {withdraw!r}"
        )
    confirm = node.boolean("confirm", True)
    node.done()
    return ConsentSettings("opt_in", accept, refuse, timeout, retries, withdraw, confirm)


def _objection(node: Node, purpose: str, basis: str) -> ObjectionSettings | None:
    objectable = purpose != "training" and basis in ("6(1)(e)", "6(1)(f)")
    if not node.has("objection"):
        node.opt_string("objection")
        return ObjectionSettings() if objectable else None
    sub = node.child("objection")
    digit = sub.digit("digit", None, nullable=True)
    action = cast(ObjectionAction, sub.choice("action", OBJECTION_ACTIONS, "do_not_record"))
    grounds = sub.opt_string("compelling_grounds_ref")
    sub.done()
    if not objectable:
        node.problems.error(
            node.at("objection"),
            f"the right to object (Art 21) applies to 6(1)(e)/(f) only, not {purpose} under {basis}",
        )
        return None
    if action == "record_with_grounds" and not grounds:
        node.problems.error(
            sub.at("compelling_grounds_ref"),
            "record_with_grounds needs the reference to the documented compelling grounds (Art 21(1))",
        )
    return ObjectionSettings(digit, action or "do_not_record", grounds)
