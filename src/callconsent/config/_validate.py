"""The legal rules a config must meet before the app starts (requirements R4-R15, R20, R22, R30).

Each rule reports against the key path an admin has to change. Rules skip values that already
failed to read (``Problems.failed``), so one typo gives one error, not a cascade.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final
from urllib.parse import urlsplit

from ._audio import audio_base, audio_files
from ._errors import Problems
from ._model import (
    CONSENT_BASIS,
    EXPLICIT_CONSENT_ART9,
    FALLBACK_LANGUAGE,
    Config,
    Notice,
    NoticeText,
    PromptText,
    Route,
    RoutePurpose,
)

DOCUMENTATION_BASES: Final = ("6(1)(c)", "6(1)(e)", "6(1)(f)")
OBJECTABLE_BASES: Final = ("6(1)(e)", "6(1)(f)")

#: Words that present something as a choice to agree: never in a non-consent notice (R5, R14).
CONSENT_WORDING: Final = re.compile(
    r"\bsamtykke|\bconsent|\bsig(?:er)? ja\b|\bsay yes\b|\bfor ja\b|\bfor yes\b|\bhvis du accepterer\b"
    r"|\bif you agree\b|\bdo you agree\b|\bhvis du vil\b|\bif you want\b",
    re.IGNORECASE,
)
#: A keypress instruction. In a non-consent notice it may only appear in the objection sentence.
KEYPRESS: Final = re.compile(
    r"\b(?:tryk(?:ke|ker)?|press(?:ing)?|dial)\s+(?:på\s+)?(?:\d|stjerne|firkant|star|hash|pound)\b",
    re.IGNORECASE,
)
#: The explicit-consent variant must name health data and say "explicitly" (R22, text 4).
EXPLICIT_WORDING: Final = {
    "da": (re.compile(r"helbred", re.I), re.compile(r"udtrykkeligt", re.I)),
    "en": (re.compile(r"health", re.I), re.compile(r"explicit", re.I)),
}


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def validate(config: Config, problems: Problems) -> None:
    for name, notice in config.notices.items():
        _check_notice(config, name, notice, problems)
    _check_shared_audio(config, problems)
    dids: dict[str, str] = {}
    for name, route in config.routes.items():
        _check_route(config, route, problems)
        for did in route.dids:
            if did in dids:
                problems.error(f"routes.{name}.dids", f"{did} is already used by route {dids[did]}")
            dids[did] = name
    _check_audio_present(config, problems)


# -- notices -----------------------------------------------------------------------------


def _check_notice(config: Config, name: str, notice: Notice, p: Problems) -> None:
    path = f"notices.{name}"
    if notice.retention_days <= 0 and not p.failed(f"{path}.retention_days"):
        p.error(f"{path}.retention_days", f"must be > 0, got {notice.retention_days}")
    if FALLBACK_LANGUAGE not in notice.languages and not p.failed(f"{path}.languages"):
        p.error(f"{path}.languages.da", "missing: Danish is every notice's fallback language (R6)")
    if p.failed(f"{path}.lawful_basis"):
        return
    for lang, text in notice.languages.items():
        _check_notice_text(config, notice, text, f"{path}.languages.{lang}", p)


def _contains(transcript: str, phrase: str) -> bool:
    return _norm(phrase) in _norm(transcript)


def _check_notice_text(
    config: Config, notice: Notice, text: NoticeText, path: str, p: Problems
) -> None:
    transcript = text.prompt.transcript
    consent = notice.lawful_basis == CONSENT_BASIS
    elements = {
        "controller": text.controller,
        "purpose": text.purpose_text,
        "basis": text.basis_text,
        "retention": text.retention_text,
        "rights": text.rights,
        "withdrawal": text.withdrawal,
        "objection": text.objection,
    }
    for key, value in elements.items():
        if value and transcript and not _contains(transcript, value):
            p.error(f"{path}.{key}", "not found in the transcript: the notice must say it (R5)")
    org = config.organisation.name
    if text.controller and org and not _contains(text.controller, org):
        p.error(f"{path}.controller", f"must name the controller {org!r} (Art 13(1)(a))")
    _check_info_url(text, path, p)
    if consent:
        if not text.withdrawal:
            p.error(
                f"{path}.withdrawal",
                "missing: a consent notice must say how to withdraw (Art 7(3))",
            )
        for key in ("question", "retry"):
            if getattr(text, key) is None:
                p.error(f"{path}.{key}", f"missing: a consent purpose needs its {key} prompt (R11)")
    else:
        for key in ("withdrawal", "question", "explicit_question", "retry"):
            if getattr(text, key) is not None:
                p.error(
                    f"{path}.{key}",
                    f"a notice under {notice.lawful_basis} asks no consent; remove {key} (R14)",
                )
        _check_not_consent_wording(text, path, p)
    if notice.lawful_basis in OBJECTABLE_BASES:
        if not text.objection:
            p.error(
                f"{path}.objection",
                f"missing: {notice.lawful_basis} needs the right to object as its own sentence "
                "(Art 21(4))",
            )
        elif transcript and not _own_sentence(transcript, text.objection):
            p.error(
                f"{path}.objection", "must be a sentence of its own in the transcript (Art 21(4))"
            )
    elif text.objection and not consent:
        p.error(
            f"{path}.objection",
            f"{notice.lawful_basis} gives no right to object (Art 21(1)); remove the sentence",
        )
    if text.explicit_question is not None and text.language in EXPLICIT_WORDING:
        for pattern in EXPLICIT_WORDING[text.language]:
            if not pattern.search(text.explicit_question.transcript):
                p.error(
                    f"{path}.explicit_question.transcript",
                    f"the explicit-consent wording must contain {pattern.pattern!r} (R22)",
                )


def _check_info_url(text: NoticeText, path: str, p: Problems) -> None:
    url = text.info_url
    if not url:
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        p.error(f"{path}.info_url", f"must be an http(s) URL to the full Art 13 text, got {url!r}")
        return
    spoken = (parts.netloc + parts.path).rstrip("/")
    if text.prompt.transcript and not _contains(text.prompt.transcript, spoken):
        p.error(f"{path}.info_url", f"the transcript must point to it (say {spoken!r}) (R5)")


def _check_not_consent_wording(text: NoticeText, path: str, p: Problems) -> None:
    transcript = _norm(text.prompt.transcript)
    if text.objection:
        transcript = transcript.replace(_norm(text.objection), " ")
    found = CONSENT_WORDING.search(transcript) or KEYPRESS.search(transcript)
    if found:
        p.error(
            f"{path}.transcript",
            f"describes a non-consent basis as consent ({found.group(0)!r}); only a consent "
            "purpose asks for a keypress (R5, R14)",
        )


def _own_sentence(transcript: str, sentence: str) -> bool:
    haystack, needle = _norm(transcript), _norm(sentence).rstrip(".!?")
    start = haystack.find(needle)
    if start < 0:
        return False
    before = haystack[:start].rstrip()
    after = haystack[start + len(needle) :].lstrip()
    return (not before or before[-1] in ".!?") and (not after or after[0] in ".!?")


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
        if key in seen and _norm(seen[key][1]) != _norm(prompt.transcript):
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
