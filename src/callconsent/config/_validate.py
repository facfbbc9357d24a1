"""The legal rules a config must meet before the app starts (requirements R4-R15, R20, R22, R30).

Each rule reports against the key path an admin has to change. Rules skip values that already
failed to read (``Problems.failed``), so one typo gives one error, not a cascade.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from ._audio import audio_base, audio_files
from ._errors import Problems
from ._model import (
    CONSENT_BASIS,
    EXPLICIT_CONSENT_ART9,
    FALLBACK_LANGUAGE,
    Config,
    Notice,
    PromptText,
    Route,
    RoutePurpose,
)
from ._validate_notices import KEYPRESS, check_notice, norm

DOCUMENTATION_BASES: Final = ("6(1)(c)", "6(1)(e)", "6(1)(f)")


def validate(config: Config, problems: Problems) -> None:
    for name, notice in config.notices.items():
        check_notice(config, name, notice, problems)
    _check_shared_audio(config, problems)
    dids: dict[str, str] = {}
    for name, route in config.routes.items():
        _check_route(config, route, problems)
        for did in route.dids:
            if did in dids:
                problems.error(f"routes.{name}.dids", f"{did} is already used by route {dids[did]}")
            dids[did] = name
    _check_audio_present(config, problems)


def _prompts(config: Config) -> Iterator[tuple[str, str, PromptText]]:
    """(key path, language, prompt) of every prompt in the config."""
    for name, notice in config.notices.items():
        for lang, text in notice.languages.items():
            path = f"notices.{name}.languages.{lang}"
            yield path, lang, text.prompt
            for key in ("question", "explicit_question", "retry"):
                prompt = getattr(text, key)
                if prompt is not None:
                    yield f"{path}.{key}", lang, prompt
    for name, route in config.routes.items():
        if route.language_menu is not None and route.language_menu.prompt.audio:
            menu = route.language_menu
            yield f"routes.{name}.language_menu.prompt", menu.prompt_language, menu.prompt


def _check_shared_audio(config: Config, p: Problems) -> None:
    seen: dict[tuple[str, str], tuple[str, str]] = {}
    for path, lang, prompt in _prompts(config):
        key = (lang, prompt.audio)
        if not prompt.audio:
            continue
        if key in seen and norm(seen[key][1]) != norm(prompt.transcript):
            p.error(
                f"{path}.audio",
                f"{lang}/{prompt.audio} is also used by {seen[key][0]} with another transcript",
            )
        seen.setdefault(key, (path, prompt.transcript))


def _check_audio_present(config: Config, p: Problems) -> None:
    for path, lang, prompt in _prompts(config):
        if not prompt.audio:
            continue
        files = audio_files(config.prompts_dir, lang, prompt.audio)
        base = audio_base(config.prompts_dir, lang, prompt.audio)
        if not files:
            p.warn(
                f"{path}.audio",
                f"no audio at {base}.wav (.sln, .gsm): nothing is recorded for this purpose "
                "until it exists (R4); build or install the prompts",
            )
        elif len(files) > 1:
            p.warn(
                f"{path}.audio",
                f"several formats of {base}: Asterisk picks one per call, the evidence hashes "
                f"{files[0].name}; keep one format",
            )


# -- routes ------------------------------------------------------------------------------


def _check_route(config: Config, route: Route, p: Problems) -> None:
    path = f"routes.{route.name}"
    if route.enabled and not route.purposes and not p.failed(f"{path}.purposes"):
        p.error(f"{path}.purposes", "an enabled route needs at least one purpose")
    if route.emergency_service and not route.justification_ref:
        p.error(
            f"{path}.justification_ref",
            "emergency_service: true needs the reference to its written justification (R9)",
        )
    for purpose in route.purposes.values():
        _check_purpose(config, route, purpose, f"{path}.purposes.{purpose.purpose}", p)
    _check_digits(route, path, p)
    _check_languages(config, route, path, p)


def _check_purpose(config: Config, route: Route, rp: RoutePurpose, path: str, p: Problems) -> None:
    basis = rp.lawful_basis
    if basis and not p.failed(f"{path}.lawful_basis"):
        _check_basis(config, route, rp, path, p)
    notice = config.notices.get(rp.notice)
    if rp.notice and notice is None:
        p.error(f"{path}.notice", f"no notice named {rp.notice!r} under notices")
        return
    if notice is None or p.failed(f"notices.{rp.notice}"):
        return
    if notice.purpose != rp.purpose:
        p.error(f"{path}.notice", f"notice {rp.notice!r} is for {notice.purpose}, not {rp.purpose}")
        return
    for key, mine, theirs in (
        ("lawful_basis", basis, notice.lawful_basis),
        ("retention_days", rp.retention_days, notice.retention_days),
    ):
        if mine != theirs and not p.failed(f"{path}.{key}"):
            p.error(
                f"{path}.{key}",
                f"{mine!r} differs from notice {rp.notice!r} (version {notice.version}: "
                f"{theirs!r}); changing it needs a new notice version (R20)",
            )
    if rp.consent is not None:
        _check_question_digits(route, rp, notice, path, p)
    if rp.objection is not None:
        _check_objection_digit(rp, notice, path, p)


def _check_objection_digit(rp: RoutePurpose, notice: Notice, path: str, p: Problems) -> None:
    """The objection sentence and the route's objection digit must tell the same story (R30)."""
    digit = rp.objection.digit if rp.objection is not None else None
    for lang, text in notice.languages.items():
        if not text.objection:
            continue
        said = set(
            re.findall(r"\d", " ".join(m.group(0) for m in KEYPRESS.finditer(text.objection)))
        )
        if digit is not None and digit not in text.objection:
            p.error(
                f"{path}.objection.digit",
                f"the objection sentence of notice {rp.notice!r} ({lang}) does not name {digit}",
            )
        elif digit is None and said:
            p.error(
                f"{path}.objection.digit",
                f"notice {rp.notice!r} ({lang}) tells callers to press {min(said)} to object, "
                "but the route sets no objection digit",
            )


def _check_basis(config: Config, route: Route, rp: RoutePurpose, path: str, p: Problems) -> None:
    basis = rp.lawful_basis
    where = f"{path}.lawful_basis"
    if config.organisation.controller_type == "public_authority" and basis == "6(1)(f)":
        p.error(where, "a public authority cannot use 6(1)(f) (Art 6(1), last subparagraph)")
    if rp.purpose == "training" and basis != CONSENT_BASIS:
        p.error(where, f"training needs consent (6(1)(a)), got {basis!r}")
    elif rp.purpose == "documentation":
        if basis not in DOCUMENTATION_BASES:
            p.error(where, f"documentation needs 6(1)(c), (e) or (f), got {basis!r}")
        if not rp.necessity_assessment_ref:
            p.error(
                f"{path}.necessity_assessment_ref",
                "missing: documentation needs the reference to the controller's necessity "
                "assessment (recording must be strictly necessary)",
            )
    elif rp.purpose == "emergency_quality" and basis != CONSENT_BASIS:
        if basis not in DOCUMENTATION_BASES:
            p.error(where, f"emergency_quality needs 6(1)(a), (c), (e) or (f), got {basis!r}")
        elif not (route.emergency_service and route.justification_ref):
            p.error(
                where,
                "emergency_quality without consent only on routes with "
                "emergency_service: true and a justification_ref (R9)",
            )
    consent = basis == CONSENT_BASIS
    if route.special_categories == "likely":
        if consent and rp.art9_basis not in (None, EXPLICIT_CONSENT_ART9):
            p.error(
                f"{path}.art9_basis",
                f"a consent purpose relies on explicit consent (9(2)(a)), got {rp.art9_basis!r}",
            )
        elif not consent and rp.art9_basis is None and not p.failed(f"{path}.art9_basis"):
            p.error(
                f"{path}.art9_basis",
                "missing: special_categories is likely, so an Art 9(2) basis is required (R22)",
            )
        elif not consent and rp.art9_basis == EXPLICIT_CONSENT_ART9:
            p.error(
                f"{path}.art9_basis",
                "9(2)(a) is explicit consent, but this purpose asks no consent question",
            )
    elif rp.art9_basis is not None:
        p.warn(f"{path}.art9_basis", "ignored: the route's special_categories is unlikely")


def _check_question_digits(
    route: Route, rp: RoutePurpose, notice: Notice, path: str, p: Problems
) -> None:
    assert rp.consent is not None
    explicit = route.special_categories == "likely"
    for lang, text in notice.languages.items():
        question = text.explicit_question if explicit else text.question
        if explicit and question is None:
            p.error(
                f"{path}.notice",
                f"special_categories is likely: notice {rp.notice!r} ({lang}) needs an "
                "explicit_question naming health data (R22, Art 9(2)(a))",
            )
            continue
        digits = [("accept_digit", rp.consent.accept_digit)]
        if rp.consent.refuse_digit is not None:
            digits.append(("refuse_digit", rp.consent.refuse_digit))
        for kind, prompt in (("question", question), ("retry", text.retry)):
            for key, digit in digits:
                if prompt is not None and digit not in prompt.transcript:
                    p.error(
                        f"{path}.consent.{key}",
                        f"the {kind} of notice {rp.notice!r} ({lang}) does not name digit {digit}",
                    )


def _check_digits(route: Route, path: str, p: Problems) -> None:
    used: dict[str, str] = {}
    for rp in route.purposes.values():
        if rp.consent is not None:
            used.setdefault(rp.consent.accept_digit, f"{rp.purpose} accept_digit")
            if rp.consent.refuse_digit is not None:
                used.setdefault(rp.consent.refuse_digit, f"{rp.purpose} refuse_digit")
            for digit in rp.consent.withdraw_sequence[1:]:
                used.setdefault(digit, f"{rp.purpose} withdraw_sequence")
    for rp in route.purposes.values():
        obj = rp.objection.digit if rp.objection is not None else None
        if obj is not None and obj in used:
            p.error(
                f"{path}.purposes.{rp.purpose}.objection.digit", f"{obj} is also the {used[obj]}"
            )
        elif obj is not None:
            used[obj] = f"{rp.purpose} objection digit"
    if route.language_menu is not None:
        for digit in route.language_menu.options:
            if digit in used:
                p.error(
                    f"{path}.language_menu.options.{digit}", f"{digit} is also the {used[digit]}"
                )
            if digit not in route.language_menu.prompt.transcript:
                p.error(
                    f"{path}.language_menu.options.{digit}",
                    f"the menu prompt does not name digit {digit}",
                )


def _check_languages(config: Config, route: Route, path: str, p: Problems) -> None:
    if route.language == "menu" and route.language_menu is not None:
        wanted = {FALLBACK_LANGUAGE, *route.language_menu.options.values()}
    else:
        wanted = {route.language}
    for rp in route.purposes.values():
        notice = config.notices.get(rp.notice)
        if notice is None:
            continue
        for lang in sorted(wanted - set(notice.languages)):
            p.warn(
                f"{path}.purposes.{rp.purpose}.notice",
                f"notice {rp.notice!r} has no {lang}: callers choosing {lang} hear Danish (R6)",
            )
